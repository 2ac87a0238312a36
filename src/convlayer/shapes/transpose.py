"""Transposed-convolution geometry: the output size for each padding form, ``output_padding``
and ``output_shape``, and the forward convolution the op is the adjoint of.

The transposed convolution of ``y`` (``(n, h, w, c)``) is the input gradient of a forward
``conv2d`` from ``(n, out_h, out_w, k)`` back to ``(n, h, w, c)`` with the same kernel,
strides, padding, dilation and groups. Per axis, with ``span = (f - 1) * d + 1``, input
pixel ``i`` reaches output rows ``i * s + a * d - top`` (tap ``a``), so the rows that any
pixel reaches, before cropping, number ``full = (h - 1) * s + span``. The padding crops
``top`` of them at the start; the output keeps ``out_h`` rows from there, and rows past
``full`` (``output_padding`` or an ``output_shape`` at the top of its range) get nothing.
Integers only: no arrays.
"""

from __future__ import annotations

import math
import sys
from typing import NamedTuple, Sequence

from .._args import as_int, as_pair, padding_2d, show
from .conv import (ConvGeometry, IntPair, Padding, _pads_for_word, image_nhwc,
                   is_channels_first, span, user_shape)


def _default_size(word: str, size: int, span_: int, stride: int) -> int:
    """The output length of a padding word without output_padding or output_shape
    (TensorFlow's and Keras's rule)."""
    if word in ("same", "same_lower"):
        return size * stride
    if word == "valid":
        return size * stride + max(span_ - stride, 0)
    return (size - 1) * stride - span_ + 2  # full: span - 1 cropped on each side


