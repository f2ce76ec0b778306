"""``lapse uplift --as-of``: a moment with its offset, refused with a message otherwise (before
any database is opened)."""

from __future__ import annotations

import pytest

from lapse.cli import main


@pytest.mark.parametrize(
    ("as_of", "said"),
    [
        ("last Monday", "is not an ISO 8601 date or time"),
        ("2026-01-01T00:00:00", "--as-of needs a UTC offset"),
    ],
)
def test_as_of_is_refused_without_a_moment(
    as_of: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["uplift", "--tenant", "club", "--as-of", as_of])
    assert exit_.value.code != 0
    out = capsys.readouterr().err + str(exit_.value.code)
    assert said in out
