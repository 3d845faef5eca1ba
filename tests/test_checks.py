"""The argument checks every module uses: what each accepts, returns and refuses, and the words."""

import math
import re

import numpy as np
import pytest

from intriguing.plumbing import checks


def test_is_int_and_is_real_refuse_bools():
    assert checks.is_int(3) and not checks.is_int(True) and not checks.is_int(3.0)
    assert not checks.is_int(np.int64(3))  # an int is a Python int
    assert checks.is_real(3) and checks.is_real(0.5) and checks.is_real(np.float32(0.5))
    assert not checks.is_real(True) and not checks.is_real(np.bool_(True))
    assert not checks.is_real("1") and not checks.is_real(None)


@pytest.mark.parametrize("check, good, bad, words, returns", [
    (checks.positive_int, [1, 7], [0, -1, 2.0, True, "3", None], "must be a positive int", int),
    (checks.non_negative_int, [0, 5], [-1, 1.5, False, "0", None], "must be a non-negative int",
     int),
    (checks.positive_float, [1e-9, 2, np.float64(3.0)],
     [0, -1.0, math.inf, math.nan, True, "1", None], "must be a positive finite number", float),
    (checks.non_negative_float, [0, 0.0, 2.5], [-1e-9, math.inf, math.nan, False, "0"],
     "must be a finite number >= 0", float),
    (checks.finite_float, [-2, 0.0, np.float32(1.5)], [math.inf, -math.inf, math.nan, True, None],
     "must be a finite number", float),
], ids=["positive_int", "non_negative_int", "positive_float", "non_negative_float",
        "finite_float"])
def test_number_checks_return_good_values_and_name_bad_ones(check, good, bad, words, returns):
    for value in good:
        out = check("x", value)
        assert out == value and type(out) is returns
    for value in bad:
        with pytest.raises(ValueError, match=rf"^x {words}, got {re.escape(repr(value))}$"):
            check("x", value)


def test_none_is_accepted_only_where_allowed():
    assert checks.positive_int("limit", None, allow_none=True) is None
    assert checks.positive_float("c", None, allow_none=True) is None
    assert checks.finite_float("ours", None, allow_none=True) is None
    with pytest.raises(ValueError, match="limit must be a positive int or None, got 0"):
        checks.positive_int("limit", 0, allow_none=True)
    with pytest.raises(ValueError, match="ours must be a finite number or None, got nan"):
        checks.finite_float("ours", math.nan, allow_none=True)


def test_int_in_is_inclusive():
    assert checks.int_in("k", 1, 1, 3) == 1 and checks.int_in("k", 3, 1, 3) == 3
    for bad in (0, 4, 2.0, True):
        with pytest.raises(ValueError, match=r"k must be an int in 1\.\.3, got"):
            checks.int_in("k", bad, 1, 3)


def test_penalty_c_is_the_attacks_constant():
    assert checks.penalty_c(10) == 10.0 and type(checks.penalty_c(10)) is float
    assert checks.penalty_c(None, allow_none=True) is None
    for bad in (0.0, -1.0, math.inf, math.nan, "1", True, None):
        with pytest.raises(ValueError, match="c must be a positive finite number"):
            checks.penalty_c(bad)
    with pytest.raises(ValueError, match="c must be a positive finite number or None"):
        checks.penalty_c(0.0, allow_none=True)


def test_one_of_lists_the_choices_in_order():
    assert checks.one_of("split", "P1", ("train", "test", "P1")) == "P1"
    assert checks.one_of("scale", "book", {"smoke": 1, "book": 2}) == "book"  # a dict's keys
    with pytest.raises(ValueError, match=r"split must be one of \['train', 'test'\], got 'val'"):
        checks.one_of("split", "val", ("train", "test"))
    for bad in (None, ["train"], 1):  # unhashable or of another type: simply not a choice
        with pytest.raises(ValueError, match="split must be one of"):
            checks.one_of("split", bad, ("train", "test"))
    with pytest.raises(ValueError, match="n must be one of"):
        checks.one_of("n", True, (1, 2))  # True is not the choice 1
