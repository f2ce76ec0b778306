"""BG/NBD fit on a million members, against Nelder-Mead without a gradient as the baseline.

    .venv/bin/python bench/bgnbd_bench.py [--members 1000000] [--subsample 100000] [--seed 1]

Data: members drawn from the BG/NBD process itself (``offline.calibration.bgnbd.sample``)
with the published CDNOW parameters r = 0.243, alpha = 4.414, a = 0.793, b = 2.426. The
time unit is the week (CDNOW's, so alpha is in weeks) and times are recorded at a one-day
resolution (multiples of 1/7 week), as visits are. The window is 52 weeks: each member's
first visit falls on a day drawn uniformly over the window, so T runs from 1 day to 52 weeks
(a club where members join all year, the harder case for collapsing rows).

Measured, side by side in one process: wall clock (``time.perf_counter``) and this
process's CPU time (``time.process_time``); ratios use CPU time, which a busy shared machine
disturbs less (the wall figures are printed too; NumPy here is single-threaded except BLAS,
which the likelihoods avoid). Also printed: how far Nelder-Mead's optimum is from ours.

1. Ours: ``summarise`` (collapse identical (x, t_x, T) rows into counts), then
   ``fit_bgnbd`` on the unique rows with their counts: L-BFGS-B on log-parameters with the
   analytic gradient, plus the identification check (8 more gradient evaluations). Also
   ``fit_bgnbd`` on the raw arrays (it collapses internally), the call a caller makes.
2. Baseline A: Nelder-Mead (SciPy defaults) on log-parameters on the same collapsed rows,
   with a plain per-row log-likelihood and no gradient, from the same starting point.
3. Baseline B: the same Nelder-Mead on ``--subsample`` raw rows (no collapsing, no
   weights), the approach of the reference implementations; its time for all members is
   extrapolated linearly (the cost of an evaluation is linear in rows).
4. Ablation: L-BFGS-B with the analytic gradient on all raw rows, one weight each (no
   collapsing), to separate what collapsing buys from what the gradient buys.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import gammaln

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from offline.calibration.bgnbd import fit_bgnbd, sample, summarise  # noqa: E402

TRUE = (0.243, 4.414, 0.793, 2.426)
NAMES = ("r", "alpha", "a", "b")
WINDOW_DAYS = 364
Array = npt.NDArray[np.float64]


def plain_log_likelihood(params: Array, x: Array, t_x: Array, T: Array, w: Array) -> float:
    """The textbook per-row BG/NBD log-likelihood, no gradient: what baselines minimise."""
    r, alpha, a, b = params
    ln_a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    ln_a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    ln_a3 = -(r + x) * np.log(alpha + T)
    pos = x > 0
    ln_a4 = np.where(
        pos,
        np.log(a) - np.log(np.where(pos, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    # einsum, not BLAS: as in ours, so neither side pays OpenBLAS thread wake-ups.
    return float(np.einsum("i,i->", w, ln_a1 + ln_a2 + np.logaddexp(ln_a3, ln_a4)))


class Timer:
    """Wall and CPU seconds of a block."""

    wall = 0.0
    cpu = 0.0

    def __enter__(self) -> Timer:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu

    def __str__(self) -> str:
        return f"{self.cpu:.3f} s CPU ({self.wall:.3f} s wall)"


def nelder_mead(
    x: Array, t_x: Array, T: Array, w: Array, start: Array
) -> tuple[Timer, Array, float, int, int, str]:
    n = float(w.sum())
    evaluations = 0

    def objective(z: Array) -> float:
        nonlocal evaluations
        evaluations += 1
        ll = plain_log_likelihood(np.exp(z), x, t_x, T, w)
        return -ll / n if np.isfinite(ll) else float(np.inf)

    with Timer() as timer:
        result = minimize(objective, np.log(start), method="Nelder-Mead")
    ll = float(-result.fun * n)
    return timer, np.exp(result.x), ll, int(result.nit), evaluations, str(result.message)


def show(label: str, params: Sequence[float] | Array, ll: float) -> str:
    figures = "  ".join(f"{k}={v:.4f}" for k, v in zip(NAMES, params, strict=True))
    return f"{label:<34} {figures}  LL={ll:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--subsample", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="figures as JSON on the last line")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    first_day = rng.integers(0, WINDOW_DAYS, args.members)
    with Timer() as simulated:
        x, t_x, T = sample(TRUE, (WINDOW_DAYS - first_day) / 7.0, rng, resolution=1 / 7)
    print(f"members: {args.members:,} drawn from BG/NBD{TRUE} in {simulated}")
    print("unit: weeks at a 1-day resolution, 52-week window, first visits uniform over it")
    none = float(np.mean(x == 0))
    print(f"repeat visits: mean {x.mean():.2f}, max {x.max():.0f}; with none: {none:.1%}")

    with Timer() as t_summarise:
        rows = summarise(x, t_x, T)
    print(f"\nsummarise: {t_summarise} -> {rows.counts.size:,} unique (x, t_x, T) rows")
    with Timer() as t_fit:
        fit = fit_bgnbd(rows.frequency, rows.recency, rows.T, rows.counts)
    print(f"fit (L-BFGS-B, analytic gradient, weighted rows): {t_fit}")
    print(f"  {fit.iterations} iterations, converged={fit.converged} ({fit.message})")
    ours_cpu = t_summarise.cpu + t_fit.cpu
    ours_wall = t_summarise.wall + t_fit.wall
    print(f"ours, summarise + fit: {ours_cpu:.3f} s CPU ({ours_wall:.3f} s wall; goal < 10 s)")
    with Timer() as t_direct:
        direct = fit_bgnbd(x, t_x, T)
    print(f"fit_bgnbd(raw arrays), which collapses itself: {t_direct}")
    assert direct.params == fit.params

    print()
    print(show("true", TRUE, float("nan")))
    print(show("ours", fit.params, fit.log_likelihood))
    errors = "  ".join(
        f"{k}={(v - t) / t:+.1%}" for k, v, t in zip(NAMES, fit.params, TRUE, strict=True)
    )
    print(f"{'ours, relative error':<34} {errors}")

    # The same starting point as ours (fit_bgnbd's default start).
    repeats = float(np.einsum("i,i->", rows.counts, rows.frequency))
    start = np.array([1.0, float(np.einsum("i,i->", rows.counts, rows.T)) / repeats, 1.0, 1.0])

    print("\nbaseline A: Nelder-Mead, no gradient, same collapsed rows and weights")
    nm = nelder_mead(rows.frequency, rows.recency, rows.T, rows.counts, start)
    print(f"  {nm[0]}, {nm[3]} iterations, {nm[4]} evaluations ({nm[5]})")
    print("  " + show("Nelder-Mead (collapsed)", nm[1], nm[2]))
    print(f"  LL short of ours by {fit.log_likelihood - nm[2]:.1f}")
    print(f"  ratio Nelder-Mead / ours (fit only, CPU): {nm[0].cpu / t_fit.cpu:.1f}x")

    k = min(args.subsample, args.members)
    pick = rng.choice(args.members, k, replace=False)
    print(f"\nbaseline B: Nelder-Mead, no gradient, {k:,} raw rows (unweighted, no collapsing)")
    nm_raw = nelder_mead(x[pick], t_x[pick], T[pick], np.ones(k), start)
    extrapolated = nm_raw[0].cpu * args.members / k
    print(f"  {nm_raw[0]}, {nm_raw[3]} iterations, {nm_raw[4]} evaluations ({nm_raw[5]})")
    print("  " + show(f"Nelder-Mead ({k:,} raw rows)", nm_raw[1], nm_raw[2]))
    sub = fit_bgnbd(x[pick], t_x[pick], T[pick])
    print(f"  LL short of ours on the same {k:,} rows by {sub.log_likelihood - nm_raw[2]:.1f}")
    print(
        f"  extrapolated to {args.members:,} rows: {extrapolated:.1f} s CPU; "
        f"ratio to ours (summarise + fit, CPU): {extrapolated / ours_cpu:.0f}x"
    )

    print("\nablation: L-BFGS-B with the analytic gradient on all raw rows (no collapsing)")
    with Timer() as t_raw:
        raw = fit_bgnbd(x, t_x, T, np.ones(args.members))
    print(f"  {t_raw}, {raw.iterations} iterations, converged={raw.converged}")
    print("  " + show("L-BFGS-B (raw rows)", raw.params, raw.log_likelihood))
    print(f"  ratio raw / collapsed (summarise + fit, CPU): {t_raw.cpu / ours_cpu:.2f}x")
    if args.json:  # the figures as one JSON object on the last line (bench/run_all.py)
        print(
            json.dumps(
                {
                    "bench": "bgnbd",
                    "members": args.members,
                    "cpu_s": ours_cpu,
                    "wall_s": ours_wall,
                    "baseline_nelder_mead_collapsed_cpu_s": nm[0].cpu,
                    "baseline_nelder_mead_raw_extrapolated_cpu_s": extrapolated,
                    "converged": fit.converged,
                }
            )
        )


if __name__ == "__main__":
    main()
