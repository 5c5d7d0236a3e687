"""Constraints on parameters, declared once and checked in one place.

The manner of scikit-learn's ``_parameter_constraints``: an estimator declares what each
parameter may be, and ``fit`` checks them all with :func:`validate_params`; the command line
(:func:`argparse_type`) and the classroom server's settings (:func:`parse_param`) check text
against the same declarations, so every mode refuses a value with the same one line.

Examples
--------
>>> constraints = {"epochs": Interval(Integral, 1, None), "dropout": Interval(Real, 0, 1, closed="left")}
>>> validate_params(constraints, {"epochs": 3, "dropout": 0.2})
{'epochs': 3, 'dropout': 0.2}
>>> validate_params(constraints, {"epochs": 0, "dropout": 0.2})
Traceback (most recent call last):
...
kit.errors.UserError: epochs must be an integer >= 1, found 0
"""
import argparse
import math
import re
from numbers import Integral, Real

import numpy as np

from kit.errors import UserError

__all__ = ["Integral", "Real", "Interval", "Options", "Each", "OrNone", "Boolean",
           "check_param", "validate_params", "parse_param", "argparse_type"]

# Numbers as people type them in ASCII: Python's int() and float() would also take "1_000" and
# digits of other scripts ("٣"), which no other reader of the same option (a shell script, a
# spreadsheet) would see as that number.
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_REAL_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|nan)", re.IGNORECASE)

_CLOSED = {"both": ("[", "]"), "left": ("[", ")"), "right": ("(", "]"), "neither": ("(", ")")}


class Interval:
    """A number of a kind (``Integral`` or ``Real``) between two bounds; ``None`` leaves a side open.

    Booleans are not numbers here, and a real must be finite.

    Examples
    --------
    >>> Interval(Real, 0, 1, closed="right").check(0.5, "share")
    0.5
    >>> Interval(Integral, 1, None).describe()
    'an integer >= 1'
    """

    def __init__(self, kind, low, high, *, closed="both"):
        if kind not in (Integral, Real):
            raise TypeError(f"kind must be numbers.Integral or numbers.Real, found {kind!r}")
        if closed not in _CLOSED:
            raise ValueError(f"closed must be one of {sorted(_CLOSED)}, found {closed!r}")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def describe(self):
        noun = "an integer" if self.kind is Integral else "a number"
        left = self.low is not None and self.closed in ("both", "left")
        right = self.high is not None and self.closed in ("both", "right")
        if self.low is not None and self.high is not None:
            opening, closing = _CLOSED[self.closed]
            return f"{noun} in {opening}{self.low:g}, {self.high:g}{closing}"
        if self.low is not None:
            return f"{noun} {'>=' if left else '>'} {self.low:g}"
        if self.high is not None:
            return f"{noun} {'<=' if right else '<'} {self.high:g}"
        return "a finite number" if self.kind is Real else noun

    def accepts_type(self, value):
        if isinstance(value, bool):
            return False
        if self.kind is Integral:
            return isinstance(value, (Integral, np.integer))
        return isinstance(value, (Real, np.integer, np.floating))

    def check(self, value, name):
        if not self.accepts_type(value):
            raise TypeError(f"{name} must be {self.describe()}, found {type(value).__name__} {value!r}")
        value = int(value) if self.kind is Integral else float(value)
        if self.kind is Real and not math.isfinite(value):
            raise UserError(f"{name} must be {self.describe()}, found {value!r}")
        low_ok = self.low is None or (value >= self.low if self.closed in ("both", "left") else value > self.low)
        high_ok = self.high is None or (value <= self.high if self.closed in ("both", "right") else value < self.high)
        if not (low_ok and high_ok):
            raise UserError(f"{name} must be {self.describe()}, found {value!r}")
        return value

    def parse(self, text):
        """The number a piece of text spells (ValueError when it spells none)."""
        text = str(text).strip()
        if not (_INTEGER_TEXT if self.kind is Integral else _REAL_TEXT).fullmatch(text):
            raise ValueError(text)
        return int(text) if self.kind is Integral else float(text)


class Options:
    """One of a few given values.

    Examples
    --------
    >>> Options("sum", "mean").check("mean", "loss")
    'mean'
    """

    def __init__(self, *values):
        if not values:
            raise ValueError("Options needs at least one value")
        self.values = values

    def describe(self):
        return "one of " + ", ".join(repr(v) for v in self.values)

    def check(self, value, name):
        if isinstance(value, bool) and not any(isinstance(v, bool) for v in self.values):
            raise TypeError(f"{name} must be {self.describe()}, found {value!r}")
        try:
            if value in self.values:
                return value
        except TypeError:  # an unhashable or odd value: not one of the options
            pass
        raise UserError(f"{name} must be {self.describe()}, found {value!r}")

    def parse(self, text):
        return str(text).strip()


