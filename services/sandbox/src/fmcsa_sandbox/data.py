"""Deterministic carrier data per (DOT, data version): pure functions, no I/O, no clock.

What callers may rely on:
- The same `(dot, version)` gives the same `Snapshot` in every process and on every run: every seed is a
  blake2b digest of the arguments (never Python's salted `hash()`), fed to its own `random.Random`.
- One carrier is one story across the sources. Its inspections, violations and crashes come from one
  timeline, so the QCMobile inspection and crash counts equal the SaferWebAPI snapshot's, and each BASIC's
  `totalViolation` / `totalInspectionWithViolation` equal the violation rows (and their distinct
  inspections) that the Socrata rows give for that BASIC.
- Version `v` is the SMS run of month `RUN_MONTH_1 + v - 1`; its violation window is the 24 whole months
  before the run month. Moving to `v + 1` (a bump) drops the oldest month (rows age out), adds the newest
  (new violations and inspections), steps `time_weight` down for rows crossing 6 and 12 months, moves the
  measures and (for some carriers) the percentiles, and moves SAFER's `latest_update` when its figures
  changed. A carrier with nothing on the road in those months stays unchanged.
- The magic DOTs of `MAGIC_DOTS` behave as documented there and in the README.
- A scripted DOT (`SCRIPTS`: 99700001..99700012) is the carrier generated at version 1, frozen, plus the
  change its script documents per version: at every version the rest of its answers (rows, time weights,
  counts, measures, percentiles, profile) stay as at version 1, so a test can assert exactly the change.
  Only Socrata's `:id` is minted anew per version, as for every carrier.
"""

from __future__ import annotations

import calendar
import hashlib
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

# --- magic DOTs -------------------------------------------------------------------------------------------

UNKNOWN_DOTS = range(99_000_001, 99_000_100)
"""Unknown to all sources: QCMobile `content: null` / `[]`, Socrata `[]` (both datasets), SaferWebAPI 404."""
CSA_ALWAYS_500 = 99_100_001
VIOLATIONS_429_TWICE = 99_200_001
INSPECTIONS_HANG = 99_300_001
CSA_MAINTENANCE = 99_400_001
VIOLATIONS_2500_ROWS = 99_500_001
VIOLATIONS_EMPTY_EVERY_OTHER = 99_500_002
CSA_NOT_PUBLIC = 99_600_001
SCRIPTED_ALERT = 99_700_001
SCRIPTED_OOS_VIOLATION = 99_700_002
SCRIPTED_RATING_AND_STATUS = 99_700_003
SCRIPTED_NOT_PUBLIC = 99_700_004
AUTHORITY_ALWAYS_500 = 99_100_002
AUTHORITY_429_TWICE = 99_200_003
AUTHORITY_HANG = 99_300_002
AUTHORITY_MAINTENANCE = 99_400_002
SCRIPTED_AUTHORITY_STATUS = 99_700_005
SCRIPTED_REVOCATION_PENDING = 99_700_006
SCRIPTED_DOCKET_ADDED = 99_700_007
SCRIPTED_OOS_ORDER = 99_700_008
SCRIPTED_FILING_ADDED = 99_700_009
SCRIPTED_CANCELLATION_PENDING = 99_700_010
SCRIPTED_CANCELLED = 99_700_011
SCRIPTED_BELOW_REQUIRED = 99_700_012

MAGIC_DOTS: Mapping[int, str] = {
    UNKNOWN_DOTS.start: f"{UNKNOWN_DOTS.start}..{UNKNOWN_DOTS.stop - 1}: unknown to all sources",
    CSA_ALWAYS_500: "csa always answers 500 `{}`",
    VIOLATIONS_429_TWICE: "violations answers 429 (`Retry-After: 1`) to the first two calls of each sync",
    INSPECTIONS_HANG: "inspections hangs for HANG_S (far longer than any client timeout)",
    CSA_MAINTENANCE: "csa answers the HTML maintenance page with status 200",
    VIOLATIONS_2500_ROWS: "violations has exactly 2,500 rows at every version (three pages of 1000)",
    VIOLATIONS_EMPTY_EVERY_OTHER: "violations answers every second read with a valid empty page (`[]`, 200): "
    "a hiccup, once after each complete answer",
    CSA_NOT_PUBLIC: 'csa percentiles are "Not Public" (a property carrier with inspections)',
    SCRIPTED_ALERT: "scripted: Unsafe Driving 45% (no alert) at odd versions, 58% (alert) at even ones",
    SCRIPTED_OOS_VIOLATION: "scripted: one new out-of-service violation at each bump",
    SCRIPTED_RATING_AND_STATUS: "scripted: SATISFACTORY + ACTIVE at odd versions, CONDITIONAL + "
    "OUT-OF-SERVICE at even ones",
    SCRIPTED_NOT_PUBLIC: 'scripted: Vehicle Maintenance public at odd versions, "Not Public" at even ones',
    AUTHORITY_ALWAYS_500: "authority always answers 500 `{}` (QCMobile and the insurance dataset)",
    AUTHORITY_429_TWICE: "authority answers 429 (`Retry-After: 1`) to the first two calls of each sync",
    AUTHORITY_HANG: "authority hangs for HANG_S (QCMobile and the insurance dataset)",
    AUTHORITY_MAINTENANCE: "authority answers the QCMobile HTML maintenance page with status 200",
    SCRIPTED_AUTHORITY_STATUS: "scripted: common authority active at odd versions, inactive at even ones",
    SCRIPTED_REVOCATION_PENDING: "scripted: common authority revocation pending at even versions",
    SCRIPTED_DOCKET_ADDED: "scripted: one more FF docket at each bump",
    SCRIPTED_OOS_ORDER: "scripted: an out-of-service order at even versions, none at odd ones",
    SCRIPTED_FILING_ADDED: "scripted: one more CARGO insurance filing at each bump",
    SCRIPTED_CANCELLATION_PENDING: "scripted: the BIPD filing's cancellation 30 days ahead at even versions",
    SCRIPTED_CANCELLED: "scripted: the BIPD filing cancelled (a past date) at even versions",
    SCRIPTED_BELOW_REQUIRED: "scripted: BIPD on file 750 of 750 required at odd versions, 500 at even ones",
}

EXAMPLE_CARRIER = 2_847_193
"""The carrier of the example files: for hire, common authority active, an MC docket, no out-of-service order,
BIPD 1000 of 750 required on file, one BIPD and one CARGO filing."""

