"""The reports page's uplift section (api/page/uplift.py): the verdict in plain words, the
table by group, values escaped, and what to do when there is no control group yet."""

from __future__ import annotations

from datetime import UTC, datetime

from api.page.uplift import section
from api.read.uplift import UpliftRead
from api.uplift_stats import DAY, Episode, report
from schemas.holdout import HoldoutPeriod

START = datetime(2026, 1, 1, tzinfo=UTC)


def _episodes() -> list[Episode]:
    out = []
    # 320 contacted, 60 % back; 80 held back, 30 % back.
    for i in range(400):
        arm = "contact" if i < 320 else "control"
        back = i < 192 if arm == "contact" else i - 320 < 24
        out.append(
            Episode(
                episode_id=f"e{i}",
                arm=arm,  # type: ignore[arg-type]
                opened_at=START.timestamp(),
                returned_at=START.timestamp() + 3 * DAY if back else None,
                cancelled_at=None,
                severity="medium",
                site="<script>alert(1)</script>",
                action="call" if arm == "contact" else None,
                policy="risk",
                period=START.isoformat(),
                share=0.2,
            )
        )
    return out


def test_section_says_the_verdict_and_escapes() -> None:
    r = report(_episodes(), START.timestamp() + 90 * DAY)
    html = section(UpliftRead(r, [HoldoutPeriod(START, None, 0.2)], 0))
    assert r.overall.verdict.startswith("proven: reaching out brings back about 30 more")
    assert r.overall.verdict in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "400 settled episodes" in html
    assert html.count("<tr>") == 1 + 6  # header, all, severity, site, action, policy, period


def test_section_without_a_control_group_says_how_to_start_one() -> None:
    r = report([], START.timestamp())
    html = section(UpliftRead(r, [], 0))
    assert "No control group yet" in html and "lapse holdout set" in html
