"""Argument checks: "a positive int", "a finite number", "one of these", written once.

Why: every public function checks its arguments on entry and raises a ``ValueError`` that names
the argument, says what was expected and shows what it got (foolbox's habit, and the tests'
``pytest.raises(ValueError, match=...)``). Written by hand, "an int but not a bool" and "a
positive finite number" came out slightly differently in each module; here each rule has one
definition and one wording. ``bool`` is never accepted as a number (``True`` is an ``int`` to
Python, but ``batch_size=True`` is a bug); an int is a Python ``int``, a real number may also be a
NumPy scalar.

Each check returns the value (a number as a Python ``int`` or ``float``), so a call can check and
convert in one line: ``c = checks.penalty_c(c)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def is_int(value: object) -> bool:
    """Whether ``value`` is a Python ``int`` and not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """Whether ``value`` is a real number: int, float or a NumPy scalar of either, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _or_none(text: str, allow_none: bool) -> str:
    return f"{text} or None" if allow_none else text


def positive_int(name: str, value: object, *, allow_none: bool = False) -> int | None:
    """``value`` if it is an int >= 1 (or None, where allowed).

    Args:
        name: the argument's name, for the message (e.g. ``"settings.memory"``).
        value: what the caller passed.
        allow_none: accept None (returned as is).

    Raises:
        ValueError: "``name`` must be a positive int[ or None], got ``value``".
    """
    if value is None and allow_none:
        return None
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be {_or_none('a positive int', allow_none)}, "
                         f"got {value!r}")
    return value


def non_negative_int(name: str, value: object) -> int:
    """``value`` if it is an int >= 0.

    Raises:
        ValueError: "``name`` must be a non-negative int, got ``value``".
    """
    if not is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value


def int_in(name: str, value: object, low: int, high: int) -> int:
    """``value`` if it is an int in ``low..high`` (both included).

    Raises:
        ValueError: "``name`` must be an int in ``low``..``high``, got ``value``".
    """
    if not is_int(value) or not low <= value <= high:
        raise ValueError(f"{name} must be an int in {low}..{high}, got {value!r}")
    return value


def finite_float(name: str, value: object, *, allow_none: bool = False) -> float | None:
    """``value`` as a float if it is a finite real number (or None, where allowed).

    Raises:
        ValueError: "``name`` must be a finite number[ or None], got ``value``".
    """
    if value is None and allow_none:
        return None
    if not is_real(value) or not math.isfinite(value):
        raise ValueError(f"{name} must be {_or_none('a finite number', allow_none)}, "
                         f"got {value!r}")
    return float(value)


def non_negative_float(name: str, value: object) -> float:
    """``value`` as a float if it is a finite real number >= 0.

    Raises:
        ValueError: "``name`` must be a finite number >= 0, got ``value``".
    """
    if not is_real(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def positive_float(name: str, value: object, *, allow_none: bool = False) -> float | None:
    """``value`` as a float if it is a finite real number > 0 (or None, where allowed).

    Raises:
        ValueError: "``name`` must be a positive finite number[ or None], got ``value``".
    """
    if value is None and allow_none:
        return None
    if not is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be {_or_none('a positive finite number', allow_none)}, "
                         f"got {value!r}")
    return float(value)


def penalty_c(value: object, *, allow_none: bool = False) -> float | None:
    """The attack's constant ``c`` (the weight of the distortion term, section 4.1 of
    Szegedy et al. 2014): a positive finite number, returned as a float; None (the search over
    ``c``) where allowed.

    Raises:
        ValueError: "c must be a positive finite number[ or None], got ``value``".
    """
    return positive_float("c", value, allow_none=allow_none)


def one_of(name: str, value: T, choices: Iterable[object]) -> T:
    """``value`` if it equals one of ``choices``.

    Args:
        name: the argument's name (or where the value came from, e.g. ``"$INTRIGUING_SCALE"``).
        value: what the caller passed; any object. It must equal a choice and have its type
            (``True`` is not the choice ``1``); an unhashable object is simply not a choice.
        choices: the allowed values, listed in the message in this order.

    Raises:
        ValueError: "``name`` must be one of [choices], got ``value``".
    """
    allowed = list(choices)
    if not any(value is c or (isinstance(value, type(c)) and isinstance(value, bool)
                              == isinstance(c, bool) and value == c) for c in allowed):
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value
