"""Typed, documented parameters: explainers' and processing operations' alike.

A ``Param`` says a parameter's type, default, range or choices and what it means;
the GUI builds its forms from them and the command line parses ``name=value``
through ``Param.coerce``, so both give the same checked value and the same one-line
error for a bad one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import BadInputError

ParamValue = int | float | str | bool | tuple[int, ...] | None


@dataclass(frozen=True)
class Param:
    """One typed, documented parameter; the GUI builds its form from these."""

    name: str
    type: type  # int, float, str, bool or tuple (of ints)
    default: ParamValue
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    optional: bool = False  # None is allowed and means "derive it" (see description)
    length: int | None = None  # a tuple's number of values, when fixed

    def coerce(self, value: Any, method: str, *, owner: str = "method") -> ParamValue:
        """A value from Python or from the command line (a string) -> checked value.

        ``owner`` names what the parameter belongs to in the error line ("method",
        "operation")."""
        where = f"{owner} {method}, parameter {self.name}"
        if isinstance(value, str) and self.choices and value.strip() in self.choices:
            return value.strip()  # a choice, even one named "auto"
        if value is None or (
            isinstance(value, str) and value.strip().lower() in ("", "auto")
        ):
            if self.optional:
                return None
            raise BadInputError(f"{where}: a value is required")
        try:
            if self.type is bool:
                result: ParamValue = _to_bool(value)
            elif self.type is tuple:
                parts = value.split(",") if isinstance(value, str) else list(value)
                result = tuple(_whole(part) for part in parts)
                if not result:
                    raise ValueError("empty list")
                if self.length is not None and len(result) != self.length:
                    raise ValueError(f"{self.length} whole numbers needed")
            elif self.type is int:
                result = _whole(value)
            else:
                if isinstance(value, bool):  # True is 1 to Python, not to a user
                    raise ValueError("a number, not true or false")
                result = self.type(value)
        except (TypeError, ValueError) as error:
            raise BadInputError(
                f"{where}: cannot use {value!r} ({self.type.__name__} expected: "
                f"{error})"
            ) from None
        numbers = result if isinstance(result, tuple) else (result,)
        for number in numbers:
            if isinstance(number, bool) or not isinstance(number, int | float):
                continue
            if not math.isfinite(number):  # NaN passes every < and > test
                raise BadInputError(f"{where}: {number} is not a finite number")
            if self.minimum is not None and number < self.minimum:
                raise BadInputError(f"{where}: {number} is below {self.minimum:g}")
            if self.maximum is not None and number > self.maximum:
                raise BadInputError(f"{where}: {number} is above {self.maximum:g}")
        if self.choices is not None and result not in self.choices:
            raise BadInputError(
                f"{where}: {result!r} is not one of {', '.join(self.choices)}"
            )
        return result


def _whole(value: Any) -> int:
    """A whole number; a fraction is refused rather than cut (0.9 is not 0)."""
    if isinstance(value, bool):
        raise ValueError("a whole number, not true or false")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{value} is not a whole number")
    if isinstance(value, str):
        return int(value.strip())
    return int(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("say true or false")


# Typed reads of resolved parameters.  ``Param.coerce`` already gave each value its
# declared type, so these only narrow ``ParamValue`` for the type checker and turn a
# value of the wrong type (a caller bypassing ``resolve``) into one clear line; they
# return what ``int(value)`` / ``float(value)`` did, so no map changes.
def int_param(params: Mapping[str, ParamValue], name: str) -> int:
    """The whole-number parameter ``name``."""
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise BadInputError(f"parameter {name}: {value!r} is not a whole number")
    return int(value)


def float_param(params: Mapping[str, ParamValue], name: str) -> float:
    """The number parameter ``name`` (a whole number is a number too)."""
    value = params[name]
    if isinstance(value, bool) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        raise BadInputError(f"parameter {name}: {value!r} is not a number")
    return float(value)


def str_param(params: Mapping[str, ParamValue], name: str) -> str:
    """The text parameter ``name``."""
    value = params[name]
    if not isinstance(value, str):
        raise BadInputError(f"parameter {name}: {value!r} is not text")
    return value


def optional_str_param(params: Mapping[str, ParamValue], name: str) -> str | None:
    """The text parameter ``name``, or None ("derive it")."""
    value = params[name]
    if value is not None and not isinstance(value, str):
        raise BadInputError(f"parameter {name}: {value!r} is not text")
    return value


def int_tuple_param(params: Mapping[str, ParamValue], name: str) -> tuple[int, ...]:
    """The list-of-whole-numbers parameter ``name``."""
    value = params[name]
    if not isinstance(value, tuple) or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in value
    ):
        raise BadInputError(f"parameter {name}: {value!r} is not whole numbers")
    return tuple(int(v) for v in value)
