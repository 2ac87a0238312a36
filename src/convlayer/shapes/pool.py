"""Pooling geometry: a window slides as a convolution's kernel does, but every window must
hold a real pixel (padding is ignored, not zeros)."""

from __future__ import annotations

from typing import NamedTuple, Sequence

from .._args import as_pair, padding_2d
from .conv import (IntPair, Padding, image_nhwc, is_channels_first, output_size, resolve_padding,
                   user_shape, x_layouts)


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

    @property
    def input_shape(self) -> tuple[int, ...]:
        return user_shape(self.n, self.h, self.w, self.c, self.batched, self.channels_first)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return user_shape(self.n, self.out_h, self.out_w, self.c, self.batched, self.channels_first)


def _pool_extent(size, pool, stride, form, pads, axis) -> int:
    """Output length along one axis; raise unless every window holds a real pixel."""
    before, after = pads
    if form in ("same", "same_lower"):  # always fits, and never a window of padding alone
        return output_size(size, pool, stride, form)
    if size + before + after < pool:
        raise ValueError(
            f"pool_size {axis} {pool} does not fit the padded input {axis} "
            f"{size + before + after} (x {axis} {size} + padding {before} + {after}); use a "
            f"smaller pool_size, more padding, or padding='same'"
        )
    out = output_size(size, pool, stride, pads)
    if size == 0 or before >= pool or (out - 1) * stride >= before + size:
        raise ValueError(
            f"padding {before} + {after} leaves a window of padding only along the {axis} "
            f"(x {axis} {size}, pool_size {axis} {pool}, strides {axis} {stride}); every "
            f"window must hold at least one real pixel"
        )
    return out


def pool_geometry(
    x_shape: Sequence[int],
    pool_size: IntPair,
    strides: "IntPair | None" = None,
    padding: Padding = "valid",
    data_format: str = "channels_last",
) -> PoolGeometry:
    """Check a pooling's shape and arguments and resolve every integer it needs.

    A window slides as a kernel of size ``pool_size`` does (the same padding words and
    output sizes); ``strides=None`` means ``pool_size``. Explicit padding must leave at least
    one real pixel in every window.

    >>> pool_geometry((32, 32, 3), 3, strides=2, padding="same").output_shape
    (16, 16, 3)
    """
    channels_first = is_channels_first(data_format)
    pool = as_pair("pool_size", pool_size)
    strides_ = pool if strides is None else as_pair("strides", strides)
    form = padding_2d(padding)
    if len(x_shape) not in (3, 4):
        raise ValueError(
            f"x must be {x_layouts(channels_first)}; got x shape {tuple(x_shape)} (add a channel "
            f"axis to a single-channel image)"
        )
    (n, h, w, c), batched = image_nhwc(x_shape, channels_first)
    pads = resolve_padding((h, w), pool, strides_, padding)
    word = form if isinstance(form, str) else None
    out_h = _pool_extent(h, pool[0], strides_[0], word, pads[0], "height")
    out_w = _pool_extent(w, pool[1], strides_[1], word, pads[1], "width")
    return PoolGeometry(n, h, w, c, pool, strides_, pads, out_h, out_w, batched, channels_first)
