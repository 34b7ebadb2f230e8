"""The one option parser: named flags, -O pairs and keywords merged, conflicts refused, values checked."""

import pytest

from symnet.core.errors import SolverError
from symnet.solvers.options import Option, merge, parse

TABLE = {"lr": Option(1e-3, "float", low=0.0, low_open=True), "batch_size": Option(None, "int", low=1, none=True),
         "flag": Option(False, "bool")}


def test_merge_takes_every_source_and_refuses_two_values_for_one_option():
    assert merge({"lr": 0.1, "batch_size": None}, [("flag", True)], {"order": "x"}) == \
        {"order": "x", "lr": 0.1, "flag": True}
    assert merge({"lr": 0.1}, [("lr", 0.1)]) == {"lr": 0.1}  # the same value twice is no conflict
    assert merge({}, [("lr", 0.1), ("lr", 0.2)]) == {"lr": 0.2}  # a later -O wins, as on any command line
    with pytest.raises(SolverError, match=r"--lr 0.1 and -O lr=0.001 set option lr to different values") as info:
        merge({"lr": 0.1}, [("lr", 1e-3)])
    assert "\n" not in str(info.value)
    with pytest.raises(SolverError, match="--batch-size 8 and -O batch_size=16"):
        merge({"batch_size": 8}, [("batch_size", 16)])
    with pytest.raises(SolverError, match="flag=True and -O flag=1"):
        merge(None, [("flag", 1)], {"flag": True})  # True is not the number 1


def test_parse_returns_the_set_options_checked():
    assert parse("demo", TABLE, flags={"lr": 1}, pairs=[("batch_size", 4)]) == {"lr": 1.0, "batch_size": 4}
    assert parse("demo", TABLE, given={"lr": 0.5, "ridge": 2.0}, only_known=True) == {"lr": 0.5}
    with pytest.raises(SolverError, match="solver 'demo' has no option 'ridge'"):
        parse("demo", TABLE, pairs=[("ridge", 2.0)])
    with pytest.raises(SolverError, match="option lr must be a number > 0"):
        parse("demo", TABLE, flags={"lr": 0})
