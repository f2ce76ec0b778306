"""Accessibility in the browser tests: axe-core (from the npm registry, pinned in
``package.json`` and installed by ``scripts/setup.sh --test`` with ``npm ci``) evaluated in
the page, offline, plus the house rules axe does not check (``a11y_check.js``).

A page fails on any serious or critical axe violation, and on the moderate rules the house
held before axe came (heading order, a main landmark, one h1); each violation is printed with
the elements it was found on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
HOUSE_CHECK = (Path(__file__).parent / "a11y_check.js").read_text()

if not AXE.exists() and not os.environ.get("CI"):
    pytest.skip(
        f"{AXE} is missing: `bash scripts/setup.sh --test` runs `npm ci`",
        allow_module_level=True,
    )

FAILING_IMPACTS = frozenset({"serious", "critical"})
# Moderate in axe's words, but the page promised them before axe checked it.
ALSO_FAILING = frozenset({"heading-order", "landmark-one-main", "page-has-heading-one"})

# Evaluated through the DevTools protocol, so the page's Content-Security-Policy (scripts
# from its own origin only) neither blocks it nor has to be loosened for the test. Frames are
# not entered: the one frame, a stored calibration report, is sandboxed without scripts.
_RUN = """async () => {
  const result = await axe.run(document, {
    iframes: false,
    resultTypes: ["violations"],
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa",
                                    "best-practice"]},
  });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => n.target.join(" ") + " : " + n.failureSummary.replace(/\\s+/g, " ")),
  }));
}"""


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Every axe violation on the page as it is now (all impacts)."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE.read_text())
    found: list[dict[str, Any]] = await page.evaluate(_RUN)
    return found


def failing(violations: list[dict[str, Any]]) -> list[str]:
    """The violations a page may not have, one readable line each."""
    return [
        f"axe {v['id']} ({v['impact']}): {v['help']} | " + " | ".join(v["nodes"][:5])
        for v in violations
        if v["impact"] in FAILING_IMPACTS or v["id"] in ALSO_FAILING
    ]


async def problems(page: Page) -> list[str]:
    """axe's failing violations, then the house rules' problems."""
    house: list[str] = await page.evaluate(HOUSE_CHECK)
    return failing(await axe_violations(page)) + house


async def accessible(page: Page, what: str) -> None:
    """Fail (printing every problem) unless the page passes axe and the house rules."""
    found = await problems(page)
    for line in found:
        print(f"{what}: {line}")
    assert found == [], (what, found)
