"""Club profiles of ``lapse simulate``: every profile writes valid files, each differs from
the reference club in the knob it claims, and the same seed gives the same files."""

from __future__ import annotations

import filecmp
import itertools
import json
import statistics
from collections import defaultdict
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from history import read_history
from lapse.cli import main
from schemas.history import RowError
from schemas.units import DAY
from simulator import PROFILES, SimParams, simulate_files, simulate_profile
from tests.simulator.test_simulate import FILES, START, access_disorder, rows, ts, visits

SMALL = {"members": 400, "days": 240, "seed": 3, "start": START}


@pytest.fixture(scope="module")
def clubs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every profile at 1,500 members over a year (well under a second each)."""
    out: dict[str, Path] = {}
    for name, profile in PROFILES.items():
        path = tmp_path_factory.mktemp(name)
        simulate_files(
            str(path),
            members=1500,
            days=365,
            seed=7,
            start=START,
            sites=profile.sites,
            params=profile.params,
            profile=name,
        )
        out[name] = path
    return out


def test_there_are_at_least_five_profiles_besides_the_reference() -> None:
    assert PROFILES["default"].params == SimParams()
    others = [p for name, p in PROFILES.items() if name != "default"]
    assert len(others) >= 5
    assert len({p.params for p in others}) == len(others)
    assert all(p.summary for p in PROFILES.values())


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_reads_back_without_a_row_error(clubs: dict[str, Path], name: str) -> None:
    club = clubs[name]
    p = PROFILES[name].params
    for file in ("access.csv", "membership.csv"):
        errors = [row for _, row in read_history(club / file, "club") if isinstance(row, RowError)]
        assert errors == [], (name, file, errors[:3])
    # Late rows are out of order, but never further than the profile allows: an hour, the
    # very late days, or a controller outage.
    _, late, _, worst = access_disorder(club / "access.csv", p.late_max_seconds)
    assert late > 0
    bound = max(p.late_max_seconds, p.very_late_days[1] * DAY)
    if p.outages_per_year:
        bound = max(bound, p.outage_days[1] * DAY)
    assert worst <= bound, (name, worst / DAY)
    # Membership rows are in time order (as instants: offsets may differ between rows).
    times = [ts(m["occurred_at"]) or 0.0 for m in rows(club / "membership.csv")]
    assert times == sorted(times)
    meta = json.loads((club / "simulation.json").read_text())
    assert meta["profile"] == name and meta["sites"] == [
        f"site{i + 1}" for i in range(PROFILES[name].sites)
    ]


def test_the_same_seed_gives_the_same_files_for_every_knob(tmp_path: Path) -> None:
    # Legacy: records before the window, outages and a zone; tiny sorted runs force the merge.
    p = PROFILES["legacy"].params
    simulate_files(str(tmp_path / "a"), params=p, sites=4, **SMALL)  # type: ignore[arg-type]
    simulate_files(
        str(tmp_path / "b"),
        params=p,
        sites=4,
        run_lines=300,
        **SMALL,  # type: ignore[arg-type]
    )
    simulate_files(
        str(tmp_path / "c"),
        params=p,
        sites=4,
        **{**SMALL, "seed": 4},  # type: ignore[arg-type]
    )
    for name in FILES:
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False), name
    assert not filecmp.cmp(tmp_path / "a" / "access.csv", tmp_path / "c" / "access.csv", False)


def test_payment_noise_changes_nothing_but_the_failed_payments(tmp_path: Path) -> None:
    """The profile knobs draw from streams of their own: adding failed payments of members
    who stay leaves every visit, and every other membership row, as it was."""
    base = SimParams()
    noisy = replace(base, stayer_payment_failures_per_year=0.5)
    simulate_files(str(tmp_path / "a"), params=base, **SMALL)  # type: ignore[arg-type]
    simulate_files(str(tmp_path / "b"), params=noisy, **SMALL)  # type: ignore[arg-type]
    assert filecmp.cmp(tmp_path / "a" / "access.csv", tmp_path / "b" / "access.csv", False)
    assert filecmp.cmp(tmp_path / "a" / "truth.csv", tmp_path / "b" / "truth.csv", False)
    a = rows(tmp_path / "a" / "membership.csv")
    b = rows(tmp_path / "b" / "membership.csv")
    key = [(m["member_id"], m["occurred_at"], m["event"]) for m in a]
    assert key == [
        (m["member_id"], m["occurred_at"], m["event"])
        for m in b
        if (m["member_id"], m["occurred_at"], m["event"]) in set(key)
    ]
    assert len(b) - len(a) > 50


def test_holiday_heavy_members_who_stay_have_more_long_silences(clubs: dict[str, Path]) -> None:
    def long_silences_per_member(club: Path) -> float:
        """Silences of members still coming at the end longer than two weeks and three times
        their own usual gap (a holiday, not their rhythm), per member."""
        starts = visits(rows(club / "access.csv"))
        stayers = [t for t in rows(club / "truth.csv") if t["dropout"] == "none"]
        n = 0
        for t in stayers:
            v = starts.get(t["member_id"], [])
            bound = max(14.0, 3 * float(t["usual_gap_days"]))
            n += sum(1 for a, b in itertools.pairwise(v) if (b - a) / DAY > bound)
        return n / len(stayers)

    holiday = long_silences_per_member(clubs["holiday"])
    default = long_silences_per_member(clubs["default"])
    assert holiday > 1.5 * default, (holiday, default)


def test_regular_and_irregular_clubs_differ_in_how_steady_the_gaps_are(
    clubs: dict[str, Path],
) -> None:
    def dispersion(club: Path) -> float:
        """Median over members (no routine, stayers) of the CV of their gaps under 21 days
        (holidays left out)."""
        truth = rows(club / "truth.csv")
        starts = visits(rows(club / "access.csv"))
        cvs = []
        for t in truth:
            if t["dropout"] != "none" or t["routine"] == "true":
                continue
            v = starts.get(t["member_id"], [])
            gaps = [(b - a) / DAY for a, b in itertools.pairwise(v)]
            gaps = [g for g in gaps if g < 21]
            if len(gaps) >= 8:
                cvs.append(statistics.pstdev(gaps) / statistics.mean(gaps))
        return statistics.median(cvs)

    city, default, irregular = (dispersion(clubs[n]) for n in ("city", "default", "irregular"))
    assert city < default < irregular, (city, default, irregular)


def test_sudden_stoppers_decline_less_and_pay_less_signal(clubs: dict[str, Path]) -> None:
    def decliners(club: Path) -> float:
        kinds = [t["dropout"] for t in rows(club / "truth.csv") if t["dropout"] != "none"]
        return kinds.count("gradual") / len(kinds)

    assert decliners(clubs["studio"]) < 0.25 < 0.4 < decliners(clubs["default"])

    def payments(club: Path) -> tuple[float, float]:
        """Share of cancellations preceded by a failed payment; failed payments of members
        who stay (no cancellation) per 1,000."""
        truth = {t["member_id"]: t for t in rows(club / "truth.csv")}
        failed = {
            m["member_id"] for m in rows(club / "membership.csv") if m["event"] == "payment_failed"
        }
        leavers = [m for m, t in truth.items() if t["cancelled_at"]]
        stayers = [m for m, t in truth.items() if t["dropout"] == "none"]
        return (
            sum(1 for m in leavers if m in failed) / len(leavers),
            1000 * sum(1 for m in stayers if m in failed) / len(stayers),
        )

    studio, default = payments(clubs["studio"]), payments(clubs["default"])
    assert studio[0] < 0.5 * default[0]
    assert default[1] == 0 < 100 < studio[1]  # ~0.3 a year each


def test_fading_leavers_fade_and_its_members_are_regular(clubs: dict[str, Path]) -> None:
    def dropouts(club: Path) -> list[dict[str, str]]:
        return [t for t in rows(club / "truth.csv") if t["dropout"] != "none"]

    fading, default = dropouts(clubs["fading"]), dropouts(clubs["default"])
    share = [t["dropout"] for t in fading].count("gradual") / len(fading)
    assert share > 0.7 > 0.6 > [t["dropout"] for t in default].count("gradual") / len(default)
    # Every member comes at least twice a month (the reference club's floor is 0.5).
    gaps = [float(t["usual_gap_days"]) for t in rows(clubs["fading"] / "truth.csv")]
    assert max(gaps) <= 30.44 / 2 + 0.01
    assert max(float(t["usual_gap_days"]) for t in rows(clubs["default"] / "truth.csv")) > 30
    # A fading leaver came less often in the six weeks before the last visit than in the
    # twelve before those; a leaver who stopped at once did not.
    seen = visits(rows(clubs["fading"] / "access.csv"))

    def ratio(kind: str) -> float:
        recent = earlier = 0
        for t in fading:
            last = ts(t["last_visit_at"])
            if t["dropout"] != kind or last is None or last - 126 * DAY < START.timestamp():
                continue
            v = seen.get(t["member_id"], [])
            recent += sum(1 for x in v if last - 42 * DAY <= x < last)
            earlier += sum(1 for x in v if last - 126 * DAY <= x < last - 42 * DAY)
        return recent / 42 / (earlier / 84)

    assert ratio("gradual") < 0.85 < 1.0 < ratio("sudden")

    # Some of its leavers' cards fail while they still come (the first failure before the
    # last visit); the reference club's fail only after it.
    def failed_before_last(club: Path) -> tuple[int, int]:
        last = {t["member_id"]: ts(t["last_visit_at"]) for t in dropouts(club)}
        first: dict[str, float] = {}
        for m in rows(club / "membership.csv"):
            t = ts(m["occurred_at"])
            if m["event"] == "payment_failed" and m["member_id"] in last and t is not None:
                first[m["member_id"]] = min(t, first.get(m["member_id"], t))
        early = sum(1 for k, t in first.items() if (v := last[k]) is not None and t < v)
        return early, len(first)

    early, failing = failed_before_last(clubs["fading"])
    assert 0.25 < early / failing < 0.55
    assert failed_before_last(clubs["default"])[0] == 0


def test_legacy_records_start_two_years_before_the_gate_log(clubs: dict[str, Path]) -> None:
    club = clubs["legacy"]
    access = rows(club / "access.csv")
    membership = rows(club / "membership.csv")
    first_access = min(float(a["_t"]) for a in access)
    assert first_access >= START.timestamp()
    joined = [float(m["_t"]) for m in membership if m["event"] == "joined"]
    years = (first_access - min(joined)) / DAY / 365.25
    assert 1.95 < years <= 2.0 + 2 / 365.25, years
    # Joined rows spread over those two years, and some of those members left before the
    # gate log started: membership rows only, cancelled before the first access row.
    before = [t for t in joined if t < START.timestamp()]
    assert len(before) > 300
    with_access = {a["member_id"] for a in access}
    cancelled = {m["member_id"]: float(m["_t"]) for m in membership if m["event"] == "cancelled"}
    former = [m for m, at in cancelled.items() if at < START.timestamp()]
    assert len(former) > 50
    assert not set(former) & with_access
    # The reference club writes no row before its window.
    assert min(float(m["_t"]) for m in rows(clubs["default"] / "membership.csv")) >= (
        START.timestamp()
    )


def test_controller_outages_deliver_a_site_buffer_at_once(clubs: dict[str, Path]) -> None:
    """Legacy's gates go offline: rows of one site come days late, in bursts."""
    access = rows(clubs["legacy"] / "access.csv")
    top = float("-inf")
    late_by_site_day: dict[tuple[str, int], int] = defaultdict(int)
    for a in access:
        at = float(a["_t"])
        if at < top - DAY:
            late_by_site_day[(a["site_id"], int(top // DAY))] += 1
        top = max(top, at)
    bursts = [n for n in late_by_site_day.values() if n >= 100]
    assert len(bursts) >= 5, sorted(late_by_site_day.values())[-10:]
    default = rows(clubs["default"] / "access.csv")
    _, _, beyond_default, _ = access_disorder(clubs["default"] / "access.csv", DAY)
    _, _, beyond_legacy, _ = access_disorder(clubs["legacy"] / "access.csv", DAY)
    assert beyond_legacy > 10 * beyond_default and len(default) > 0


def test_a_zone_with_dst_writes_local_hours_and_changing_offsets(clubs: dict[str, Path]) -> None:
    """Berlin: +01:00 in winter, +02:00 from the last Sunday of March; visits keep their
    local hours (none before 05:00 local), so their UTC hours move by one."""
    access = rows(clubs["city"] / "access.csv")
    offsets: dict[str, set[str]] = defaultdict(set)
    earliest_utc = {"+01:00": 24.0, "+02:00": 24.0}
    for a in access:
        if a["kind"] == "gate_entry":
            local = datetime.fromisoformat(a["occurred_at"])
            offset = a["occurred_at"][-6:]
            offsets[local.date().isoformat()].add(offset)
            assert local.hour >= 5, a
            utc = local.astimezone(UTC)
            earliest_utc[offset] = min(earliest_utc[offset], utc.hour + utc.minute / 60)
    assert 4.0 <= earliest_utc["+01:00"] < 4.5 and 3.0 <= earliest_utc["+02:00"] < 3.5
    assert offsets["2025-03-29"] == {"+01:00"} and offsets["2025-03-31"] == {"+02:00"}
    assert offsets["2025-10-25"] == {"+02:00"} and offsets["2025-10-27"] == {"+01:00"}
    # Sydney: the southern summer is the DST one.
    irregular = rows(clubs["irregular"] / "access.csv")
    jan = {a["occurred_at"][-6:] for a in irregular if a["occurred_at"].startswith("2025-01-1")}
    jul = {a["occurred_at"][-6:] for a in irregular if a["occurred_at"].startswith("2025-07-1")}
    assert jan == {"+11:00"} and jul == {"+10:00"}


def test_the_command_takes_a_profile_and_the_years_of_records(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    main(
        [
            "simulate",
            *("--members", "200", "--days", "60", "--seed", "4", "--tenant", "club"),
            *("--out", str(out), "--profile", "city", "--membership-years-before", "1"),
            *("--timezone", "Asia/Tokyo"),
        ]
    )
    meta = json.loads((out / "simulation.json").read_text())
    assert meta["params"]["timezone"] == "Asia/Tokyo"
    assert {a["occurred_at"][-6:] for a in rows(out / "access.csv")} == {"+09:00"}
    assert meta["profile"] == "city" and meta["sites"] == ["site1", "site2"]
    assert meta["params"]["membership_years_before"] == 1.0
    assert meta["params"]["visits_per_month"] == PROFILES["city"].params.visits_per_month
    first = min(ts(m["occurred_at"]) or 0.0 for m in rows(out / "membership.csv"))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    assert (
        start - timedelta(days=366)
        <= datetime.fromtimestamp(first, UTC)
        < start - (timedelta(days=300))
    )


def test_the_command_refuses_an_unknown_time_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(
            [
                "simulate",
                *("--members", "10", "--days", "10", "--tenant", "club"),
                *("--out", str(tmp_path / "sim"), "--timezone", "Mars/Olympus"),
            ]
        )
    assert "unknown time zone 'Mars/Olympus'" in capsys.readouterr().err
    assert not (tmp_path / "sim").exists()
    with pytest.raises(SystemExit):  # this machine's zone: not the same bytes everywhere
        main(["simulate", "--tenant", "club", "--out", str(tmp_path), "--timezone", "localtime"])
    assert "name the club's zone" in capsys.readouterr().err


def test_a_start_without_an_offset_is_in_the_clubs_zone(tmp_path: Path) -> None:
    """``--start 2025-01-01`` is the club's midnight (``--timezone``), else UTC's; never the
    machine's."""
    for zone, expected in (
        ("Asia/Tokyo", "2025-01-01T00:00:00+09:00"),
        (None, "2025-01-01T00:00:00+00:00"),
    ):
        out = tmp_path / (zone or "utc").replace("/", "-")
        main(
            [
                "simulate",
                *("--members", "5", "--days", "3", "--tenant", "club", "--out", str(out)),
                *("--start", "2025-01-01"),
                *(("--timezone", zone) if zone else ()),
            ]
        )
        assert json.loads((out / "simulation.json").read_text())["start"] == expected


def test_simulate_profile_takes_the_profile_and_overrides(tmp_path: Path) -> None:
    summary = simulate_profile(
        str(tmp_path), "studio", members=100, days=30, seed=1, membership_years_before=1.0
    )
    meta = json.loads((tmp_path / "simulation.json").read_text())
    assert meta["profile"] == "studio" and summary.members == 100
    assert meta["params"] == {
        **json.loads(json.dumps(asdict(PROFILES["studio"].params))),
        "membership_years_before": 1.0,
    }


def test_profiles_differ_in_how_long_leavers_take_to_cancel(clubs: dict[str, Path]) -> None:
    def mean_gap(club: Path) -> float:
        """Days from the last visit to the cancellation, over cancellations in the window."""
        gaps = [
            ((ts(t["cancelled_at"]) or 0.0) - (ts(t["last_visit_at"]) or 0.0)) / DAY
            for t in rows(club / "truth.csv")
            if t["cancelled_at"]
            and t["last_visit_at"]
            and (ts(t["cancelled_at"]) or 0.0) >= START.timestamp()
        ]
        return statistics.mean(gaps)

    order = ["studio", "city", "default", "legacy", "irregular"]
    gaps = [mean_gap(clubs[name]) for name in order]
    assert gaps == sorted(gaps), dict(zip(order, gaps, strict=True))
    assert gaps[-1] > 3 * gaps[0]
