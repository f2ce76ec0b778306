from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from detector.core import BgNbdPolicy
from offline.calibration import bgnbd
from offline.calibration.bgnbd import (
    fit_bgnbd,
    log_likelihood,
    probability_alive,
    sample,
    summarise,
    summary_from_visits,
)
from schemas.units import DAY

CDNOW = (0.243, 4.414, 0.793, 2.426)
LIFETIMES = "lifetimes==0.11.3"
CDNOW_CSV = "lifetimes/datasets/cdnow_customers_summary.csv"


@pytest.fixture(scope="session")
def cdnow(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """The CDNOW summary (frequency, recency, T in weeks) from the lifetimes wheel.

    Downloaded at test time only: Lapse does not depend on lifetimes.
    """
    where = tmp_path_factory.mktemp("lifetimes")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "--disable-pip-version-check", "--timeout", "30", "--retries", "1",
         LIFETIMES, "-d", str(where)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    wheels = sorted(Path(where).glob("*.whl"))
    if done.returncode != 0 or not wheels:
        pytest.skip(
            f"could not download {LIFETIMES} from the package registry: {done.stderr[-500:]}"
        )
    with zipfile.ZipFile(wheels[0]) as wheel:
        text = wheel.read(CDNOW_CSV).decode()
    data = np.genfromtxt(io.StringIO(text), delimiter=",", names=True)
    assert data.size == 2357
    return data


def test_reproduces_the_published_cdnow_estimates(cdnow: np.ndarray) -> None:
    fit = fit_bgnbd(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert fit.converged, fit.message
    assert fit.n == 2357
    # Fader, Hardie and Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL -9582.4.
    assert [round(v, 3) for v in fit.params] == list(CDNOW)
    assert round(fit.log_likelihood, 1) == -9582.4


def test_analytic_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(7)
    rows = sample(CDNOW, rng.uniform(1, 52, 3000), rng, resolution=1 / 7)
    for params in [CDNOW, (1.3, 20.0, 0.2, 6.0), (0.05, 0.7, 3.0, 0.4)]:
        _, grad = log_likelihood(params, *rows)
        numeric = []
        for i, value in enumerate(params):
            h = 1e-6 * value
            up = list(params)
            down = list(params)
            up[i] += h
            down[i] -= h
            ll_up, _ = log_likelihood((up[0], up[1], up[2], up[3]), *rows)
            ll_down, _ = log_likelihood((down[0], down[1], down[2], down[3]), *rows)
            numeric.append((ll_up - ll_down) / (2 * h))
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-4)


def test_collapsed_rows_with_weights_give_the_same_likelihood_and_fit() -> None:
    rng = np.random.default_rng(3)
    rows = sample(CDNOW, rng.integers(7, 365, 20_000) / 7, rng, resolution=1 / 7)
    collapsed = summarise(*rows)
    assert collapsed.counts.sum() == 20_000
    assert collapsed.counts.size < 20_000 / 2  # the point of collapsing
    # Every original row is one of the unique rows, as many times as its count says.
    original = sorted(zip(*rows, strict=True))
    expanded = sorted(
        row for *row, count in zip(*collapsed, strict=True) for _ in range(int(count))
    )
    assert [tuple(r) for r in expanded] == original

    for params in [CDNOW, (1.0, 10.0, 1.0, 1.0)]:
        raw, raw_grad = log_likelihood(params, *rows)
        weighted, weighted_grad = log_likelihood(params, *collapsed[:3], collapsed.counts)
        assert weighted == pytest.approx(raw, rel=1e-12)
        np.testing.assert_allclose(weighted_grad, raw_grad, rtol=1e-9)

    unweighted = fit_bgnbd(*rows, np.ones(20_000))
    collapsed_fit = fit_bgnbd(*collapsed[:3], collapsed.counts)
    assert unweighted.converged and collapsed_fit.converged
    np.testing.assert_allclose(collapsed_fit.params, unweighted.params, rtol=1e-5)
    assert collapsed_fit.log_likelihood == pytest.approx(unweighted.log_likelihood, rel=1e-10)


@pytest.mark.parametrize("grid", [True, False])
@pytest.mark.parametrize("packed", [True, False])
def test_summarise_counts_rows_on_and_off_a_grid(
    grid: bool, packed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not packed:  # as if the packed key would overflow: the row-sorting path
        monkeypatch.setattr(bgnbd, "_MAX_PACKED_KEY", 1)
    rng = np.random.default_rng(4)
    x = rng.integers(0, 4, 5000).astype(float)
    if grid:  # days in weeks
        T = rng.integers(1, 60, 5000) / 7
        t_x = np.where(x > 0, np.floor(T * rng.uniform(0, 1, 5000) * 7) / 7, 0.0)
    else:  # no common step
        T = rng.choice(rng.uniform(1, 9, 40), 5000)
        t_x = np.where(x > 0, T * rng.choice([0.25, 0.5, 1 / 3, 0.9], 5000), 0.0)
    got = summarise(x, t_x, T)
    expected: dict[tuple[float, float, float], int] = {}
    for row in zip(x.tolist(), t_x.tolist(), T.tolist(), strict=True):
        expected[row] = expected.get(row, 0) + 1
    rows = zip(got.frequency.tolist(), got.recency.tolist(), got.T.tolist(), strict=True)
    assert dict(zip(rows, got.counts.tolist(), strict=True)) == expected
    assert got.counts.size == len(expected)


def test_recovers_known_parameters_from_simulated_members() -> None:
    rng = np.random.default_rng(11)
    rows = sample(CDNOW, rng.integers(7, 365, 200_000) / 7, rng, resolution=1 / 7)
    fit = fit_bgnbd(*rows)
    assert fit.converged, fit.message
    assert fit.n == 200_000
    np.testing.assert_allclose(fit.params, CDNOW, rtol=0.1)


def test_members_who_never_came_back_do_not_converge() -> None:
    fit = fit_bgnbd(np.zeros(500), np.zeros(500), np.full(500, 30.0))
    assert not fit.converged
    assert "no member has a repeat visit" in fit.message


def test_a_regular_crowd_on_a_short_window_does_not_converge() -> None:
    # A month of members on a steady routine: visit counts vary less than a Poisson mixture
    # can express and everyone was seen in the last two days. The fit wants no heterogeneity
    # (r and alpha grow together without end) and no dropout (a shrinks): it either runs to
    # the bounds or stops on a flat ridge; both must say so.
    for seed in range(4):
        rng = np.random.default_rng(seed)
        x = rng.integers(14, 17, 500).astype(float)
        t_x = 30.0 - rng.uniform(0, 2, 500)
        fit = fit_bgnbd(x, t_x, np.full(500, 30.0))
        assert not fit.converged, (seed, fit)
        assert "bound" in fit.message or "flat" in fit.message
        assert all(1e-4 <= v <= 1e4 for v in fit.params)


def test_a_small_sample_whose_parameters_are_not_pinned_down_does_not_converge() -> None:
    rng = np.random.default_rng(1)
    rows = sample(CDNOW, rng.uniform(1, 52, 30), rng, resolution=1 / 7)
    fit = fit_bgnbd(*rows)
    assert not fit.converged
    assert "not pinned down" in fit.message or "bound" in fit.message


def test_a_tiny_sample_does_not_converge() -> None:
    fit = fit_bgnbd([3, 5, 2], [20, 29, 28], [30, 30, 30])
    assert not fit.converged
    assert fit.message.endswith("fall back to the defaults")


def test_tight_bounds_that_exclude_the_optimum_are_reported(cdnow: np.ndarray) -> None:
    fit = fit_bgnbd(
        cdnow["frequency"], cdnow["recency"], cdnow["T"],
        bounds=((0.3, 10.0), (1e-3, 1e3), (1e-3, 1e3), (1e-3, 1e3)),
    )  # fmt: skip
    assert not fit.converged
    assert "r reached its lower bound 0.3" in fit.message


def test_no_members_is_not_a_fit() -> None:
    fit = fit_bgnbd([], [], [])
    assert not fit.converged
    assert fit.n == 0


def test_rejects_impossible_rows() -> None:
    with pytest.raises(ValueError, match="recency"):
        fit_bgnbd([1], [40.0], [30.0])
    with pytest.raises(ValueError, match="frequency"):
        fit_bgnbd([1.5], [4.0], [30.0])
    with pytest.raises(ValueError, match="weights"):
        fit_bgnbd([1], [4.0], [30.0], weights=[-1.0])


def test_summary_from_visits_gives_days_as_the_policy_reads_them() -> None:
    start = 1_700_000_000.0
    first = np.array([start, start, start + 3 * DAY])
    last = np.array([start + 10.4 * DAY, start, start + 9.6 * DAY])
    visits = np.array([4, 1, 2])
    now = start + 40.2 * DAY
    rows = summary_from_visits(first, last, visits, now)
    np.testing.assert_array_equal(rows.frequency, [3, 0, 1])
    np.testing.assert_array_equal(rows.recency, [10, 0, 7])
    np.testing.assert_array_equal(rows.T, [40, 40, 37])
    exact = summary_from_visits(first, last, visits, now, resolution_days=0)
    np.testing.assert_allclose(exact.recency, [10.4, 0, 6.6])
    np.testing.assert_allclose(exact.T, [40.2, 40.2, 37.2])
    with pytest.raises(ValueError, match="first_visit <= last_visit <= now"):
        summary_from_visits([start], [start + DAY], [2], start)
    with pytest.raises(ValueError, match="at least 1"):
        summary_from_visits([start], [start], [0], start)


def test_probability_alive_agrees_with_the_policy_for_fitted_parameters() -> None:
    # A gym-like population in days: about a visit a week, a few drop out after each visit.
    rng = np.random.default_rng(2)
    truth = (2.0, 14.0, 0.6, 12.0)
    fit = fit_bgnbd(*sample(truth, rng.integers(30, 365, 50_000).astype(float), rng, resolution=1))
    assert fit.converged, fit.message
    policy = BgNbdPolicy(r=fit.r, alpha=fit.alpha, a=fit.a, b=fit.b)

    start = 1_700_000_000.0
    now = start + 200 * DAY
    histories = [(1, 0.0), (2, 3.0), (5, 30.0), (20, 150.0), (26, 190.5), (40, 100.0)]
    lasts = [start + days * DAY for _, days in histories]
    visits = [v for v, _ in histories]
    rows = summary_from_visits([start] * len(histories), lasts, visits, now, resolution_days=0)
    ours = fit.probability_alive(*rows)
    theirs = [
        policy.probability_of(v, start, last, now) for v, last in zip(visits, lasts, strict=True)
    ]
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-300)
    assert ours[0] == 1.0  # no repeat visit yet
    assert 0.0 < ours[-1] < 0.01 < ours[-2]  # a regular gone for 100 days is very likely lost
    # The standalone function is the same thing.
    np.testing.assert_array_equal(probability_alive(fit.params, *rows), ours)