def _keras_pads(word: str, span_: int) -> tuple[int, int]:
    """Keras's padding for a word when output_padding is given: symmetric, as PyTorch's."""
    amount = {"valid": 0, "full": span_ - 1}.get(word, span_ // 2)  # same, same_lower: span // 2
    return amount, amount


def _explicit_size(size: int, span_: int, stride: int, pads: tuple[int, int], extra: int) -> int:
    """PyTorch's ``(size - 1) * stride - top - bottom + span + output_padding``."""
    return (size - 1) * stride - pads[0] - pads[1] + span_ + extra


def _forward_range(word_or_pads, size: int, span_: int, stride: int) -> tuple[int, int]:
    """The output lengths (lowest, highest) that conv2d with this padding maps back to ``size``."""
    if word_or_pads in ("same", "same_lower"):
        return ((size - 1) * stride + 1, size * stride) if size else (0, 0)
    pads = (0, 0) if word_or_pads == "valid" else (span_ - 1, span_ - 1) if word_or_pads == "full" else word_or_pads
    lowest = max((size - 1) * stride + span_ - pads[0] - pads[1], 0)
    return lowest, (size - 1) * stride + span_ - pads[0] - pads[1] + stride - 1


def axis_geometry(size: int, kernel: int, stride: int = 1, padding="same", dilation: int = 1,
                  output_padding: "int | None" = None, output_size: "int | None" = None,
                  axis: str = "size") -> tuple[int, tuple[int, int]]:
    """One axis of a transposed convolution: ``(output length, (before, after))``, the
    forward convolution's padding resolved.

    ``padding`` is a word or ``(before, after)``. Raises ValueError when ``output_padding``
    is not below the stride or the dilation, when ``output_size`` is one the forward
    convolution does not map back to ``size`` (naming the lengths it would), or when the
    padding crops more than the kernel spreads.

    >>> axis_geometry(16, 4, 2, (1, 1))           # PyTorch: (16 - 1) * 2 - 2 + 4
    (32, (1, 1))
    >>> axis_geometry(64, 3, 2, (1, 1), output_padding=1)
    (128, (1, 1))
    >>> axis_geometry(3, 3, 2, "same")            # TensorFlow: 3 * 2; conv2d 'same' pads (0, 1)
    (6, (0, 1))
    >>> axis_geometry(3, 3, 2, "same", output_size=5)
    (5, (1, 1))
    """
    span_ = span(kernel, dilation)
    if output_padding is not None and output_padding >= max(stride, dilation):
        raise ValueError(
            f"output_padding must be smaller than the stride or the dilation; got output_padding "
            f"{output_padding} with stride {stride} and dilation {dilation} ({axis})"
        )
    if output_padding is not None:
        pads = _keras_pads(padding, span_) if isinstance(padding, str) else padding
        length = _explicit_size(size, span_, stride, pads, output_padding)
        if output_size is not None and output_size != length:
            raise ValueError(
                f"output_shape {axis} {output_size} disagrees with output_padding {output_padding}, "
                f"which gives {length} ({axis} {size}, stride {stride}, padding {show(padding)}); "
                f"give one of them"
            )
    elif output_size is not None:
        length = output_size
        pads = _pads_for_word(padding, length, span_, stride) if isinstance(padding, str) else padding
        _check_maps_back(padding, size, span_, stride, length, axis)
    else:
        if isinstance(padding, str):  # 'same' and 'valid' lengths are never negative; 'full' pads are fixed
            length = _default_size(padding, size, span_, stride)
            pads = _pads_for_word(padding, max(length, 0), span_, stride)
        else:
            length, pads = _explicit_size(size, span_, stride, padding, 0), padding
    if length < 0:
        raise ValueError(
            f"padding {show(padding)} crops more than the kernel spreads: {axis} {size} with "
            f"kernel span {span_} and stride {stride} gives {(size - 1) * stride + span_} {axis}s "
            f"before cropping {sum(pads)}; use less padding"
        )
    return length, pads


def _check_maps_back(padding, size: int, span_: int, stride: int, length: int, axis: str) -> None:
    """Refuse an output_shape length that conv2d does not map back to ``size``."""
    lowest, highest = _forward_range(padding, size, span_, stride)
    if not lowest <= length <= highest:
        raise ValueError(
            f"output_shape {axis} {length} is not one conv2d maps back to x {axis} {size} "
            f"(kernel span {span_}, stride {stride}, padding {show(padding)}): it takes "
            f"{lowest} to {highest}"
        )


class TransposeGeometry(NamedTuple):
    """Every integer a transposed convolution needs, in channels-last terms.

    ``x`` is seen as ``(n, h, w, c)``, the kernel as ``(fh, fw, k // groups, c)`` (the
    forward convolution's kernel from ``k`` channels to ``c``), the result as
    ``(n, out_h, out_w, k)``; ``pads`` are the forward convolution's, resolved.
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
    batched: bool
    channels_first: bool

    @property
    def output_shape(self) -> tuple[int, ...]:
        return user_shape(self.n, self.out_h, self.out_w, self.k, self.batched, self.channels_first)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return user_shape(self.n, self.h, self.w, self.c, self.batched, self.channels_first)

    def reached(self) -> tuple[int, int]:
        """Output rows and columns that some input pixel reaches (the rest stay zero)."""
        rows = (self.h - 1) * self.strides[0] + span(self.fh, self.dilation[0]) - self.pads[0][0]
        cols = (self.w - 1) * self.strides[1] + span(self.fw, self.dilation[1]) - self.pads[1][0]
        return max(min(rows, self.out_h), 0), max(min(cols, self.out_w), 0)

    def forward(self) -> "ConvGeometry | None":
        """The forward conv2d, from the reached ``(n, rows, cols, k)`` part of the output
        back to ``(n, h, w, c)``, whose input gradient this op is; None when nothing is
        computed (no image, pixel or reached row)."""
        rows, cols = self.reached()
        if self.n * self.h * self.w * self.c * rows * cols == 0:
            return None
        bottom = (self.h - 1) * self.strides[0] + span(self.fh, self.dilation[0]) - self.pads[0][0] - rows
        right = (self.w - 1) * self.strides[1] + span(self.fw, self.dilation[1]) - self.pads[1][0] - cols
        pads = ((self.pads[0][0], bottom), (self.pads[1][0], right))
        return ConvGeometry(self.n, rows, cols, self.k, self.fh, self.fw, self.c, self.groups, self.strides,
                            self.dilation, pads, self.h, self.w, 4, True, False)


def _check_result_size(shape, strides, dilation, padding) -> None:
    """Refuse a result of more bytes than an address can count, naming what makes it so large."""
    if math.prod(shape) * 8 > sys.maxsize:  # 8: a float64 value
        raise ValueError(f"strides {strides}, dilation {dilation} and padding {show(padding)} give an output of "
                         f"shape {tuple(shape)} (n, h, w, k), larger than any array; use smaller strides or "
                         f"dilation, or more padding")


def _split_transpose_shapes(x_shape, kernel_shape, groups: int, channels_first: bool):
    """Read (n, h, w, c), (fh, fw, k) and batched from the user's shapes; check channels."""
    if len(kernel_shape) != 4:
        layout = "(C, K/groups, Fh, Fw)" if channels_first else "(Fh, Fw, K/groups, C)"
        raise ValueError(f"kernel must be {layout}; got kernel shape {tuple(kernel_shape)}")
    if len(x_shape) not in (3, 4):
        layout = "(C, H, W) or (N, C, H, W)" if channels_first else "(H, W, C) or (N, H, W, C)"
        raise ValueError(f"x must be {layout}; got x shape {tuple(x_shape)}")
    nhwc, batched = image_nhwc(x_shape, channels_first)
    if channels_first:
        c_kernel, k_per_group, fh, fw = kernel_shape
    else:
        fh, fw, k_per_group, c_kernel = kernel_shape
    both = f"(kernel shape {tuple(kernel_shape)}, x shape {tuple(x_shape)})"
    if min(fh, fw, k_per_group) < 1:
        raise ValueError(f"kernel height, width and output channels must be positive; got {both[1:-1]}")
    if c_kernel != nhwc[3]:
        raise ValueError(f"kernel has {c_kernel} input channels but x has {nhwc[3]} {both}")
    if nhwc[3] % groups:
        raise ValueError(f"groups must divide the input channels; got groups={groups} with {nhwc[3]} "
                         f"input channels {both}")
    return nhwc, (fh, fw, k_per_group * groups), batched


def _output_size_pair(output_shape, n: int, k: int, batched: bool, channels_first: bool):
    """``output_shape`` as ``(out_h, out_w)``: a pair, or the whole result's shape."""
    if output_shape is None:
        return None, None
    values = tuple(as_int("output_shape", v, minimum=0) for v in output_shape) \
        if hasattr(output_shape, "__len__") else None
    if values is not None and len(values) == 2:
        return values
    rank = 4 if batched else 3
    if values is not None and len(values) == rank:
        hw = (values[-2], values[-1]) if channels_first else (values[-3], values[-2])
        if user_shape(n, hw[0], hw[1], k, batched, channels_first) == values:
            return hw
    expected = user_shape(n, "H'", "W'", k, batched, channels_first)
    raise ValueError(f"output_shape must be (H', W') or the result's shape {show(expected)}; got {show(output_shape)}")


def transpose_geometry(
    input_shape: Sequence[int],
    kernel_shape: Sequence[int],
    strides: IntPair = 1,
    padding: Padding = "same",
    output_padding: "IntPair | None" = None,
    output_shape: "Sequence[int] | None" = None,
    dilation: IntPair = 1,
    *,
    groups: int = 1,
    data_format: str = "channels_last",
) -> TransposeGeometry:
    """Check a transposed convolution's shapes and arguments and resolve every integer.

    See :func:`conv_transpose2d_output_shape` for the rules.
    """
    channels_first = is_channels_first(data_format)
    strides_, dilation_ = as_pair("strides", strides), as_pair("dilation", dilation)
    groups = as_int("groups", groups, minimum=1)
    extra = None if output_padding is None else as_pair("output_padding", output_padding, minimum=0)
    form = padding_2d(padding)
    x_shape, k_shape = tuple(int(s) for s in input_shape), tuple(int(s) for s in kernel_shape)
    (n, h, w, c), (fh, fw, k), batched = _split_transpose_shapes(x_shape, k_shape, groups, channels_first)
    sizes = _output_size_pair(output_shape, n, k, batched, channels_first)
    per_axis = []
    for i, (axis, size, f) in enumerate((("height", h, fh), ("width", w, fw))):
        axis_form = form if isinstance(form, str) else form[i]
        per_axis.append(axis_geometry(size, f, strides_[i], axis_form, dilation_[i],
                                      None if extra is None else extra[i], sizes[i], axis))
    (out_h, pads_h), (out_w, pads_w) = per_axis
    _check_result_size((n, out_h, out_w, k), strides_, dilation_, padding)
    return TransposeGeometry(n, h, w, c, fh, fw, k, groups, strides_, dilation_, (pads_h, pads_w), out_h, out_w,
                             batched, channels_first)


def conv_transpose2d_output_shape(
    input_shape: Sequence[int],
    kernel_shape: Sequence[int],
    strides: IntPair = 1,
    padding: Padding = "same",
    output_padding: "IntPair | None" = None,
    output_shape: "Sequence[int] | None" = None,
    dilation: IntPair = 1,
    *,
    groups: int = 1,
    data_format: str = "channels_last",
) -> tuple[int, ...]:
    """Shape of ``conv_transpose2d(x, kernel, ...)`` for ``x.shape == input_shape``.

    The kernel is ``(Fh, Fw, K/groups, C)`` (``(C, K/groups, Fh, Fw)`` channels-first),
    the result ``(N?, H', W', K)``. Per axis, with ``span = (F - 1) * d + 1``:

    - ``'same'``: ``H * s``; ``'valid'``: ``H * s + max(span - s, 0)``; ``'full'``:
      ``(H - 1) * s - span + 2`` (TensorFlow and Keras);
    - explicit ``(top, bottom)``: ``(H - 1) * s - top - bottom + span + output_padding``
      (PyTorch);
    - with ``output_padding``, a word means Keras's symmetric padding in that formula:
      ``span // 2`` on each side for 'same' and 'same_lower', 0 for 'valid', ``span - 1``
      for 'full' (so, as in Keras, ``output_padding=0`` and ``None`` differ for 'same');
    - ``output_shape`` picks any length that conv2d, with the same arguments, maps back to
      ``H`` (TensorFlow's and ONNX's), and is refused with the range it could be otherwise.

    Examples
    --------
    >>> conv_transpose2d_output_shape((16, 16, 256), (4, 4, 128, 256), strides=2, padding=1)
    (32, 32, 128)
    >>> conv_transpose2d_output_shape((3, 3, 1), (3, 3, 2, 1), strides=2, padding="valid")
    (7, 7, 2)
    >>> conv_transpose2d_output_shape((1, 1, 3, 3), (1, 2, 3, 3), strides=(3, 2), padding=0,
    ...                               output_shape=(10, 8), data_format="channels_first")
    (1, 2, 10, 8)
    """
    return transpose_geometry(input_shape, kernel_shape, strides, padding, output_padding, output_shape,
                              dilation, groups=groups, data_format=data_format).output_shape
