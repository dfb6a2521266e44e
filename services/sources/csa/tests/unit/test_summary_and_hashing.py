"""The status-page summary and the content hashes that decide inserted / updated / unchanged."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import Counts, SourceSynced
from fmcsa_source_csa.domain.model import BasicsAnswer, CarrierFacts, CsaFetch
from fmcsa_source_csa.domain.parse import assemble, parse_basics, parse_carrier
from fmcsa_source_csa.domain.summary import fetch_hashes, summarize

NOW = datetime(2025, 11, 4, 15, 0, tzinfo=UTC)


def fetch_of(examples_dir: Path, basics_file: str, dot: str = "2847193", now: datetime = NOW) -> CsaFetch:
    carrier_body = json.loads((examples_dir / "qcmobile-carrier.json").read_bytes())
    carrier_body["content"]["carrier"]["dotNumber"] = int(dot)
    carrier = parse_carrier(200, {}, json.dumps(carrier_body).encode(), dot, now)
    answer = parse_basics(200, {}, (examples_dir / basics_file).read_bytes(), dot, now)
    assert isinstance(carrier, CarrierFacts)
    assert isinstance(answer, BasicsAnswer)
    return assemble(dot, carrier, answer, now)


def test_the_summary_of_a_property_carrier_says_not_public_never_zero(examples_dir: Path) -> None:
    summary = summarize(fetch_of(examples_dir, "qcmobile-basics-not-public.json"))
    basics = summary["basics"]
    assert isinstance(basics, list)
    first = basics[0]
    assert first == {
        "id": 11,
        "code": "Unsafe Driving",
        "name": "Unsafe Driving",
        "percentile": None,
        "percentile_status": "not_public",
        "measure": "0.51",
        "threshold": 65,
        "alert": None,
        "alert_reason": "not_public",
        "on_road_alert": None,
        "serious_violation": False,
        "inspections_with_violation": 1,
        "violations": 1,
    }
    assert summary["alerts"] == []
    assert summary["percentiles_public"] is False


def test_the_summary_of_a_passenger_carrier_lists_its_alerts(examples_dir: Path) -> None:
    summary = summarize(fetch_of(examples_dir, "qcmobile-basics.json", dot="1398452"))
    basics = summary["basics"]
    assert isinstance(basics, list)
    assert [b["percentile"] for b in basics if isinstance(b, dict)] == ["34", "61", "0", "0", "72"]
    assert summary["alerts"] == [12, 15]
    assert summary["percentiles_public"] is True


def test_the_summary_carries_the_carrier_facts_decimals_as_strings_dates_iso(examples_dir: Path) -> None:
    summary = summarize(fetch_of(examples_dir, "qcmobile-basics-not-public.json"))
    assert summary["safety_rating"] == "satisfactory"
    assert summary["safety_rating_date"] == "2019-08-14"
    assert summary["authority"] == {"common": "active", "contract": "none", "broker": "none"}
    assert summary["inspections"] == {
        "driver": {"inspections": 9, "out_of_service": 0, "oos_rate": "0", "national_average": "5.51"},
        "vehicle": {
            "inspections": 6,
            "out_of_service": 1,
            "oos_rate": "16.666666666666664",
            "national_average": "20.72",
        },
        "hazmat": {"inspections": 0, "out_of_service": 0, "oos_rate": "0", "national_average": "4.5"},
    }
    assert summary["crashes"] == {"total": 1, "fatal": 0, "injury": 0, "towaway": 1}
    assert summary["allowed_to_operate"] is True


def test_the_summary_carries_the_identity_the_carrier_record_shows(examples_dir: Path) -> None:
    summary = summarize(fetch_of(examples_dir, "qcmobile-basics-not-public.json"))
    assert summary["dba_name"] is None
    assert summary["status_code"] == "A"
    assert summary["address"] == {
        "street": "4410 W INDUSTRIAL PKWY",
        "city": "DES MOINES",
        "state": "IA",
        "zip": "50321",
        "country": "US",
    }


def test_a_carrier_without_a_rating_reads_not_rated() -> None:
    fetch = CsaFetch("5", NOW, None, CarrierFacts(dot_number=5), ())
    summary = summarize(fetch)
    assert summary["safety_rating"] == "not_rated"
    assert summary["basics"] == []


def test_the_summary_fits_the_source_synced_event(examples_dir: Path) -> None:
    fetch = fetch_of(examples_dir, "qcmobile-basics-not-public.json")
    event = SourceSynced(
        request_id="00000000-0000-0000-0000-000000000001",
        dot="2847193",
        source=SourceKey.CSA,
        counts=Counts(fetched=6, inserted=6),
        attempts=1,
        started_at=NOW,
        finished_at=NOW,
        retrieved_at=fetch.retrieved_at,
        upstream_as_of=fetch.upstream_as_of,
        summary=summarize(fetch),
    )
    assert json.loads(event.model_dump_json())["summary"] == summarize(fetch)


def test_the_same_data_fetched_at_another_time_hashes_the_same(examples_dir: Path) -> None:
    early = fetch_of(examples_dir, "qcmobile-basics.json", dot="1398452")
    later = fetch_of(
        examples_dir, "qcmobile-basics.json", dot="1398452", now=datetime(2026, 1, 2, tzinfo=UTC)
    )
    assert fetch_hashes(early) == fetch_hashes(later)


def test_a_changed_percentile_measure_or_flag_changes_only_that_basic_hash(examples_dir: Path) -> None:
    fetch = fetch_of(examples_dir, "qcmobile-basics.json", dot="1398452")
    before = fetch_hashes(fetch)
    moved = replace(fetch.basics[0], percentile=Decimal(35))
    after = fetch_hashes(replace(fetch, basics=(moved, *fetch.basics[1:])))
    assert {k for k in before if before[k] != after[k]} == {"11"}
    for change in (
        {"measure": Decimal("0.6")},
        {"threshold": 65},
        {"violations": 4},
        {"on_road_alert": replace(fetch.basics[0].on_road_alert, value=True)},
    ):
        assert replace(fetch.basics[0], **change).content_hash() != fetch.basics[0].content_hash()  # type: ignore[arg-type]


def test_labels_and_decimal_spelling_do_not_change_a_hash(examples_dir: Path) -> None:
    fetch = fetch_of(examples_dir, "qcmobile-basics.json", dot="1398452")
    score = fetch.basics[3]
    assert (
        replace(score, name="Controlled Substances / Alcohol", code="D/A").content_hash()
        == score.content_hash()
    )
    spelled = parse_basics(
        200,
        {},
        (examples_dir / "qcmobile-basics.json").read_bytes().replace(b'"0.52"', b'"0.520"'),
        "1398452",
        NOW,
    )
    assert isinstance(spelled, BasicsAnswer)
    assert spelled.basics[0].content_hash() == fetch.basics[0].content_hash()


def test_a_carrier_fact_change_changes_the_carrier_hash(examples_dir: Path) -> None:
    fetch = fetch_of(examples_dir, "qcmobile-basics.json", dot="1398452")
    assert replace(fetch.carrier, safety_rating=None).content_hash() != fetch.carrier.content_hash()


def test_hashes_are_pinned_so_a_code_change_cannot_silently_mark_every_record_updated(
    examples_dir: Path,
) -> None:
    hashes = fetch_hashes(fetch_of(examples_dir, "qcmobile-basics-not-public.json"))
    assert hashes["11"] == "4a6fb125b485fa74e67cddb668e46e6fb3986c161761985b34024c7b88e17aca"
    assert hashes["carrier"] == "de7c79b5afef480ea4be03a6143a921a3eb4b3a5ef2dc3d2b49060354140e1dd"
