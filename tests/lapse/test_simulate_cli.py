"""``lapse simulate``'s options that set a ``SimParams`` field: each names a real field, and
a given value replaces the profile's."""

from __future__ import annotations

from dataclasses import fields

from lapse.cli import parser
from lapse.commands.simulate import PARAM_OPTIONS, param_overrides
from simulator import SimParams


def test_every_parameter_option_is_a_simparams_field_the_parser_fills() -> None:
    names = {f.name for f in fields(SimParams)}
    assert set(PARAM_OPTIONS) <= names
    base = ["simulate", "--members", "5", "--days", "7", "--tenant", "t", "--out", "x"]
    args = parser().parse_args(
        [*base, "--gap-mean-days", "40", "--timezone", "Europe/Berlin", "--holdout", "0.1"]
    )
    assert param_overrides(args) == {
        "gap_mean_days": 40.0,
        "timezone": "Europe/Berlin",
        "holdout": 0.1,
    }
    unset = parser().parse_args(base)
    assert param_overrides(unset) == {}