class Boolean:
    """``True`` or ``False`` (numpy's booleans included); ``1`` and ``"yes"`` are not booleans.

    Examples
    --------
    >>> Boolean().check(True, "calibrate")
    True
    """

    def describe(self):
        return "True or False"

    def check(self, value, name):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be {self.describe()}, found {type(value).__name__} {value!r}")
        return bool(value)

    def parse(self, text):
        words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        try:
            return words[str(text).strip().lower()]
        except KeyError:
            raise ValueError(text) from None


class OrNone:
    """``None``, or what ``constraint`` allows.

    Examples
    --------
    >>> OrNone(Interval(Integral, 1, None)).check(None, "max_spectra") is None
    True
    """

    def __init__(self, constraint):
        self.constraint = constraint

    def describe(self):
        return f"None or {self.constraint.describe()}"

    def check(self, value, name):
        return None if value is None else self.constraint.check(value, name)

    def parse(self, text):
        return None if str(text).strip().lower() == "none" else self.constraint.parse(text)


class Each:
    """A list or tuple of ``min_length`` to ``max_length`` items, each allowed by ``constraint``; gives a tuple.

    Examples
    --------
    >>> Each(Interval(Integral, 1, None)).check([500, 500], "hidden_units")
    (500, 500)
    """

    def __init__(self, constraint, min_length=1, max_length=None):
        self.constraint, self.min_length, self.max_length = constraint, min_length, max_length

    def describe(self):
        most = "" if self.max_length is None else f" to {self.max_length}"
        return f"a list of {self.min_length}{most} items, each {self.constraint.describe()}"

    def check(self, value, name):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be {self.describe()}, found {type(value).__name__} {value!r}")
        if len(value) < self.min_length or (self.max_length is not None and len(value) > self.max_length):
            raise UserError(f"{name} must be {self.describe()}, found {len(value)} items")
        return tuple(self.constraint.check(item, f"each of {name}") for item in value)

    def parse(self, text):
        return [self.constraint.parse(part) for part in str(text).split(",")]


def check_param(value, name, constraint):
    """``value`` checked against ``constraint`` (converted: ints to ``int``, reals to ``float``).

    Raises
    ------
    TypeError
        For a value of the wrong type.
    kit.errors.UserError
        (a ValueError) for one of the right type but out of bounds; one line naming the parameter.

    Examples
    --------
    >>> check_param(0.5, "dropout", Interval(Real, 0, 1))
    0.5
    """
    return constraint.check(value, name)


def validate_params(constraints, params):
    """Every parameter of ``params`` that ``constraints`` names, checked; returns the converted values.

    An estimator calls it at the start of ``fit`` with its ``_parameter_constraints`` and
    ``get_params(deep=False)``, so a wrong value fails before any work.

    Examples
    --------
    >>> validate_params({"n_pairs": Interval(Integral, 1, None)}, {"n_pairs": 20000, "seed": 0})
    {'n_pairs': 20000}
    """
    return {name: constraint.check(params[name], name) for name, constraint in constraints.items() if name in params}


def parse_param(text, name, constraint):
    """A value written as text (a command-line option, a settings entry), parsed and checked.

    Examples
    --------
    >>> parse_param("2.5", "--timeout", Interval(Real, 0, None, closed="neither"))
    2.5
    >>> parse_param("soon", "--timeout", Interval(Real, 0, None, closed="neither"))
    Traceback (most recent call last):
    ...
    kit.errors.UserError: --timeout must be a number > 0, found 'soon'
    """
    if not isinstance(text, str):
        return constraint.check(text, name)
    try:
        value = constraint.parse(text)
    except (ValueError, OverflowError):
        raise UserError(f"{name} must be {constraint.describe()}, found {text!r}") from None
    try:
        return constraint.check(value, name)
    except TypeError as exc:
        raise UserError(str(exc)) from None


def argparse_type(constraint, name="value"):
    """An argparse ``type=`` that parses and checks an option's text (argparse then exits with 2).

    Examples
    --------
    >>> positive = argparse_type(Interval(Integral, 1, None))
    >>> positive("3")
    3
    """

    def convert(text):
        try:
            return parse_param(text, name, constraint)
        except UserError as exc:
            raise argparse.ArgumentTypeError(str(exc).replace(f"{name} must be", "expected", 1)) from None

    convert.__name__ = constraint.describe()
    return convert