HEAD_DOTS: tuple[int, ...] = tuple(range(1_000_001, 1_000_011))
"""The carriers a Socrata query without a DOT filter reads (the sandbox's "first rows of the dataset")."""

# --- calendar ---------------------------------------------------------------------------------------------

RUN_MONTH_1 = 2026 * 12 + 9  # October 2026: the SMS run month of data version 1
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
BASICS_RUN_DATE = "2017-01-27T05:00:00.000+0000"  # frozen upstream for years (fmcsa README 3.5)


def run_month(version: int) -> int:
    """Month index (`year * 12 + month - 1`) of the SMS run that data version `version` describes."""
    return RUN_MONTH_1 + version - 1


def month_first_day(month: int) -> date:
    return date(month // 12, month % 12 + 1, 1)


def run_date(version: int) -> date:
    """The SMS snapshot date of a version: the last Friday of its run month."""
    month = run_month(version)
    year, number = month // 12, month % 12 + 1
    last = date(year, number, calendar.monthrange(year, number)[1])
    return last - timedelta(days=(last.weekday() - calendar.FRIDAY) % 7)


def published_at(version: int) -> datetime:
    """When the Socrata dataset of a version was refreshed (its `Last-Modified`): 14 days after the run."""
    day = run_date(version) + timedelta(days=14)
    return datetime(day.year, day.month, day.day, 14, 30, tzinfo=UTC)


def window(version: int) -> range:
    """Month indexes of a version's 24-month violation window (the whole months before its run month)."""
    month = run_month(version)
    return range(month - 24, month)


def time_weight(age_months: int) -> int:
    """SMS time weight of a row `age_months` (1..24) before the run month: 3 up to 6, 2 up to 12, else 1."""
    return 3 if age_months <= 6 else 2 if age_months <= 12 else 1


def exists(dot: int) -> bool:
    """Whether the sandbox knows this DOT: every 1-8 digit number except the unknown range."""
    return 1 <= dot <= 99_999_999 and dot not in UNKNOWN_DOTS


def is_passenger(dot: int) -> bool:
    """Passenger carriers (public percentiles) are the DOTs ending in 7; all others carry property."""
    return dot % 10 == 7


def canonical_dot(text: str) -> int | None:
    """The DOT a path segment names: 1 to 8 ASCII digits (leading zeros allowed), else None."""
    if 1 <= len(text) <= 8 and text.isascii() and text.isdigit():
        return int(text)
    return None


# --- seeds ------------------------------------------------------------------------------------------------


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from the parts' text: the same in every process (unlike the salted `hash()`)."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def seeded(*parts: object) -> random.Random:
    return random.Random(stable_seed(*parts))


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, count, product = math.exp(-lam), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


# --- catalogs ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BasicType:
    basic_id: int
    code: str  # QCMobile basicsCode
    short_desc: str  # QCMobile basicsShortDesc (may hold an HTML entity)
    label: str  # Socrata basic_desc
    threshold_passenger: int
    threshold_property: int
    driver: bool  # relevant inspections: driver inspections (else vehicle inspections)


BASIC_TYPES: tuple[BasicType, ...] = (
    BasicType(11, "Unsafe Driving", "Unsafe Driving", "Unsafe Driving", 50, 65, True),
    BasicType(
        12, "HOS Compliance", "Hours-of-Service Compliance", "Hours-of-Service Compliance", 50, 65, True
    ),
    BasicType(13, "Driver Fitness", "Driver Fitness", "Driver Fitness", 65, 80, True),
    BasicType(
        14,
        "Drugs/Alcohol",
        "Controlled Substances/&#8203;Alcohol",
        "Controlled Substances/Alcohol",
        65,
        80,
        True,
    ),
    BasicType(15, "Vehicle Maint.", "Vehicle Maintenance", "Vehicle Maintenance", 65, 80, False),
)
BASIC_BY_ID: Mapping[int, BasicType] = {b.basic_id: b for b in BASIC_TYPES}


@dataclass(frozen=True, slots=True)
class ViolationType:
    code: str
    basic_id: int
    section_desc: str
    group_desc: str
    severity: int
    p_oos: float

    @property
    def driver(self) -> bool:
        return BASIC_BY_ID[self.basic_id].driver


VIOLATION_TYPES: tuple[ViolationType, ...] = (
    ViolationType(
        "3922SLLS2",
        11,
        "State/Local Laws - Speeding 6-10 miles per hour over the speed limit",
        "Speeding 2",
        4,
        0.0,
    ),
    ViolationType(
        "3922SLLS3",
        11,
        "State/Local Laws - Speeding 11-14 miles per hour over the speed limit",
        "Speeding 3",
        7,
        0.0,
    ),
    ViolationType("39280", 11, "Failing to obey traffic control device", "Sign/Signal", 5, 0.0),
    ViolationType("3922SLLT", 11, "State/Local Laws - Following too close", "Following Too Close", 5, 0.0),
    ViolationType("39216", 11, "Failing to use seat belt while operating a CMV", "Seat Belt", 7, 0.0),
    ViolationType("3958A", 12, "No record of duty status", "Incomplete/Wrong Log", 5, 0.3),
    ViolationType("3953A2", 12, "Driving beyond 11 hour driving limit in a 14 hour period", "Hours", 7, 0.5),
    ViolationType("3958E", 12, "False report of driver's record of duty status", "False Log", 7, 0.4),
    ViolationType("3958F1", 12, "Driver's record of duty status not current", "Log Form & Manner", 2, 0.0),
    ViolationType(
        "39141A", 13, "Operating a CMV without a valid medical certificate", "Medical Certificate", 1, 0.0
    ),
    ViolationType("383231A", 13, "Operating a CMV without a CDL", "License-related: High", 8, 0.6),
    ViolationType("39111B2", 13, "Non-English speaking driver", "General Driver Qualification", 4, 0.0),
    ViolationType("3924A", 14, "Driver uses or is in possession of drugs", "Drugs", 10, 1.0),
    ViolationType(
        "3925A2", 14, "Possess/use/under influence alcohol-4 hours prior to duty", "Alcohol", 10, 1.0
    ),
    ViolationType(
        "39347E",
        15,
        "Clamp or Roto-chamber type brake(s) out of adjustment",
        "Brakes Out of Adjustment",
        4,
        0.3,
    ),
    ViolationType("3939TS", 15, "Inoperative turn signal", "Lighting", 6, 0.0),
    ViolationType("3939H", 15, "Inoperable head lamps", "Lighting", 6, 0.1),
    ViolationType("39345B2", 15, "Brake hose or tubing chafing and/or kinking", "Brakes, All Others", 4, 0.1),
    ViolationType("39375A3", 15, "Tire-flat and/or audible air leak", "Tires", 8, 0.6),
    ViolationType(
        "39617C", 15, "Operating a CMV without proof of a periodic inspection", "Inspection Reports", 4, 0.0
    ),
    ViolationType("39395B", 15, "Insufficient windshield wiper blades", "Windshield/Glass/Markings", 4, 0.0),
)
_DRIVER_TYPES = tuple(v for v in VIOLATION_TYPES if v.driver)
_VEHICLE_TYPES = tuple(v for v in VIOLATION_TYPES if not v.driver)
# Weights make the common violations common: speeding, logs, lights, brakes; drugs and alcohol are rare.
_DRIVER_WEIGHTS = tuple(1 if v.basic_id == 14 else 6 if v.basic_id in (11, 12) else 3 for v in _DRIVER_TYPES)

_PREFIXES = (
    "NORTHFIELD",
    "RIVERBEND",
    "BLUE RIDGE",
    "PRAIRIE",
    "IRONWOOD",
    "SILVER LAKE",
    "CEDAR",
    "GRANITE",
    "LONE STAR",
    "GREAT PLAINS",
    "TRI-COUNTY",
    "SUMMIT",
    "HARBOR",
    "MIDWEST",
    "PIONEER",
    "RED OAK",
    "EAGLE",
    "FRONTIER",
    "COASTAL",
    "KEYSTONE",
    "HIGHLAND",
    "MAPLE",
    "TIMBERLINE",
    "SUNBELT",
)
_PROPERTY_SUFFIXES = (
    "FREIGHT LINES",
    "HAULING",
    "TRANSPORT",
    "LOGISTICS",
    "TRUCKING",
    "EXPRESS",
    "CARRIERS",
    "DISTRIBUTION",
)
_PASSENGER_SUFFIXES = ("COACH LINES", "MOTORCOACH", "TOURS", "BUS COMPANY", "SHUTTLE SERVICE")
_ENTITIES = ("LLC", "INC", "CORP", "CO", "")
_CITIES = (
    ("DES MOINES", "IA", "50321", "515"),
    ("CAIRO", "IL", "62914", "618"),
    ("JOPLIN", "MO", "64801", "417"),
    ("FARGO", "ND", "58102", "701"),
    ("LAREDO", "TX", "78041", "956"),
    ("FRESNO", "CA", "93721", "559"),
    ("SPOKANE", "WA", "99201", "509"),
    ("MACON", "GA", "31201", "478"),
    ("DAYTON", "OH", "45402", "937"),
    ("ALLENTOWN", "PA", "18101", "610"),
    ("BILLINGS", "MT", "59101", "406"),
    ("TULSA", "OK", "74103", "918"),
    ("KNOXVILLE", "TN", "37902", "865"),
    ("OGDEN", "UT", "84401", "801"),
    ("LAFAYETTE", "LA", "70501", "337"),
    ("GREEN BAY", "WI", "54301", "920"),
)
_STREETS = (
    "W INDUSTRIAL PKWY",
    "MILL ST",
    "COUNTY ROAD 12",
    "N MAIN ST",
    "COMMERCE DR",
    "RAILROAD AVE",
    "HIGHWAY 30 E",
    "LOGISTICS BLVD",
    "E 4TH ST",
    "TRUCK PLAZA RD",
)
PROPERTY_CARGO = (
    "General Freight",
    "Household Goods",
    "Metal: sheets, coils, rolls",
    "Motor Vehicles",
    "Drive/Tow away",
    "Logs, Poles, Beams, Lumber",
    "Building Materials",
    "Mobile Homes",
    "Machinery, Large Objects",
    "Fresh Produce",
    "Liquids/Gases",
    "Intermodal Cont.",
    "Passengers",
    "Oilfield Equipment",
    "Livestock",
    "Grain, Feed, Hay",
    "Coal/Coke",
    "Meat",
    "Garbage/Refuse",
    "US Mail",
    "Chemicals",
    "Commodities Dry Bulk",
    "Refrigerated Food",
    "Beverages",
    "Paper Products",
    "Utilities",
    "Agricultural/Farm Supplies",
    "Construction",
    "Water Well",
)
"""SAFER's cargo classes in its order; a class's QCMobile `cargoClassId` is its position plus one."""
_OOS_REASONS = (
    ("NOP", "90 day failure to pay fine"),
    ("UNSAT", "Unsatisfactory safety rating"),
    ("IMMHAZ", "Imminent hazard"),
)
OPERATION_DESC: Mapping[str, str] = {
    "A": "Interstate",
    "B": "Intrastate Only (HM)",
    "C": "Intrastate Only (Non-HM)",
}
RATING_WORDS: Mapping[str, str] = {"S": "SATISFACTORY", "C": "CONDITIONAL", "U": "UNSATISFACTORY"}

# --- values -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OosOrder:
    order_id: int
    day: date
    reason: str
    description: str


@dataclass(frozen=True, slots=True)
class Profile:
    """What stays the same for a carrier across data versions."""

    dot: int
    legal_name: str
    dba_name: str | None
    passenger: bool
    power_units: int
    drivers: int
    street: str
    city: str
    state: str
    zipcode: str
    mailing_address: str
    phone: str
    ein: int
    operation: str  # "A" interstate, "B" intrastate HM, "C" intrastate non-HM
    for_hire: bool
    authority_active: bool
    docket: int | None
    applicant_id: int | None
    cargo: tuple[str, ...]
    hazmat: bool
    safety_rating: str | None  # "S", "C", "U"
    rating_date: date | None
    review_date: date | None
    oos_order: OosOrder | None
    mcs150_date: date
    mcs150_mileage: int
    mcs150_year: int
    mcs150_outdated: bool
    inspections_per_month: float
    crashes_per_month: float
    us_block: str  # "us_inspections" or "united_states_inspections": SaferWebAPI's two spellings
    canada: tuple[int, int, int, int]  # vehicle inspections, vehicle OOS, driver inspections, driver OOS
    serious_basics: frozenset[int]
    bipd_on_file: str
    cargo_on_file: str
    bond_on_file: str
    row_cycle: tuple[int, ...] | None = None  # exact violation rows per month (month % 24), magic DOTs only

    @property
    def operating_status(self) -> str:
        if self.oos_order is not None:
            return "OUT-OF-SERVICE"
        return "ACTIVE" if self.authority_active else "NOT AUTHORIZED"

    @property
    def allowed_to_operate(self) -> bool:
        return self.oos_order is None and self.authority_active


@dataclass(frozen=True, slots=True)
class Violation:
    kind: ViolationType
    unit: str  # "1" main unit, "2" secondary unit, "D" driver, "C" co-driver
    oos: bool
    soft_hyphen: bool  # Socrata's basic_desc carries a U+00AD
    group_missing: bool  # Socrata omits group_desc (a null)

    @property
    def oos_weight(self) -> int:
        return 2 if self.oos else 0

    @property
    def total_severity(self) -> int:
        return self.kind.severity + self.oos_weight


@dataclass(frozen=True, slots=True)
class Inspection:
    unique_id: str
    month: int
    day: date
    vehicle: bool
    driver: bool
    hazmat: bool
    vehicle_oos: bool
    driver_oos: bool
    hazmat_oos: bool
    violations: tuple[Violation, ...]  # an exact duplicate appears twice


@dataclass(frozen=True, slots=True)
class Crash:
    day: date
    severity: str  # "fatal", "injury", "tow"


@dataclass(frozen=True, slots=True)
class Counts:
    """24-month figures served alike by QCMobile's carrier object and SaferWebAPI's snapshot."""

    vehicle: int
    vehicle_oos: int
    driver: int
    driver_oos: int
    hazmat: int
    hazmat_oos: int
    fatal: int
    injury: int
    tow: int

    @property
    def crashes(self) -> int:
        return self.fatal + self.injury + self.tow


@dataclass(frozen=True, slots=True)
class ViolationRow:
    """One Socrata `8mt8-2mdr` row; `row_id` is Socrata's hidden `:id` (it changes with each monthly run)."""

    row_id: str
    dot: int
    unique_id: str
    insp_date: date
    violation: Violation
    time_weight: int


@dataclass(frozen=True, slots=True)
class BasicMeasure:
    basic: BasicType
    percentile: int | None  # None: "Not Public" (property carriers)
    measure: str  # decimal text, e.g. "0.51", "4.5", "0"
    threshold: int
    alert: bool | None  # None: not public
    serious: bool
    inspections_with_violation: int
    violations: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything csa, violations and inspections serve for one carrier at one data version (the authority
    source reads it too, with `licensing.py`'s dockets, flags and filings).
    """

    profile: Profile
    version: int
    counts: Counts
    rows: tuple[ViolationRow, ...]  # in `:id` order
    basics: tuple[BasicMeasure, ...]  # empty when the carrier had no inspection in the window
    latest_update: date  # SaferWebAPI's latest_update

    @property
    def dot(self) -> int:
        return self.profile.dot


# --- generation -------------------------------------------------------------------------------------------


def _day_in(rng: random.Random, month: int) -> date:
    first = month_first_day(month)
    return first + timedelta(days=rng.randrange(calendar.monthrange(first.year, first.month)[1]))


def _fleet(rng: random.Random) -> int:
    draw = rng.random()
    if draw < 0.6:
        return rng.randint(1, 5)
    if draw < 0.9:
        return rng.randint(6, 40)
    if draw < 0.98:
        return rng.randint(41, 200)
    return rng.randint(201, 800)


@lru_cache(maxsize=16_384)
def profile(dot: int) -> Profile:
    """The version-independent facts of a known carrier (callers check `exists` first)."""
    rng = seeded(dot, "profile")
    passenger = is_passenger(dot)
    units = _fleet(rng)
    city, state, zipcode, area = rng.choice(_CITIES)
    street = f"{rng.randint(10, 9999)} {rng.choice(_STREETS)}"
    suffix = rng.choice(_PASSENGER_SUFFIXES if passenger else _PROPERTY_SUFFIXES)
    legal_name = " ".join(part for part in (rng.choice(_PREFIXES), suffix, rng.choice(_ENTITIES)) if part)
    for_hire = passenger or rng.random() < 0.75
    operation = "A" if rng.random() < 0.85 else rng.choice(("B", "C", "C"))
    hazmat = operation == "B" or (not passenger and rng.random() < 0.06)
    if passenger:
        cargo: tuple[str, ...] = ("Passengers",)
    else:
        picks = {rng.choice(PROPERTY_CARGO[:12]) for _ in range(rng.randint(1, 3))} - {"Passengers"}
        cargo = tuple(sorted(picks or {"General Freight"}, key=PROPERTY_CARGO.index))
        if hazmat:
            cargo = (*cargo, "Chemicals")
    draw = rng.random()
    rating = None if draw < 0.70 else "S" if draw < 0.95 else "C" if draw < 0.99 else "U"
    review_date = date(rng.randint(2012, 2025), rng.randint(1, 12), rng.randint(1, 28)) if rating else None
    rating_date = review_date + timedelta(days=rng.randint(1, 9)) if review_date else None
    oos_order = None
    if rng.random() < 0.04:
        reason, description = rng.choice(_OOS_REASONS)
        day = date(rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28))
        oos_order = OosOrder(
            order_id=rng.randint(10_000, 99_999), day=day, reason=reason, description=description
        )
    mcs150_year = rng.randint(2021, 2025)
    mcs150_date = date(mcs150_year + 1, rng.randint(1, 12), rng.randint(1, 28))
    docket = rng.randint(100_000, 1_499_999) if for_hire else None
    canada = (0, 0, 0, 0)
    if rng.random() < 0.08:
        vehicle, driver = rng.randint(1, 4), rng.randint(1, 5)
        canada = (
            vehicle,
            rng.randint(0, 1) if vehicle > 1 else 0,
            driver,
            rng.randint(0, 1) if driver > 2 else 0,
        )
    po_box = rng.random() < 0.3
    facts = Profile(
        dot=dot,
        legal_name=legal_name,
        dba_name=f"{legal_name.split()[0]} {rng.choice(('TRANSPORT', 'EXPRESS', 'LINES'))}"
        if rng.random() < 0.25
        else None,
        passenger=passenger,
        power_units=units,
        drivers=units + rng.randint(0, max(1, units // 4)),
        street=street,
        city=city,
        state=state,
        zipcode=zipcode,
        mailing_address=f"PO BOX {rng.randint(100, 9999)} {city}, {state}  {zipcode}"
        if po_box
        else f"{street} {city}, {state}  {zipcode}",
        phone=f"({area}) 555-01{rng.randint(0, 99):02d}",
        ein=rng.randint(100_000_000, 999_999_999),
        operation=operation,
        for_hire=for_hire,
        authority_active=not for_hire or rng.random() < 0.97,
        docket=docket,
        applicant_id=rng.randint(100_000, 1_999_999) if docket else None,
        cargo=cargo,
        hazmat=hazmat,
        safety_rating=rating,
        rating_date=rating_date,
        review_date=review_date,
        oos_order=oos_order,
        mcs150_date=mcs150_date,
        mcs150_mileage=units * rng.randint(60, 120) * 1000,
        mcs150_year=mcs150_year,
        mcs150_outdated=rng.random() < 0.1,
        inspections_per_month=0.03 + 0.1 * units * rng.uniform(0.5, 1.5),
        crashes_per_month=0.004 * units * rng.uniform(0.5, 1.5),
        us_block="us_inspections" if stable_seed(dot, "us-block") % 2 == 0 else "united_states_inspections",
        canada=canada,
        serious_basics=frozenset(b.basic_id for b in BASIC_TYPES if b.driver and rng.random() < 0.02),
        bipd_on_file=("5000" if passenger else rng.choice(("750", "1000", "1000", "2000")))
        if for_hire
        else "0",
        cargo_on_file=rng.choice(("0", "0", "100")) if for_hire and not passenger else "0",
        bond_on_file="0",
    )
    override = _PROFILE_OVERRIDES.get(dot)
    return override(facts) if override else facts


def _exact_rows(dot: int) -> Callable[[Profile], Profile]:
    # 2,500 = 20 months of 104 rows + 4 of 105, spread over a 24-month cycle: every 24 consecutive months
    # (every window) hold exactly 2,500 rows, and a bump still drops one month and adds another.
    def apply(facts: Profile) -> Profile:
        cycle = [104] * 20 + [105] * 4
        seeded(dot, "cycle").shuffle(cycle)
        return replace(facts, power_units=420, drivers=455, row_cycle=tuple(cycle), passenger=False)

    return apply


def _not_public(facts: Profile) -> Profile:
    return replace(facts, passenger=False, power_units=max(facts.power_units, 12), inspections_per_month=2.5)


def _scripted_base(
    *, passenger: bool, units: int, inspections_per_month: float
) -> Callable[[Profile], Profile]:
    # A plain carrier for a script to change: for hire, interstate, authority active, no order, no rating,
    # no hazmat, no Canadian inspections, no serious violation; busy enough to have every BASIC.
    def apply(facts: Profile) -> Profile:
        rng = seeded(facts.dot, "scripted-profile")
        return replace(
            facts,
            passenger=passenger,
            power_units=units,
            drivers=units + units // 8,
            operation="A",
            for_hire=True,
            authority_active=True,
            docket=facts.docket or rng.randint(100_000, 1_499_999),
            applicant_id=facts.applicant_id or rng.randint(100_000, 1_999_999),
            cargo=("Passengers",) if passenger else ("General Freight",),
            hazmat=False,
            safety_rating=None,
            rating_date=None,
            review_date=None,
            oos_order=None,
            inspections_per_month=inspections_per_month,
            crashes_per_month=0.002 * units,
            canada=(0, 0, 0, 0),
            serious_basics=frozenset(),
            bipd_on_file="5000" if passenger else "1000",
            cargo_on_file="0" if passenger else "100",
        )

    return apply


_PROFILE_OVERRIDES: Mapping[int, Callable[[Profile], Profile]] = {
    VIOLATIONS_2500_ROWS: _exact_rows(VIOLATIONS_2500_ROWS),
    VIOLATIONS_EMPTY_EVERY_OTHER: _scripted_base(passenger=False, units=40, inspections_per_month=4.0),
    CSA_NOT_PUBLIC: _not_public,
    SCRIPTED_ALERT: _scripted_base(passenger=True, units=24, inspections_per_month=3.0),
    SCRIPTED_OOS_VIOLATION: _scripted_base(passenger=False, units=90, inspections_per_month=10.0),
    SCRIPTED_RATING_AND_STATUS: _scripted_base(passenger=False, units=18, inspections_per_month=2.0),
    SCRIPTED_NOT_PUBLIC: _scripted_base(passenger=True, units=30, inspections_per_month=3.0),
    **{
        dot: _scripted_base(passenger=False, units=6 + dot % 100, inspections_per_month=1.0)
        for dot in range(SCRIPTED_AUTHORITY_STATUS, SCRIPTED_BELOW_REQUIRED + 1)
    },
    EXAMPLE_CARRIER: lambda facts: replace(facts, bipd_on_file="1000"),
}


def _violation(rng: random.Random, driver_part: bool, vehicle_part: bool) -> Violation:
    use_driver = driver_part and (not vehicle_part or rng.random() < 0.45)
    if use_driver:
        kind = rng.choices(_DRIVER_TYPES, weights=_DRIVER_WEIGHTS)[0]
        unit = "C" if rng.random() < 0.03 else "D"
    else:
        kind = rng.choice(_VEHICLE_TYPES)
        unit = "2" if rng.random() < 0.25 else "1"
    return Violation(
        kind=kind,
        unit=unit,
        oos=rng.random() < kind.p_oos,
        soft_hyphen=rng.random() < 0.03,
        group_missing=rng.random() < 0.02,
    )


def _inspection(
    rng: random.Random, dot: int, month: int, index: int, facts: Profile, n_violations: int | None
) -> Inspection:
    level = rng.random()
    vehicle, driver = (True, True) if level < 0.55 else (False, True) if level < 0.9 else (True, False)
    if n_violations is None:
        n_violations = 0 if rng.random() < 0.45 else 1 + min(int(rng.expovariate(0.8)), 6)
    violations: list[Violation] = []
    while len(violations) < n_violations:
        found = _violation(rng, driver, vehicle)
        violations.append(found)
        if len(violations) < n_violations and rng.random() < 0.03:
            violations.append(found)  # an exact duplicate row, as the public data has
    hazmat = facts.hazmat and vehicle and rng.random() < 0.3
    vehicle_oos = any(v.oos and v.unit in ("1", "2") for v in violations)
    return Inspection(
        unique_id=str(800_000_000 + rng.randrange(190_000_000)),
        month=month,
        day=_day_in(rng, month),
        vehicle=vehicle,
        driver=driver,
        hazmat=hazmat,
        vehicle_oos=vehicle_oos,
        driver_oos=any(v.oos and v.unit in ("D", "C") for v in violations),
        hazmat_oos=hazmat and vehicle_oos and rng.random() < 0.5,
        violations=tuple(violations),
    )


@lru_cache(maxsize=65_536)
def month_events(dot: int, month: int) -> tuple[tuple[Inspection, ...], tuple[Crash, ...]]:
    """A carrier's inspections (by date) and crashes in one month: the same at every data version."""
    facts = profile(dot)
    rng = seeded(dot, "month", month)
    inspections: list[Inspection] = []
    if facts.row_cycle is not None:
        remaining = facts.row_cycle[month % 24]
        while remaining:
            take = min(remaining, rng.randint(1, 4))
            inspections.append(_inspection(rng, dot, month, len(inspections), facts, take))
            remaining -= take
    else:
        for index in range(_poisson(rng, facts.inspections_per_month)):
            inspections.append(_inspection(rng, dot, month, index, facts, None))
    crashes = tuple(
        Crash(
            day=_day_in(rng, month), severity=rng.choices(("tow", "injury", "fatal"), weights=(70, 25, 5))[0]
        )
        for _ in range(_poisson(rng, facts.crashes_per_month))
    )
    inspections.sort(key=lambda i: (i.day, i.unique_id))
    return tuple(inspections), tuple(sorted(crashes, key=lambda c: c.day))


def _window_events(dot: int, version: int) -> tuple[list[Inspection], list[Crash]]:
    inspections: list[Inspection] = []
    crashes: list[Crash] = []
    for month in window(version):
        found, crashed = month_events(dot, month)
        inspections.extend(found)
        crashes.extend(crashed)
    return inspections, crashes


@lru_cache(maxsize=16_384)
def counts(dot: int, version: int) -> Counts:
    """The 24-month inspection and crash figures of a known carrier at a version."""
    inspections, crashes = _window_events(dot, version)
    return Counts(
        vehicle=sum(1 for i in inspections if i.vehicle),
        vehicle_oos=sum(1 for i in inspections if i.vehicle_oos),
        driver=sum(1 for i in inspections if i.driver),
        driver_oos=sum(1 for i in inspections if i.driver_oos),
        hazmat=sum(1 for i in inspections if i.hazmat),
        hazmat_oos=sum(1 for i in inspections if i.hazmat_oos),
        fatal=sum(1 for c in crashes if c.severity == "fatal"),
        injury=sum(1 for c in crashes if c.severity == "injury"),
        tow=sum(1 for c in crashes if c.severity == "tow"),
    )


_ROW_ID_ALPHABET = "23456789abcdefghijkmnpqrstuvwxyz"


def row_id(seed: int) -> str:
    """A Socrata `:id` (`row-xxxx~xxxx~xxxx`) from a 64-bit seed."""
    chars = []
    for _ in range(12):
        chars.append(_ROW_ID_ALPHABET[seed & 31])
        seed >>= 5
    text = "".join(chars)
    return f"row-{text[:4]}~{text[4:8]}~{text[8:]}"


_MASK64 = (1 << 64) - 1
_CODE_SEEDS: Mapping[str, int] = {v.code: stable_seed(v.code) for v in VIOLATION_TYPES}


def _mix64(value: int) -> int:
    """splitmix64's finalizer: a cheap, well-spread 64-bit mix (row ids need thousands per carrier)."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def _rows(dot: int, version: int, inspections: list[Inspection]) -> tuple[ViolationRow, ...]:
    month_of_run = run_month(version)
    base = stable_seed(dot, month_of_run, "rows")
    rows: list[ViolationRow] = []
    for inspection in inspections:
        weight = time_weight(month_of_run - inspection.month)
        seen: dict[tuple[str, str], int] = {}
        for violation in inspection.violations:
            key = (violation.kind.code, violation.unit)
            ordinal = seen.get(key, 0)
            seen[key] = ordinal + 1
            detail = _mix64(_CODE_SEEDS[key[0]] ^ (ord(key[1]) << 16 | ordinal))
            seed = _mix64(base ^ _mix64(int(inspection.unique_id) ^ detail))
            rows.append(
                ViolationRow(row_id(seed), dot, inspection.unique_id, inspection.day, violation, weight)
            )
    rows.sort(key=lambda r: r.row_id)
    return tuple(rows)


def format_measure(value: float) -> str:
    """A measure as QCMobile writes it: at most two decimals, no trailing zeros ("4.5", "0.52", "0")."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _basics(
    facts: Profile, version: int, inspections: list[Inspection], rows: tuple[ViolationRow, ...]
) -> tuple[BasicMeasure, ...]:
    if not inspections:
        return ()  # a carrier without inspections has no measures: QCMobile answers `[]`
    month_of_run = run_month(version)
    measures = []
    for basic in BASIC_TYPES:
        relevant = [i for i in inspections if (i.driver if basic.driver else i.vehicle)]
        weights = sum(time_weight(month_of_run - i.month) for i in relevant)
        mine = [r for r in rows if r.violation.kind.basic_id == basic.basic_id]
        points = sum(r.violation.total_severity * r.time_weight for r in mine)
        measure = points / weights if weights else 0.0
        threshold = basic.threshold_passenger if facts.passenger else basic.threshold_property
        percentile: int | None = None
        if facts.passenger:
            percentile = 0
            if mine:
                base = round(100 * (1 - math.exp(-measure / 4)))
                jitter = seeded(facts.dot, version, basic.basic_id, "percentile")
                nudge = jitter.choice((-2, -1, 1, 2)) if jitter.random() < 0.3 else 0
                percentile = min(99, max(1, base + nudge))
        measures.append(
            BasicMeasure(
                basic=basic,
                percentile=percentile,
                measure=format_measure(measure),
                threshold=threshold,
                alert=None if percentile is None else percentile >= threshold,
                serious=basic.basic_id in facts.serious_basics,
                inspections_with_violation=len({r.unique_id for r in mine}),
                violations=len(mine),
            )
        )
    return tuple(measures)


def latest_update(dot: int, version: int) -> date:
    """SAFER's `latest_update`: the first version's date, moved to a later version's date whenever that
    version's figures differ from the one before.
    """
    changed = version
    while changed > 1 and counts(dot, changed) == counts(dot, changed - 1):
        changed -= 1
    if changed == 1:
        return run_date(1) - timedelta(days=seeded(dot, "safer-base").randint(1, 20))
    return run_date(changed) + timedelta(days=seeded(dot, changed, "safer").randint(1, 9))


def _generated(dot: int, version: int) -> Snapshot:
    """A known carrier at a version by the rules of this module (no script applied)."""
    facts = profile(dot)
    inspections, _ = _window_events(dot, version)
    rows = _rows(dot, version, inspections)
    return Snapshot(
        profile=facts,
        version=version,
        counts=counts(dot, version),
        rows=rows,
        basics=_basics(facts, version, inspections, rows),
        latest_update=latest_update(dot, version),
    )


# --- scripted DOTs: one documented change at each bump ----------------------------------------------------

Script = Callable[[Snapshot, int], Snapshot]
"""(the carrier as generated at version 1, a data version) -> the carrier at that version."""


def _at_version(found: Snapshot, version: int) -> Snapshot:
    """`found` served at `version`, with Socrata `:id`s minted for that version (rows stay in `:id` order,
    as every carrier's do); nothing else is touched.
    """
    seed = stable_seed(found.dot, run_month(version), "scripted-rows")
    rows = [replace(row, row_id=row_id(_mix64(seed ^ index))) for index, row in enumerate(found.rows)]
    return replace(found, version=version, rows=tuple(sorted(rows, key=lambda r: r.row_id)))


def _with_basic(
    basics: tuple[BasicMeasure, ...], basic_id: int, change: Callable[[BasicMeasure], BasicMeasure]
) -> tuple[BasicMeasure, ...]:
    return tuple(change(m) if m.basic.basic_id == basic_id else m for m in basics)


UNSAFE_DRIVING = 11
HOS_COMPLIANCE = 12
VEHICLE_MAINTENANCE = 15
ALERT_PERCENTILES = (45, 58)
"""99700001's Unsafe Driving percentile at odd and at even versions (its threshold is 50)."""
VEHICLE_MAINTENANCE_PUBLIC = 38
"""99700004's Vehicle Maintenance percentile at odd versions (threshold 65: no alert); even: Not Public."""
ADDED_VIOLATION = next(v for v in VIOLATION_TYPES if v.code == "3953A2")
"""99700002's violation added at each bump: HOS, 11-hour limit, severity 7, out of service (weight 2)."""


def _even(version: int) -> bool:
    return version % 2 == 0


def _alert_flips(base: Snapshot, version: int) -> Snapshot:
    """99700001: Unsafe Driving 45% (no alert) at odd versions, 58% (over its threshold of 50) at even."""
    percentile = ALERT_PERCENTILES[_even(version)]
    basics = _with_basic(
        base.basics,
        UNSAFE_DRIVING,
        lambda m: replace(m, percentile=percentile, alert=percentile >= m.threshold),
    )
    return _at_version(replace(base, basics=basics), version)


def added_inspection(version: int) -> Inspection:
    """The driver-only inspection 99700002 gains at the bump to `version` (>= 2): on the 15th of the month
    that bump adds to the window, with one out-of-service HOS violation of the driver.
    """
    month = run_month(version) - 1
    violation = Violation(ADDED_VIOLATION, unit="D", oos=True, soft_hyphen=False, group_missing=False)
    return Inspection(
        unique_id=str(990_700_000 + version),  # above the generated ids (800,000,000..989,999,999)
        month=month,
        day=month_first_day(month).replace(day=15),
        vehicle=False,
        driver=True,
        hazmat=False,
        vehicle_oos=False,
        driver_oos=True,
        hazmat_oos=False,
        violations=(violation,),
    )


def _oos_violation_each_bump(base: Snapshot, version: int) -> Snapshot:
    """99700002: each bump adds one driver inspection with one out-of-service HOS violation, and every
    figure that counts it moves with it (the BASIC's counts and measure, the driver inspection and OOS
    counts, SAFER's `latest_update`). Added rows keep `time_weight` 3, as the base keeps its weights.
    """
    added = [added_inspection(k) for k in range(2, version + 1)]
    if not added:
        return _at_version(base, version)
    dot = base.dot
    rows = base.rows + tuple(
        ViolationRow("", dot, i.unique_id, i.day, v, time_weight(1)) for i in added for v in i.violations
    )
    # the HOS measure over the base's weights (frozen at version 1) plus the added inspections'
    first_run = run_month(1)
    weights = sum(time_weight(first_run - i.month) for i in _window_events(dot, 1)[0] if i.driver)
    weights += time_weight(1) * len(added)
    hos = [r for r in rows if r.violation.kind.basic_id == HOS_COMPLIANCE]
    points = sum(r.violation.total_severity * r.time_weight for r in hos)
    basics = _with_basic(
        base.basics,
        HOS_COMPLIANCE,
        lambda m: replace(
            m,
            measure=format_measure(points / weights),
            violations=len(hos),
            inspections_with_violation=len({r.unique_id for r in hos}),
        ),
    )
    counts = replace(
        base.counts, driver=base.counts.driver + len(added), driver_oos=base.counts.driver_oos + len(added)
    )
    moved = run_date(version) + timedelta(days=3)
    found = replace(base, rows=rows, basics=basics, counts=counts, latest_update=moved)
    return _at_version(found, version)


def _rating_and_status_flip(base: Snapshot, version: int) -> Snapshot:
    """99700003: SATISFACTORY and ACTIVE at odd versions, CONDITIONAL and OUT-OF-SERVICE (an order for a
    fine not paid) at even ones. Each version has its own review (the run date minus 14 days), rating (minus
    7) and, when out of service, order (minus 3, id 97000 + version); SAFER's `latest_update` is the run date
    plus 3 days.
    """
    run = run_date(version)
    order = None
    if _even(version):
        order = OosOrder(97_000 + version, run - timedelta(days=3), "NOP", "90 day failure to pay fine")
    facts = replace(
        base.profile,
        safety_rating="C" if _even(version) else "S",
        review_date=run - timedelta(days=14),
        rating_date=run - timedelta(days=7),
        oos_order=order,
    )
    return _at_version(replace(base, profile=facts, latest_update=run + timedelta(days=3)), version)


def _not_public_flips(base: Snapshot, version: int) -> Snapshot:
    """99700004: Vehicle Maintenance 38% (no alert) at odd versions, "Not Public" at even ones."""
    percentile = None if _even(version) else VEHICLE_MAINTENANCE_PUBLIC
    alert = None if percentile is None else False
    basics = _with_basic(
        base.basics, VEHICLE_MAINTENANCE, lambda m: replace(m, percentile=percentile, alert=alert)
    )
    return _at_version(replace(base, basics=basics), version)


def _frozen(base: Snapshot, version: int) -> Snapshot:
    """The authority scripts of `licensing.py` (99700006, 07, 09, 10, 11): what this module serves stays as
    at version 1; their change is in `/authority`, `/docket-numbers` or the insurance dataset only.
    """
    return _at_version(base, version)


def _authority_flips(base: Snapshot, version: int) -> Snapshot:
    """99700005: common authority active at odd versions, inactive at even ones; what follows from it moves
    with it (QCMobile `allowedToOperate`, SAFER's `operating_status` and `latest_update`, the run date plus
    3 days at every version).
    """
    facts = replace(base.profile, authority_active=not _even(version))
    moved = run_date(version) + timedelta(days=3)
    return _at_version(replace(base, profile=facts, latest_update=moved), version)


AUTHORITY_ORDER_REASON = ("IMMHAZ", "Imminent hazard")
"""99700008's out-of-service order reason (99700003's is a fine not paid)."""


def _oos_order_flips(base: Snapshot, version: int) -> Snapshot:
    """99700008: an out-of-service order at even versions (id 98000 + version, the run date minus 2 days,
    an imminent hazard), none at odd ones; SAFER's `latest_update` is the run date plus 3 days.
    """
    order = None
    if _even(version):
        order = OosOrder(98_000 + version, run_date(version) - timedelta(days=2), *AUTHORITY_ORDER_REASON)
    facts = replace(base.profile, oos_order=order)
    moved = run_date(version) + timedelta(days=3)
    return _at_version(replace(base, profile=facts, latest_update=moved), version)


BELOW_REQUIRED_BIPD = ("750", "500")
"""99700012's BIPD on file (thousands of dollars) at odd and at even versions; 750 is required."""


def _bipd_flips(base: Snapshot, version: int) -> Snapshot:
    """99700012: BIPD on file 750 (the required amount) at odd versions, 500 at even ones."""
    facts = replace(base.profile, bipd_on_file=BELOW_REQUIRED_BIPD[_even(version)])
    return _at_version(replace(base, profile=facts), version)


SCRIPTS: Mapping[int, Script] = {
    SCRIPTED_ALERT: _alert_flips,
    SCRIPTED_OOS_VIOLATION: _oos_violation_each_bump,
    SCRIPTED_RATING_AND_STATUS: _rating_and_status_flip,
    SCRIPTED_NOT_PUBLIC: _not_public_flips,
    SCRIPTED_AUTHORITY_STATUS: _authority_flips,
    SCRIPTED_REVOCATION_PENDING: _frozen,
    SCRIPTED_DOCKET_ADDED: _frozen,
    SCRIPTED_OOS_ORDER: _oos_order_flips,
    SCRIPTED_FILING_ADDED: _frozen,
    SCRIPTED_CANCELLATION_PENDING: _frozen,
    SCRIPTED_CANCELLED: _frozen,
    SCRIPTED_BELOW_REQUIRED: _bipd_flips,
}
"""The scripted DOTs: each gets its version-1 carrier and a version; the README's magic-DOT table lists
what changes at each bump."""


@lru_cache(maxsize=4_096)
def snapshot(dot: int, version: int) -> Snapshot | None:
    """The carrier at a data version, or None for a DOT the sandbox does not know."""
    if not exists(dot):
        return None
    script = SCRIPTS.get(dot)
    return script(_generated(dot, 1), version) if script else _generated(dot, version)


DIRECTORY_DOTS: tuple[int, ...] = (*range(1_000_001, 1_002_001), 2_847_193, *sorted(SCRIPTS))
"""The carriers QCMobile's name and docket searches look through (a search cannot scan every DOT)."""
SEARCH_PAGE_MAX = 50  # QCMobile answers at most 50 carriers per search


@lru_cache(maxsize=1)
def directory() -> tuple[Profile, ...]:
    """The profiles of `DIRECTORY_DOTS`, in DOT order."""
    return tuple(profile(dot) for dot in DIRECTORY_DOTS)


def _words(text: str) -> str:
    return " ".join(text.upper().split())


@lru_cache(maxsize=1024)
def search_name(name: str) -> tuple[int, ...]:
    """DOTs of the directory whose legal or DBA name contains `name` (case and spacing ignored)."""
    wanted = _words(name)
    if not wanted:
        return ()
    return tuple(
        p.dot for p in directory() if wanted in _words(p.legal_name) or wanted in _words(p.dba_name or "")
    )


def search_docket(docket: str) -> tuple[int, ...]:
    """DOTs of the directory holding MC docket `docket` (digits, leading zeros allowed)."""
    if not (docket.isascii() and docket.isdigit() and len(docket) <= 8):
        return ()
    return _dockets().get(int(docket), ())


@lru_cache(maxsize=1)
def _dockets() -> Mapping[int, tuple[int, ...]]:
    index: dict[int, tuple[int, ...]] = {}
    for p in directory():
        if p.docket is not None:
            index[p.docket] = (*index.get(p.docket, ()), p.dot)
    return index


@lru_cache(maxsize=64)
def head_rows(version: int) -> tuple[ViolationRow, ...]:
    """The rows a Socrata query without a DOT filter reads: those of `HEAD_DOTS`, in `:id` order."""
    rows = [row for dot in HEAD_DOTS if (found := snapshot(dot, version)) for row in found.rows]
    return tuple(sorted(rows, key=lambda r: r.row_id))


# --- formats shared by the sources ------------------------------------------------------------------------


def socrata_date(day: date) -> str:
    """`DD-MON-YY` with an upper-case English month, whatever the locale (`02-SEP-25`)."""
    return f"{day.day:02d}-{MONTHS[day.month - 1]}-{day.year % 100:02d}"


def mdy(day: date | None) -> str | None:
    """SAFER's `MM/DD/YYYY`, or None."""
    return None if day is None else f"{day.month:02d}/{day.day:02d}/{day.year:04d}"


def oos_rate(out_of_service: int, inspections: int) -> int | float:
    """QCMobile's OOS rate: a JSON number, a whole one when it is whole (`0`, `10`, `16.666666666666664`)."""
    if not inspections:
        return 0
    rate = out_of_service / inspections * 100
    return int(rate) if rate == int(rate) else rate


def percent(out_of_service: int, inspections: int) -> str:
    """SAFER's percent string: `"0%"`, `"50%"`, `"16.67%"`."""
    if not inspections or not out_of_service:
        return "0%"
    rate = round(out_of_service / inspections * 100, 2)
    return f"{int(rate)}%" if rate == int(rate) else f"{rate:.2f}%"
