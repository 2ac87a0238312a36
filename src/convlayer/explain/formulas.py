"""The formulas of a convolutional layer written out with the user's numbers.

Output size, the padding on each side, and the parameter count, as text: integers in,
strings out, nothing computed here. The numbers come from :mod:`convlayer.shapes` (the
caller resolves them), so a formula can never disagree with the layer. Both
``convlayer explain`` (the figures, through :mod:`convlayer.explain.labels`) and
``convlayer shape`` write these lines; ``report=True`` gives the form ``convlayer shape``
prints, which has no picture beside it and so names the padding on every line.
"""

from __future__ import annotations

from ..shapes import BANK_GRIDS

SIDES = (("top", "bottom"), ("left", "right"))  # the padding's two sides, per axis
_SYMBOLS = (("H", "H'", "Fh"), ("W", "W'", "Fw"))  # input, output and kernel size, per axis
# ' * T_h * T_w' from the grid's '(T_h, T_w)': each kind but 'shared' multiplies by its bank grid
_BANK_SYMBOLS = {"shared": "", **{kind: " * " + grid.symbols.strip("()").replace(", ", " * ")
                                  for kind, grid in BANK_GRIDS.items()}}


def axis_formulas(axis: int, size: int, kernel: int, stride: int, dilation: int, pads: tuple[int, int],
                  out: int, padding: str, *, report: bool = False) -> tuple[str, ...]:
    """The output-size formulas of one axis (0 height, 1 width), each filled in.

    ``padding`` is the padding word ('same', 'same_lower', 'valid', 'full') or 'explicit';
    ``pads`` the zeros before and after. A dilated kernel first gets its span's line.

    >>> axis_formulas(1, 6, 3, 2, 1, (0, 1), 3, "same")[1]
    "padding = max((W' - 1) * s + Fw - W, 0) = max((3 - 1) * 2 + 3 - 6, 0) = 1: left 0, right 1"
    >>> axis_formulas(0, 6, 3, 2, 1, (0, 1), 3, "explicit", report=True)[0]
    "H' = floor((H + top + bottom - Fh) / s) + 1 = floor((6 + 0 + 1 - 3) / 2) + 1 = 3; top 0, bottom 1"
    """
    X, O, F, span, lines = _kernel_span(axis, kernel, dilation)
    first, second = SIDES[axis]
    before, after = pads
    if padding in ("same", "same_lower"):
        lines.append(f"{O} = ceil({X} / s) = ceil({size} / {stride}) = {out}")
        lines.append(f"padding = max(({O} - 1) * s + {F} - {X}, 0) = "
                     f"max(({out} - 1) * {stride} + {span} - {size}, 0) = {before + after}: "
                     f"{first} {before}, {second} {after}")
    elif padding == "valid":
        lines.append(f"{O} = ceil(({X} - {F} + 1) / s) = ceil(({size} - {span} + 1) / {stride}) = {out}")
    else:
        lines.append(f"{O} = floor(({X} + {first} + {second} - {F}) / s) + 1 = "
                     f"floor(({size} + {before} + {after} - {span}) / {stride}) + 1 = {out}")
    lines[-1] += _sides_note(axis, padding, pads, report)
    return tuple(lines)


def _kernel_span(axis: int, kernel: int, dilation: int) -> tuple:
    """``(X, O, F, span, lines)``: the axis's symbols for input, output and kernel size, the
    kernel's span ``(kernel - 1) * dilation + 1`` and, when dilated, the line that computes it
    (``F`` then names the effective size, ``Fh_eff``), for the formulas to start from."""
    X, O, F = _SYMBOLS[axis]
    span = (kernel - 1) * dilation + 1
    if dilation == 1:
        return X, O, F, span, []
    return X, O, f"{F}_eff", span, [f"{F}_eff = ({F} - 1) * d + 1 = ({kernel} - 1) * {dilation} + 1 = {span}"]


def _sides_note(axis: int, padding: str, pads: tuple[int, int], report: bool) -> str:
    """What the last line adds about the padding: a figure draws the zeros, a report says them."""
    (first, second), (before, after) = SIDES[axis], pads
    if padding == "valid":
        return "; no padding" if report else f"  (no padding: {first} 0, {second} 0)"
    if padding in ("same", "same_lower"):
        if not report or (before + after) % 2 == 0:
            return ""
        return f" (the odd zero goes to the {second if padding == 'same' else first})"
    return f"; {first} {before}, {second} {after}" if report else ""


