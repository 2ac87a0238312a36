"""Parsing the command line's compact forms: '224x224x3', '2x1', '0,1,2,3'."""

from __future__ import annotations


def ints(name: str, text: str, count: "tuple[int, ...]") -> tuple[int, ...]:
    """Parse '224x224x3' (or '2,1') into ints, with one of the allowed counts."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) not in count:
        raise ValueError(f"--{name} must be {' or '.join(_forms(name))}; got {text!r}")
    return values


def _forms(name: str) -> list[str]:
    return {"input": ["HxW", "HxWxC", "NxHxWxC"], "kernel": ["F", "FhxFw"], "kernel-size": ["F", "FhxFw"],
            "padding": ["a word", "P", "P_h,P_w", "top,bottom,left,right"]}.get(
        name, ["an integer" if name in ("filters", "groups") else "S or S_hxS_w"])


def padding(text: str):
    """'same' -> 'same'; '1' -> 1; '1,2' -> (1, 2); '0,1,2,3' -> ((0, 1), (2, 3))."""
    if text.strip().replace("_", "").isalpha():
        return text.strip().lower()
    values = ints("padding", text, (1, 2, 4))
    if len(values) == 4:
        return (values[0], values[1]), (values[2], values[3])
    return values[0] if len(values) == 1 else values


def pair(name: str, text: str) -> "int | tuple[int, int]":
    """'2' -> 2; '2x1' or '2,1' -> (2, 1)."""
    values = ints(name, text, (1, 2))
    return values[0] if len(values) == 1 else values


def check_banks(text: str, banks: "tuple[int, int]", grid: "tuple[int, int]") -> None:
    """--banks RxC must not ask for more banks than the output grid has rows and columns: a
    tile period or a region grid beyond it would leave banks that no output pixel uses."""
    if banks[0] > grid[0] or banks[1] > grid[1]:
        raise ValueError(f"--banks {text}: {banks[0]}x{banks[1]} banks on a {grid[0]}x{grid[1]} output grid; "
                         f"at most {grid[0]}x{grid[1]} (one bank per output pixel)")


def looks_channels_first(dims: "tuple[int, ...]") -> bool:
    """A channels-last ``HxWxC`` or ``NxHxWxC`` that reads better as ``CxHxW``: a height of at
    most 4 (as RGB, RGBA or gray channels) before a last axis of 16 or more."""
    return len(dims) in (3, 4) and dims[-3] <= 4 and dims[-1] >= 16
