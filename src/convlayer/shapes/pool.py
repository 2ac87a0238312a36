"""Pooling geometry: a window slides as a convolution's kernel does, but every window must
hold a real pixel (padding is ignored, not zeros). Also the bins of the adaptive pools.

A window of ``pool`` taps, ``dilation`` apart, starts at ``i * stride - before`` on each axis.
Its taps are *real* where they land in the image, *padding* where they land in the padded
border, and *outside* where a ``ceil_mode`` window hangs past the padded input.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from .._args import as_pair, padding_2d
from .conv import (IntPair, Padding, image_nhwc, is_channels_first, output_size, resolve_padding,
                   span, user_shape, x_layouts)


class PoolGeometry(NamedTuple):
    """Every integer a 2D pooling needs, in channels-last terms ``(n, h, w, c)``."""

    n: int
    h: int
    w: int
    c: int
    pool: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[tuple[int, int], tuple[int, int]]
    out_h: int
    out_w: int
    batched: bool
    channels_first: bool
    dilation: tuple[int, int] = (1, 1)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return user_shape(self.n, self.h, self.w, self.c, self.batched, self.channels_first)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return user_shape(self.n, self.out_h, self.out_w, self.c, self.batched, self.channels_first)


def window_taps(size: int, pool: int, stride: int, dilation: int, pads: tuple[int, int], out: int,
                *, include_pad: bool = False) -> list[int]:
    """How many taps of each of the ``out`` windows along one axis land in the image (or,
    with ``include_pad``, in the padded input ``[-before, size + after)``).

    >>> window_taps(5, 3, 2, 1, (1, 1), 3)      # windows at -1, 1, 3: the first and last clipped
    [2, 3, 2]
    >>> window_taps(5, 3, 2, 1, (1, 1), 3, include_pad=True)
    [3, 3, 3]
    >>> window_taps(4, 2, 2, 1, (0, 0), 3, include_pad=True)   # ceil_mode: the last hangs past
    [2, 2, 0]
    """
    before, after = pads
    low, high = (-before, size + after) if include_pad else (0, size)
    counts = []
    for i in range(out):  # Python ints: a pool, stride or padding of 2^40 does not overflow
        start = i * stride - before
        first = max(0, -(-(low - start) // dilation))  # first tap at or after low
        last = min(pool - 1, (high - 1 - start) // dilation)  # last tap before high
        counts.append(max(0, last - first + 1))
    return counts


def _ceil_extent(size: int, span_: int, stride: int, pads: tuple[int, int]) -> int:
    """PyTorch's and ONNX's ``ceil_mode`` length: round up, but a last window must start
    inside the input or its left/top padding."""
    before, after = pads
    out = -(-(size + before + after - span_) // stride) + 1
    if (out - 1) * stride >= size + before:
        out -= 1
    return out


def _pool_extent(size, pool, stride, dilation, form, pads, axis, ceil_mode) -> int:
    """Output length along one axis; raise unless every window holds a real pixel."""
    before, after = pads
    span_ = span(pool, dilation)
    if form in ("same", "same_lower"):  # always fits; a window of padding alone needs dilation
        out = output_size(size, pool, stride, form, dilation)
    elif size + before + after < span_:
        what = f"pool_size {axis} {pool}" + (f" (dilated: {span_})" if dilation > 1 else "")
        raise ValueError(
            f"{what} does not fit the padded input {axis} "
            f"{size + before + after} (x {axis} {size} + padding {before} + {after}); use a "
            f"smaller pool_size, more padding, or padding='same'"
        )
    elif ceil_mode:
        out = _ceil_extent(size, span_, stride, pads)
    else:
        out = (size + before + after - span_) // stride + 1
    if form in ("same", "same_lower") and (size == 0 or dilation == 1):
        return out
    if size == 0 or 0 in window_taps(size, pool, stride, dilation, pads, out):
        dilated = f", dilation {axis} {dilation}" if dilation > 1 else ""
        raise ValueError(
            f"padding {before} + {after} leaves a window of padding only along the {axis} "
            f"(x {axis} {size}, pool_size {axis} {pool}, strides {axis} {stride}{dilated}); every "
            f"window must hold at least one real pixel"
        )
    return out


def _image_nhwc(x_shape, channels_first: bool) -> tuple[tuple[int, int, int, int], bool]:
    if len(x_shape) not in (3, 4):
        raise ValueError(
            f"x must be {x_layouts(channels_first)}; got x shape {tuple(x_shape)} (add a channel "
            f"axis to a single-channel image)"
        )
    return image_nhwc(x_shape, channels_first)


def pool_geometry(
    x_shape: Sequence[int],
    pool_size: IntPair,
    strides: "IntPair | None" = None,
    padding: Padding = "valid",
    data_format: str = "channels_last",
    *,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
) -> PoolGeometry:
    """Check a pooling's shape and arguments and resolve every integer it needs.

    A window slides as a kernel of size ``pool_size`` and ``dilation`` does (the same padding
    words and output sizes); ``strides=None`` means ``pool_size``. ``ceil_mode`` rounds the
    output length up instead of down, PyTorch's and ONNX's rule: a last window that would start
    past the input and its top/left padding is dropped. Explicit padding must leave at least
    one real pixel in every window.

    >>> pool_geometry((32, 32, 3), 3, strides=2, padding="same").output_shape
    (16, 16, 3)
    >>> pool_geometry((1, 3, 5, 5), 2, data_format="channels_first", ceil_mode=True).output_shape
    (1, 3, 3, 3)
    """
    channels_first = is_channels_first(data_format)
    pool = as_pair("pool_size", pool_size)
    strides_ = pool if strides is None else as_pair("strides", strides)
    dilation_ = as_pair("dilation", dilation)
    form = padding_2d(padding)
    (n, h, w, c), batched = _image_nhwc(x_shape, channels_first)
    pads = resolve_padding((h, w), pool, strides_, padding, dilation_)
    word = form if isinstance(form, str) else None
    out_h = _pool_extent(h, pool[0], strides_[0], dilation_[0], word, pads[0], "height", ceil_mode)
    out_w = _pool_extent(w, pool[1], strides_[1], dilation_[1], word, pads[1], "width", ceil_mode)
    return PoolGeometry(n, h, w, c, pool, strides_, pads, out_h, out_w, batched, channels_first, dilation_)


class AdaptiveGeometry(NamedTuple):
    """The integers of an adaptive (or global) pooling: the input ``(n, h, w, c)`` and, per
    axis, where each output bin starts and stops."""

    n: int
    h: int
    w: int
    c: int
    rows: tuple[tuple[int, int], ...]  # (start, stop) of each output row's bin
    cols: tuple[tuple[int, int], ...]
    batched: bool
    channels_first: bool

    @property
    def out_h(self) -> int:
        return len(self.rows)

    @property
    def out_w(self) -> int:
        return len(self.cols)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return user_shape(self.n, self.h, self.w, self.c, self.batched, self.channels_first)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return user_shape(self.n, self.out_h, self.out_w, self.c, self.batched, self.channels_first)


def adaptive_bins(size: int, out: int) -> tuple[tuple[int, int], ...]:
    """PyTorch's bins: bin ``i`` spans ``floor(i * size / out)`` to ``ceil((i + 1) * size / out)``.

    Neighbouring bins overlap by a pixel where ``size`` is not a multiple of ``out``, and
    repeat pixels where ``out > size``.

    >>> adaptive_bins(5, 3)
    ((0, 2), (1, 4), (3, 5))
    >>> adaptive_bins(2, 3)
    ((0, 1), (0, 2), (1, 2))
    """
    return tuple((i * size // out, -(-(i + 1) * size // out)) for i in range(out))


def adaptive_geometry(x_shape: Sequence[int], output_size, data_format: str = "channels_last") -> AdaptiveGeometry:
    """Check an adaptive pooling's shape and ``output_size`` (an int, or a pair whose None
    keeps that axis's size, as in PyTorch) and resolve its bins.

    >>> adaptive_geometry((10, 7, 3), (2, None)).output_shape
    (2, 7, 3)
    """
    channels_first = is_channels_first(data_format)
    (n, h, w, c), batched = _image_nhwc(x_shape, channels_first)
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        output_size = tuple(size if want is None else want for want, size in zip(output_size, (h, w)))
    out_h, out_w = as_pair("output_size", output_size)
    _check_not_empty(h, w, x_shape)
    return AdaptiveGeometry(n, h, w, c, adaptive_bins(h, out_h), adaptive_bins(w, out_w), batched, channels_first)


def global_geometry(x_shape: Sequence[int], data_format: str = "channels_last") -> AdaptiveGeometry:
    """The geometry of a global pooling: one bin, the whole image.

    >>> global_geometry((2, 3, 7, 7), "channels_first").rows
    ((0, 7),)
    """
    channels_first = is_channels_first(data_format)
    (n, h, w, c), batched = _image_nhwc(x_shape, channels_first)
    _check_not_empty(h, w, x_shape)
    return AdaptiveGeometry(n, h, w, c, ((0, h),), ((0, w),), batched, channels_first)


def _check_not_empty(h: int, w: int, x_shape) -> None:
    if h == 0 or w == 0:
        raise ValueError(
            f"x must have images of at least one pixel: an empty bin has no maximum or mean; "
            f"got x shape {tuple(x_shape)} (height {h}, width {w})"
        )
