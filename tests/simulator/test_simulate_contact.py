"""The simulator's effect of reaching out (issue 22): off by default, the stand-in staff's
holdout drawn as the detector's episodes are, members brought back only in the contact arm
and only when they had stopped, the history before a contact unchanged, factors by reason,
and a contacts file from outside (``lapse simulate --contacts``)."""

from __future__ import annotations

import csv
import filecmp
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lapse.cli import main
from schemas.holdout import arm_for
from schemas.ids import episode_id
from simulator import SimParams, read_contacts, simulate_files

START = datetime(2025, 1, 1, tzinfo=UTC)
FILES = ("access.csv", "membership.csv", "truth.csv")
UNIFORM = SimParams(contact_effect_by_reason=(), contact_effect_by_severity=())


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def ts(text: str) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


def run(out: Path, params: SimParams, **kw: object) -> Path:
    simulate_files(str(out), members=600, days=365, seed=5, start=START, params=params, **kw)  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run(tmp_path_factory.mktemp("base"), SimParams())


def test_off_by_default_and_zero_effect_changes_no_file(base: Path, tmp_path: Path) -> None:
    assert not (base / "contacts.csv").exists()
    zero = run(tmp_path / "zero", replace(SimParams(), holdout=0.2))
    for name in FILES:
        assert filecmp.cmp(base / name, zero / name, shallow=False), name
    assert rows(zero / "contacts.csv")  # whom the stand-in staff would have reached


def test_stand_in_brings_back_contact_arm_only(base: Path, tmp_path: Path) -> None:
    out = run(tmp_path / "sure", replace(UNIFORM, contact_effect=1.0, holdout=0.3))
    truth0 = {r["member_id"]: r for r in rows(base / "truth.csv")}
    contacts = rows(out / "contacts.csv")
    arms = {r["arm"] for r in contacts}
    assert arms == {"contact", "control"}
    for r in contacts:
        before = truth0[r["member_id"]]
        last = ts(before["last_visit_at"])
        assert last is not None and last < ts(r["due_at"])  # type: ignore[operator]
        # The arm is the holdout draw on the absence episode the detector opens at the
        # member's last visit.
        assert r["arm"] == arm_for(episode_id("club", r["member_id"], last), 0.3)
        if r["arm"] == "control":
            assert r["back_at"] == ""
        else:
            assert float(r["chance"]) == 1.0
            assert r["back_at"] and ts(r["back_at"]) > ts(r["due_at"])  # type: ignore[operator]
    # The access rows before each member's contact are the same as without it.
    due = {r["member_id"]: ts(r["due_at"]) for r in contacts}

    def upto(path: Path) -> set[tuple[str, ...]]:
        return {
            (r["member_id"], r["occurred_at"], r["kind"])
            for r in rows(path / "access.csv")
            if r["member_id"] in due and ts(r["occurred_at"]) < due[r["member_id"]]  # type: ignore[operator]
        }

    assert upto(out) == upto(base)
    # Brought back: visits after the contact, no cancellation of the first story.
    truth = {r["member_id"]: r for r in rows(out / "truth.csv")}
    visits: dict[str, int] = {}
    for r in rows(out / "access.csv"):
        m = r["member_id"]
        if r["kind"] == "gate_entry" and m in due and ts(r["occurred_at"]) > due[m]:  # type: ignore[operator]
            visits[m] = visits.get(m, 0) + 1
    back = [r for r in contacts if r["back_at"]]
    assert len(back) > 20
    for r in back:
        assert visits.get(r["member_id"], 0) >= 1
        now, then = truth[r["member_id"]], truth0[r["member_id"]]
        assert now["last_visit_at"] != then["last_visit_at"]  # later, or still coming
        assert not then["cancelled_at"] or now["cancelled_at"] != then["cancelled_at"]


def test_factors_by_reason(tmp_path: Path) -> None:
    out = run(tmp_path / "moved", replace(SimParams(), contact_effect=1.0))
    chances = {float(r["chance"]) for r in rows(out / "contacts.csv")}
    # moved 0, health and competitor 0.5, others 1 (medium severity): all three appear.
    assert chances == {0.0, 0.5, 1.0}


def test_contacts_file_from_outside(base: Path, tmp_path: Path) -> None:
    truth0 = rows(base / "truth.csv")
    stopped = [r for r in truth0 if r["last_visit_at"] and r["cancelled_at"]][:30]
    path = tmp_path / "contacts.csv"
    with open(path, "w", encoding="utf-8") as f:
        f.write("member_id,contacted_at,severity\n")
        for r in stopped:
            last = datetime.fromisoformat(r["last_visit_at"])
            # A call before they stopped changes nothing; the one after counts.
            early = datetime.fromtimestamp(last.timestamp() - 86_400, UTC)
            f.write(f"{r['member_id']},{early.isoformat()},medium\n")
            at = datetime.fromtimestamp(last.timestamp() + 5 * 86_400, UTC)
            f.write(f"{r['member_id']},{at.isoformat()},high\n")
    given = read_contacts(str(path))
    assert all(len(v) == 2 for v in given.values())
    out = tmp_path / "given"
    main(
        [
            "simulate",
            "--members",
            "600",
            "--days",
            "365",
            "--seed",
            "5",
            "--tenant",
            "club",
            "--out",
            str(out),
            "--contact-effect",
            "1",
            "--contacts",
            str(path),
        ]
    )
    contacts = {r["member_id"]: r for r in rows(out / "contacts.csv")}
    reached = [r for r in stopped if ts(r["last_visit_at"]) + 5 * 86_400 < ts(r["cancelled_at"])]  # type: ignore[operator]
    assert reached
    for r in reached:
        c = contacts[r["member_id"]]
        assert c["arm"] == "contact" and c["severity"] == "high"
        # High severity halves the chance; moved members never come back.
        expected = 0.0 if r["cancel_reason"] == "moved" else 0.5
        if r["cancel_reason"] in ("health", "competitor"):
            expected = 0.25
        assert float(c["chance"]) == expected


def test_bad_contacts_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("member_id,contacted_at\nm1,2025-02-01T00:00:00+00:00\nm2,yesterday\n")
    with pytest.raises(ValueError, match=r"bad.csv:3"):
        read_contacts(str(path))
