"""The drop guard's verdict, pure: which answers are too much of a drop to trust at once."""

from __future__ import annotations

import pytest

from fmcsa_events.models import ErrorKind
from fmcsa_source_kit.guard import DropGuard, SuspectDrop

GUARD = DropGuard(share=0.5, min_held=20)


@pytest.mark.parametrize(
    ("held", "dropped", "suspect"),
    [
        (0, 0, False),  # a first read: nothing held
        (2500, 0, False),  # nothing dropped
        (2500, 2500, True),  # 0 violations where 2,500 were held
        (7, 7, True),  # every BASIC gone: everything held, whatever min_held
        (1, 1, True),
        (7, 6, False),  # most of a few rows: under min_held, trusted
        (20, 10, True),  # half of min_held rows
        (20, 9, False),
        (2500, 1249, False),
        (2500, 1250, True),
    ],
)
def test_a_drop_is_suspect_when_it_is_everything_or_the_share_of_enough_rows(
    held: int, dropped: int, suspect: bool
) -> None:
    assert GUARD.suspect(held=held, dropped=dropped) is suspect


def test_a_suspect_drop_is_a_retryable_failure_with_its_counts() -> None:
    failure = SuspectDrop("2847193", 2500, 2500, "violations").failure()
    assert failure.kind is ErrorKind.SUSPECT_DROP
    assert failure.retryable
    assert "would drop 2,500 of the 2,500 violations held" in failure.message