def params_formula(fh: int, fw: int, c: int, k: int, count: int, *, bias: bool = True, groups: int = 1,
                   sharing: str = "shared", banks: tuple[int, int] = (1, 1), report: bool = False) -> str:
    """The parameter count as 'symbols = numbers = count'.

    ``sharing`` multiplies by the kernel banks ``(T_h, T_w)``, ``(R_h, R_w)`` or
    ``(H', W')``. A figure writes the kernel width first, as the tutorial's
    ``(Fw * Fh * C + 1) * K``; a report writes the height first, as its kernel line
    ``Fh x Fw x C x K`` does.

    >>> params_formula(3, 3, 3, 2, 56)
    '(Fw * Fh * C + 1) * K = (3 * 3 * 3 + 1) * 2 = 56'
    >>> params_formula(3, 3, 16, 32, 1152, bias=False, groups=4, report=True)
    'Fh * Fw * C / groups * K = 3 * 3 * 16 / 4 * 32 = 1,152'
    """
    c_symbol = "C / groups" if groups > 1 else "C"
    symbols = _per_bank("Fh", "Fw", c_symbol, "K", bias=bias, width_first=not report)
    numbers = params_numbers(fh, fw, c, k, bias=bias, groups=groups, width_first=not report)
    if sharing != "shared":
        symbols += _BANK_SYMBOLS[sharing]
        numbers += f" * {banks[0]} * {banks[1]}"
    return f"{symbols} = {numbers} = {count:,}"


def params_numbers(fh: int, fw: int, c: int, k: int, *, bias: bool = True, groups: int = 1,
                   grid: tuple[int, int] | None = None, width_first: bool = False) -> str:
    """The parameter count's product with the numbers in, times ``grid``'s banks if given.

    >>> params_numbers(7, 7, 3, 64, grid=(2, 3))
    '(7 * 7 * 3 + 1) * 64 * (2 * 3)'
    """
    channels = f"{c} / {groups}" if groups > 1 else f"{c}"
    product = _per_bank(fh, fw, channels, k, bias=bias, width_first=width_first)
    return product if grid is None else f"{product} * ({grid[0]} * {grid[1]})"


def _per_bank(fh, fw, c, k, *, bias: bool, width_first: bool) -> str:
    """'(Fh * Fw * C + 1) * K' for symbols or numbers alike."""
    first, second = (fw, fh) if width_first else (fh, fw)
    weights = f"{first} * {second} * {c}"
    return f"({weights} + 1) * {k}" if bias else f"{weights} * {k}"


def transpose_axis_formulas(axis: int, size: int, kernel: int, stride: int, dilation: int,
                            pads: tuple[int, int], out: int, padding: str, output_padding: "int | None" = None,
                            output_shape: bool = False) -> tuple[str, ...]:
    """The output-size formulas of one axis of a transposed convolution, filled in.

    ``padding`` is the word or 'explicit'; ``pads`` the forward convolution's padding (here
    it crops); ``output_shape`` says that ``out`` was asked for. The last line says how
    conv2d maps the output back to the input.

    >>> transpose_axis_formulas(0, 16, 4, 2, 1, (1, 1), 32, "explicit")[0]
    "H' = (H - 1) * s - top - bottom + Fh + output_padding = (16 - 1) * 2 - 1 - 1 + 4 + 0 = 32"
    >>> lines = transpose_axis_formulas(1, 3, 3, 2, 1, (0, 1), 6, "same")
    >>> lines[0]
    "W' = W * s = 3 * 2 = 6"
    >>> lines[1].split(" = ")[-1]
    '1: left 0, right 1 cropped'
    """
    X, O, F, span, lines = _kernel_span(axis, kernel, dilation)
    first, second = SIDES[axis]
    before, after = pads
    if output_shape:
        lines.append(f"{O} = {out}, as output_shape asks")
    elif output_padding is not None or padding == "explicit":
        extra = output_padding or 0
        lines.append(f"{O} = ({X} - 1) * s - {first} - {second} + {F} + output_padding = "
                     f"({size} - 1) * {stride} - {before} - {after} + {span} + {extra} = {out}")
    elif padding in ("same", "same_lower"):
        lines.append(f"{O} = {X} * s = {size} * {stride} = {out}")
    elif padding == "valid":
        lines.append(f"{O} = {X} * s + max({F} - s, 0) = {size} * {stride} + max({span} - {stride}, 0) = {out}")
    else:
        lines.append(f"{O} = ({X} - 1) * s - {F} + 2 = ({size} - 1) * {stride} - {span} + 2 = {out}")
    if padding in ("same", "same_lower") and output_padding is None:
        lines.append(f"padding (conv2d's {padding!r} on {O}) = max(({X} - 1) * s + {F} - {O}, 0) = "
                     f"max(({size} - 1) * {stride} + {span} - {out}, 0) = {before + after}: "
                     f"{first} {before}, {second} {after} cropped")
    reached = (size - 1) * stride + span
    lines.append(f"stamps of {span}, {stride} apart: ({X} - 1) * s + {F} = {reached} reached; "
                 + _crop_note(axis, before, reached - before - out))
    return tuple(lines)


def _crop_note(axis: int, before: int, past: int) -> str:
    """What the padding crops of the stamped rows (``past`` > 0) or what stays zero (< 0)."""
    first, second = SIDES[axis]
    noun = "row" if axis == 0 else "column"
    if past >= 0:
        return f"{first} {before} and {second} {past} cropped"
    return f"{first} {before} cropped, {-past} {noun}{'s' if past < -1 else ''} of zeros at the {second}"
