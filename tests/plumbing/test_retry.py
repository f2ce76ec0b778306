"""The retry helper: the delays it waits, which errors it retries, what its hook sees."""

from __future__ import annotations

import asyncio

import pytest

from plumbing.retry import Attempt, Backoff, retry


class Sleeps:
    """An injected sleep: records each delay, waits for nothing."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def failing(times: int, error: Exception, result: str = "done"):
    calls = 0

    async def call() -> str:
        nonlocal calls
        calls += 1
        if calls <= times:
            raise error
        return result

    return call


def test_delays_double_up_to_the_cap():
    b = Backoff(0.2, 10.0)
    assert [b.next() for _ in range(9)] == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0]
    assert b.attempts == 9


def test_the_floor_raises_a_short_first_delay_after_the_first_wait():
    # The delivery loops start from their poll interval (may be tiny), then at least 0.5 s.
    b = Backoff(0.05, 30.0, floor=0.5)
    assert [b.next() for _ in range(4)] == [0.05, 0.5, 1.0, 2.0]
    b = Backoff(0.0, 30.0, floor=0.5)
    assert [b.next() for _ in range(3)] == [0.0, 0.5, 1.0]


def test_reset_starts_over():
    b = Backoff(0.5, 30.0)
    b.next(), b.next(), b.next()
    b.reset()
    assert b.attempts == 0
    assert b.next() == 0.5


def test_jitter_shortens_each_delay_by_up_to_its_share_without_slowing_the_growth():
    draws = iter([0.0, 1.0, 0.5, 0.25])
    b = Backoff(1.0, 100.0, jitter=0.5, rand=lambda: next(draws))
    assert [b.next() for _ in range(4)] == [1.0, 1.0, 3.0, 7.0]  # 1, 2·½, 4·¾, 8·⅞


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        Backoff(-1.0, 10.0)
    with pytest.raises(ValueError):
        Backoff(1.0, 10.0, jitter=1.5)


async def test_retry_waits_the_backoff_delays_and_returns_the_result():
    sleeps = Sleeps()
    seen: list[Attempt] = []
    error = ConnectionError("down")
    got = await retry(failing(4, error), Backoff(0.5, 2.0, sleep=sleeps), on_retry=seen.append)
    assert got == "done"
    assert sleeps.delays == [0.5, 1.0, 2.0, 2.0]
    assert [(a.number, a.error, a.delay) for a in seen] == [
        (1, error, 0.5),
        (2, error, 1.0),
        (3, error, 2.0),
        (4, error, 2.0),
    ]


async def test_retry_succeeding_at_once_never_sleeps_or_reports():
    sleeps = Sleeps()
    seen: list[Attempt] = []
    assert await retry(failing(0, OSError()), Backoff(1, 2, sleep=sleeps), on_retry=seen.append)
    assert sleeps.delays == [] and seen == []


@pytest.mark.parametrize(
    "retry_on",
    [ConnectionError, (KeyError, ConnectionError), lambda e: isinstance(e, ConnectionError)],
)
async def test_only_the_errors_asked_for_are_retried(retry_on):
    sleeps = Sleeps()
    assert (
        await retry(failing(1, ConnectionError()), Backoff(1, 2, sleep=sleeps), retry_on=retry_on)
        == "done"
    )
    assert sleeps.delays == [1]
    with pytest.raises(ValueError):
        await retry(failing(1, ValueError()), Backoff(1, 2, sleep=sleeps), retry_on=retry_on)
    assert sleeps.delays == [1]  # raised at once: no wait


async def test_the_hook_runs_inside_the_except_block_so_a_traceback_can_be_logged():
    import sys

    infos: list[object] = []
    await retry(
        failing(1, OSError("x")),
        Backoff(0, 0, sleep=Sleeps()),
        on_retry=lambda a: infos.append(sys.exc_info()[1]),
    )
    assert isinstance(infos[0], OSError)


async def test_cancellation_is_never_retried():
    async def call() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await retry(call, Backoff(1, 2, sleep=Sleeps()))


async def test_the_default_sleep_really_waits():
    slept: list[float] = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    await retry(failing(1, OSError()), Backoff(0.01, 1.0), on_retry=lambda a: slept.append(a.delay))
    assert slept == [0.01] and loop.time() - start >= 0.009
