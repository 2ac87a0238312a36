"""Convolution geometry, one axis and two: padding words to numbers of zeros, the user's
layout read as ``(n, h, w, c)``, output sizes, and the checks that come with them.

Conventions (see SPEC.md): pairs are ``(vertical, horizontal)``; an int means both. The
kernel's *span* is its dilated size, ``(kernel - 1) * dilation + 1``.
"""

from __future__ import annotations

import sys
from typing import NamedTuple, Sequence, Union

from .._args import as_int, as_pair, padding_1d, padding_2d

IntPair = Union[int, "tuple[int, int]"]
Padding = Union[str, int, "tuple[int, int]", "tuple[tuple[int, int], tuple[int, int]]"]


def span(kernel: int, dilation: int = 1) -> int:
    """The extent of a dilated kernel: ``(kernel - 1) * dilation + 1``.

    >>> span(3, dilation=2)
    5
    """
    return (kernel - 1) * dilation + 1


# One axis.


def _pads_for_word(word: str, size: int, span_: int, stride: int) -> tuple[int, int]:
    if word == "valid":
        return 0, 0
    if word == "full":
        return span_ - 1, span_ - 1
    out = -(-size // stride)  # ceil(size / stride)
    total = max((out - 1) * stride + span_ - size, 0)
    small, large = total // 2, total - total // 2
    # TensorFlow's SAME puts the odd zero after (bottom/right); JAX's SAME_LOWER before.
    return (small, large) if word == "same" else (large, small)


def _extent(size: int, span_: int, stride: int, pads: tuple[int, int], axis: str, form) -> int:
    """Output size along one axis for resolved padding; raise if the kernel cannot fit.

    'same' always fits (``ceil(size / stride)`` windows, none for an empty image); any other
    padding must leave at least one window, even around an empty image.
    """
    before, after = pads
    padded = size + before + after
    if padded < span_:
        if size == 0 and form in ("same", "same_lower"):
            return 0
        raise ValueError(
            f"kernel {axis} {span_} does not fit the padded input {axis} {padded} "
            f"(x {axis} {size} + padding {before} + {after}); use a smaller kernel or "
            f"dilation, more padding, or padding='same'"
        )
    return (padded - span_) // stride + 1


def _check_output_size(shape, form, dilation) -> None:
    """Raise when the padding (and the dilation that 'full' padding follows) make an output
    of more bytes than an address can count."""
    elements = 1
    for size in shape:
        elements *= size
    if elements * 8 > sys.maxsize:  # 8: a float64 value
        raise ValueError(f"padding {form!r} with dilation {dilation} gives an output of shape "
                         f"{tuple(shape)} (n, h, w, k), larger than any array; use less padding or dilation")


def _check_axis(size, kernel, stride, dilation) -> tuple[int, int, int, int]:
    return (
        as_int("size", size, minimum=0),
        as_int("kernel", kernel, minimum=1),
        as_int("stride", stride, minimum=1),
        as_int("dilation", dilation, minimum=1),
    )


def pad_amounts(
    size: int, kernel: int, stride: int = 1, padding: Padding = "same", dilation: int = 1
) -> tuple[int, int]:
    """Zeros added before and after one axis of length ``size``.

    Parameters
    ----------
    size, kernel, stride, dilation : int
        Input length, kernel length, stride and dilation along the axis.
    padding : {'same', 'same_lower', 'valid', 'full'} or int or (int, int)
        A padding word, ``p`` on both sides, or explicit ``(before, after)``.

    Returns
    -------
    (before, after) : tuple of int

    Notes
    -----
    'same' is TensorFlow's rule: ``out = ceil(size / stride)``, total padding
    ``max((out - 1) * stride + span - size, 0)`` with ``span = (kernel - 1) * dilation + 1``;
    the first side gets ``total // 2`` and the odd extra zero goes after. 'same_lower'
    puts the extra zero before. 'full' pads ``span - 1`` on both sides.

    Examples
    --------
    >>> pad_amounts(224, 7, stride=2)
    (2, 3)
    >>> pad_amounts(6, 3, stride=2)
    (0, 1)
    >>> pad_amounts(5, 4, padding="same_lower")
    (2, 1)
    """
    size, kernel, stride, dilation = _check_axis(size, kernel, stride, dilation)
    form = padding_1d(padding)
    if isinstance(form, str):
        return _pads_for_word(form, size, span(kernel, dilation), stride)
    return form


def output_size(
    size: int, kernel: int, stride: int = 1, padding: Padding = "same", dilation: int = 1
) -> int:
    """Length of a convolution's output along one axis.

    Parameters are those of :func:`pad_amounts`.

    Returns
    -------
    int
        ``ceil(size / stride)`` for 'same' and 'same_lower';
        ``ceil((size - span + 1) / stride)`` for 'valid'; otherwise
        ``floor((size + before + after - span) / stride) + 1``.

    Raises
    ------
    ValueError
        If the kernel's span is longer than the padded input. 'same' always fits: an
        empty input (``size=0``) gives 0; with other padding an empty input is fine only
        when the padding alone fits the kernel.

    Examples
    --------
    >>> output_size(224, 7, stride=2, padding="same")
    112
    >>> output_size(224, 7, stride=2, padding="valid")
    109
    >>> output_size(5, 3, padding="full")
    7
    """
    pads = pad_amounts(size, kernel, stride, padding, dilation)
    form = padding.lower() if isinstance(padding, str) else None
    return _extent(int(size), span(int(kernel), int(dilation)), int(stride), pads, "size", form)


# Two axes.


def resolve_padding(
    size_hw: tuple[int, int],
    kernel_hw: tuple[int, int],
    strides: IntPair = 1,
    padding: Padding = "same",
    dilation: IntPair = 1,
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Turn any padding form into ``((top, bottom), (left, right))`` for an image size.

    >>> resolve_padding((224, 224), (7, 7), strides=2, padding="same")
    ((2, 3), (2, 3))
    """
    form = padding_2d(padding)
    if not isinstance(form, str):
        return form
    (sh, sw), (dh, dw) = as_pair("strides", strides), as_pair("dilation", dilation)
    return (
        _pads_for_word(form, size_hw[0], span(kernel_hw[0], dh), sh),
        _pads_for_word(form, size_hw[1], span(kernel_hw[1], dw), sw),
    )


class ConvGeometry(NamedTuple):
    """Every integer a 2D convolution needs, in channels-last terms.

    The input is seen as ``(n, h, w, c)`` and the kernel as ``(fh, fw, c // groups, k)``,
    whatever layout and rank the user passed; ``output_shape`` is the shape returned to
    the user.
    """

    n: int
    h: int
    w: int
    c: int
    fh: int
    fw: int
    k: int
    groups: int
    strides: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[tuple[int, int], tuple[int, int]]
    out_h: int
    out_w: int
    kernel_rank: int
    batched: bool
    channels_first: bool

    @property
    def output_shape(self) -> tuple[int, ...]:
        if self.kernel_rank < 4:  # one filter: the channel axis is dropped
            return ((self.n,) if self.batched else ()) + (self.out_h, self.out_w)
        return user_shape(self.n, self.out_h, self.out_w, self.k, self.batched, self.channels_first)


def is_channels_first(data_format: str) -> bool:
    """Read a ``data_format`` word: True for channels-first, False for channels-last.

    >>> is_channels_first("NCHW")
    True
    """
    if isinstance(data_format, str):
        word = data_format.lower()
        if word in ("channels_last", "nhwc"):
            return False
        if word in ("channels_first", "nchw"):
            return True
    raise ValueError(
        f"data_format must be 'channels_last' or 'channels_first'; got {data_format!r}"
    )


def x_layouts(channels_first: bool) -> str:
    """The image and batch layouts x may have, for messages."""
    return "(C, H, W) or (N, C, H, W)" if channels_first else "(H, W, C) or (N, H, W, C)"


def image_nhwc(x_shape, channels_first: bool) -> tuple[tuple[int, int, int, int], bool]:
    """Read ``(n, h, w, c)`` and whether it is a batch from an image or batch shape (rank 3 or 4)."""
    batched = len(x_shape) == 4
    nhwc = tuple(x_shape) if batched else (1,) + tuple(x_shape)
    if channels_first:
        nhwc = (nhwc[0], nhwc[2], nhwc[3], nhwc[1])
    return nhwc, batched


def user_shape(n: int, h: int, w: int, c: int, batched: bool, channels_first: bool) -> tuple[int, ...]:
    """An ``(n, h, w, c)`` shape in the user's layout and rank."""
    image = (c, h, w) if channels_first else (h, w, c)
    return ((n,) if batched else ()) + image


def _split_shapes(input_shape, kernel_shape, channels_first):
    """Read (n, h, w, c), (fh, fw, c_in, k), kernel rank and batched from user shapes."""
    rank_k, rank_x = len(kernel_shape), len(input_shape)
    if rank_k not in (2, 3, 4):
        raise ValueError(
            f"kernel must have 2, 3 or 4 dimensions ((Fh, Fw), (Fh, Fw, C) or "
            f"(Fh, Fw, C/groups, K)); got kernel shape {tuple(kernel_shape)}"
        )
    if rank_k == 2:
        if rank_x != 2:
            raise ValueError(
                f"a 2-D kernel (Fh, Fw) takes a 2-D x (H, W); got x shape {tuple(input_shape)} "
                f"and kernel shape {tuple(kernel_shape)} (use a (Fh, Fw, C) kernel for one "
                f"filter over C channels)"
            )
        (h, w), (fh, fw) = input_shape, kernel_shape
        return (1, h, w, 1), (fh, fw, 1, 1), False
    if rank_x not in (3, 4):
        raise ValueError(
            f"x must be {x_layouts(channels_first)} for a {rank_k}-D kernel; got x shape "
            f"{tuple(input_shape)} and kernel shape {tuple(kernel_shape)}"
        )
    nhwc, batched = image_nhwc(input_shape, channels_first)
    if rank_k == 3:
        fh, fw, c_in = (kernel_shape[1], kernel_shape[2], kernel_shape[0]) if channels_first else kernel_shape
        return nhwc, (fh, fw, c_in, 1), batched
    if channels_first:
        k, c_in, fh, fw = kernel_shape
        return nhwc, (fh, fw, c_in, k), batched
    return nhwc, tuple(kernel_shape), batched


def _check_channels(x_shape, kernel_shape, nhwc, hwio, groups, channels_first=False):
    c, (fh, fw, c_in, k) = nhwc[3], hwio
    if fh < 1 or fw < 1:
        raise ValueError(
            f"kernel height and width must be positive; got kernel shape {tuple(kernel_shape)}"
        )
    if c % groups or k % groups:
        raise ValueError(
            f"groups must divide both the input channels and the output channels; got "
            f"groups={groups} with {c} input channels and {k} output channels "
            f"(kernel shape {tuple(kernel_shape)}, x shape {tuple(x_shape)})"
        )
    if c_in * groups != c:
        per_group = "" if groups == 1 else f" per group (groups={groups}, so {c_in * groups} in all)"
        raise ValueError(
            f"kernel has {c_in} input channels{per_group} but x has {c} "
            f"(kernel shape {tuple(kernel_shape)}, x shape {tuple(x_shape)})"
            + _layout_hint(x_shape, kernel_shape, groups, channels_first)
        )


def _layout_hint(x_shape, kernel_shape, groups, channels_first) -> str:
    """What to pass when the shapes would fit the other layout: a PyTorch port's
    (N, C, H, W) x and (K, C/groups, Fh, Fw) kernel read channels-last, or the reverse."""
    if len(kernel_shape) != 4 or len(x_shape) not in (3, 4):
        return ""
    if not channels_first and kernel_shape[1] * groups == x_shape[-3]:
        return ("; x and kernel fit PyTorch's layout, (N, C, H, W) and (C_out, C_in/groups, Fh, Fw): "
                "pass data_format='channels_first'")
    if channels_first and kernel_shape[2] * groups == x_shape[-1]:
        return ("; x and kernel fit the channels-last layout, (N, H, W, C) and (Fh, Fw, C_in/groups, C_out): "
                "pass data_format='channels_last' (the default)")
    return ""


def conv_geometry(
    input_shape: Sequence[int],
    kernel_shape: Sequence[int],
    strides: IntPair = 1,
    padding: Padding = "same",
    dilation: IntPair = 1,
    *,
    groups: int = 1,
    data_format: str = "channels_last",
) -> ConvGeometry:
    """Check a convolution's shapes and arguments and resolve every integer it needs.

    This is the one place where kernel ranks, layouts, groups and padding words are read;
    ``conv2d``, the reference loops and :func:`conv2d_output_shape` all go through it.
    """
    channels_first = is_channels_first(data_format)
    x_shape, k_shape = tuple(int(s) for s in input_shape), tuple(int(s) for s in kernel_shape)
    strides_, dilation_ = as_pair("strides", strides), as_pair("dilation", dilation)
    groups = as_int("groups", groups, minimum=1)
    form = padding_2d(padding)
    nhwc, hwio, batched = _split_shapes(x_shape, k_shape, channels_first)
    _check_channels(x_shape, k_shape, nhwc, hwio, groups, channels_first)
    n, h, w, c = nhwc
    fh, fw, _, k = hwio
    span_h, span_w = span(fh, dilation_[0]), span(fw, dilation_[1])
    if isinstance(form, str):
        pads = (_pads_for_word(form, h, span_h, strides_[0]), _pads_for_word(form, w, span_w, strides_[1]))
    else:
        pads = form
    out_h = _extent(h, span_h, strides_[0], pads[0], "height", form)
    out_w = _extent(w, span_w, strides_[1], pads[1], "width", form)
    _check_output_size((n, out_h, out_w, k), form, dilation_)
    return ConvGeometry(
        n, h, w, c, fh, fw, k, groups, strides_, dilation_, pads, out_h, out_w,
        len(k_shape), batched, channels_first,
    )


def conv2d_output_shape(
    input_shape: Sequence[int],
    kernel_shape: Sequence[int],
    strides: IntPair = 1,
    padding: Padding = "same",
    dilation: IntPair = 1,
    *,
    groups: int = 1,
    data_format: str = "channels_last",
) -> tuple[int, ...]:
    """Shape of ``conv2d(x, kernel, ...)`` for ``x.shape == input_shape``.

    The kernel's rank decides the form, as in :func:`convlayer.conv2d`: ``(Fh, Fw)`` takes
    ``(H, W)``; ``(Fh, Fw, C)`` takes ``(H, W, C)`` or ``(N, H, W, C)`` and drops the channel
    axis; ``(Fh, Fw, C/groups, K)`` gives ``K`` output channels.

    Raises
    ------
    ValueError
        On a channel mismatch, a bad padding word, non-positive strides or dilation, groups
        that do not divide, or a kernel that does not fit the padded input.

    Examples
    --------
    >>> conv2d_output_shape((224, 224, 3), (7, 7, 3, 64), strides=2)
    (112, 112, 64)
    >>> conv2d_output_shape((8, 32, 32, 3), (3, 3, 3), padding="valid")
    (8, 30, 30)
    >>> conv2d_output_shape((8, 3, 32, 32), (16, 3, 5, 5), data_format="channels_first")
    (8, 16, 32, 32)
    """
    return conv_geometry(
        input_shape, kernel_shape, strides, padding, dilation, groups=groups, data_format=data_format
    ).output_shape
