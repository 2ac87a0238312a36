"""Parsing of the small arguments every op shares: ints, pairs and padding forms.

Each parser returns plain Python ints (or a padding word) and raises an error that names the
argument, shows what was received and says what was expected.
"""

from __future__ import annotations

import operator

PADDING_WORDS = ("same", "same_lower", "valid", "full")

_PADDING_HELP = (
    "padding must be 'same', 'same_lower', 'valid', 'full', an int, a pair "
    "or ((top, bottom), (left, right))"
)


class ArgumentTypeError(TypeError, ValueError):
    """A scalar argument of the wrong type (e.g. ``strides=1.5``).

    It is both a ``TypeError`` and a ``ValueError``, as NumPy's ``AxisError`` is both a
    ``ValueError`` and an ``IndexError``: code catching either sees it.
    """


def as_int(name: str, value, *, minimum: int) -> int:
    """Return ``value`` as a Python int >= minimum, or raise naming ``name``."""
    kind = "positive" if minimum == 1 else "non-negative"
    if isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be {kind} integers; got {show(value)}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ArgumentTypeError(f"{name} must be {kind} integers; got {show(value)}") from None
    if number < minimum:
        raise ValueError(f"{name} must be {kind} integers; got {show(value)}")
    return number


def _is_sequence(value) -> bool:
    """True for lists, tuples and arrays of rank >= 1 (a 0-d array is a scalar)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        return False
    return getattr(value, "ndim", 1) > 0


def as_pair(name: str, value, *, minimum: int = 1) -> tuple[int, int]:
    """Return an int or a ``(vertical, horizontal)`` pair as a pair of ints.

    >>> as_pair("strides", 2)
    (2, 2)
    >>> as_pair("strides", (2, 1))
    (2, 1)
    """
    if not _is_sequence(value):
        number = as_int(name, value, minimum=minimum)
        return number, number
    if len(value) != 2:
        raise ValueError(
            f"{name} must be an int or a pair (vertical, horizontal); got {show(value)}"
        )
    try:
        return (as_int(name, value[0], minimum=minimum), as_int(name, value[1], minimum=minimum))
    except ValueError:  # re-raise with the whole pair in the message
        kind = "positive" if minimum == 1 else "non-negative"
        error = ArgumentTypeError if _any_non_int(value) else ValueError
        raise error(f"{name} must be {kind} integers; got {show(value)}") from None


def _any_non_int(values) -> bool:
    """True if any value is not an integer (bools count as not)."""
    for v in values:
        if isinstance(v, bool):
            return True
        try:
            operator.index(v)
        except TypeError:
            return True
    return False


def show(value) -> str:
    """Show a user's value the way they wrote it, with NumPy arrays shown as lists."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return repr(value)


def padding_1d(padding) -> "str | tuple[int, int]":
    """Return a padding word (lower case) or (before, after) for one axis."""
    if isinstance(padding, str):
        word = padding.lower()
        if word not in PADDING_WORDS:
            raise ValueError(f"{_PADDING_HELP}; got {padding!r}")
        return word
    if _is_sequence(padding):
        return as_pair("padding", padding, minimum=0)
    number = as_int("padding", padding, minimum=0)
    return number, number


def padding_2d(padding) -> "str | tuple[tuple[int, int], tuple[int, int]]":
    """Parse any accepted padding form into a word or ``((top, bottom), (left, right))``.

    >>> padding_2d("SAME")
    'same'
    >>> padding_2d(1)
    ((1, 1), (1, 1))
    >>> padding_2d((1, 2))
    ((1, 1), (2, 2))
    >>> padding_2d(((0, 1), (2, 3)))
    ((0, 1), (2, 3))
    """
    if isinstance(padding, str):
        return padding_1d(padding)
    try:
        return _explicit_padding(padding)
    except ValueError:  # one message for every malformed form, showing the whole value
        raise _padding_error(padding) from None


def _explicit_padding(padding) -> tuple[tuple[int, int], tuple[int, int]]:
    if not _is_sequence(padding):
        number = as_int("padding", padding, minimum=0)
        return (number, number), (number, number)
    if len(padding) == 2 and all(_is_sequence(p) for p in padding):
        return as_pair("padding", padding[0], minimum=0), as_pair("padding", padding[1], minimum=0)
    pad_h, pad_w = as_pair("padding", padding, minimum=0)
    return (pad_h, pad_h), (pad_w, pad_w)


def _padding_error(padding) -> ValueError:
    error = ArgumentTypeError if _has_non_numbers(padding) else ValueError
    return error(f"{_PADDING_HELP} of non-negative integers; got {show(padding)}")


def _has_non_numbers(padding) -> bool:
    values = padding if _is_sequence(padding) else [padding]
    flat = []
    for v in values:
        flat.extend(v if _is_sequence(v) else [v])
    return _any_non_int(flat)
