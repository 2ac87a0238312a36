"""The one boundary: user input in, clean channels-last arrays and integers out.

Public ops call :func:`conv_args` first (``conv2d_backward`` calls :func:`conv_grad_args`,
which also checks ``grad_out``; the sliding poolings :func:`pool_args` and
:func:`pool_grad_args`, the adaptive and global ones :func:`adaptive_args`, unpooling
:func:`unpool_args`).
After it, the compute code may assume that ``x`` is a real ndarray seen as ``(n, h, w, c)``,
the kernel is ``(fh, fw, c // groups, k)`` in the result dtype (already flipped for true
convolution), ``bias`` is ``(k,)`` or None, and every size and padding is a resolved
integer in a :class:`~convlayer.shapes.ConvGeometry`.
Nothing here copies ``x``: it is only viewed, so the user's array is never modified and
never duplicated in memory.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

import numpy as np

from . import shapes
from .algorithms import layout
from ._args import ArgumentTypeError, as_pair, show

PAD_MODES = ("constant", "reflect", "symmetric", "edge", "wrap")
_PAD_ALIASES = {"zeros": "constant", "replicate": "edge", "circular": "wrap"}


class ConvArgs(NamedTuple):
    """The checked, normalised arguments of a convolution."""

    x: np.ndarray  # (n, h, w, c) view of the user's array, its own dtype
    kernel: np.ndarray  # (fh, fw, c // groups, k) in ``dtype``
    bias: "np.ndarray | None"  # (k,) in ``dtype``
    geom: shapes.ConvGeometry
    pad_mode: str
    dtype: np.dtype


def is_dask_array(value) -> bool:
    """True for a Dask array, found without importing Dask (none exists until it is imported)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(value, module.Array)


def as_real_array(name: str, value) -> np.ndarray:
    """Return ``value`` as an ndarray of a real numeric (or bool) dtype, without copying."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{name} could not be read as an array: {error}") from None
    kind = array.dtype.kind
    if kind == "c":
        raise TypeError(
            f"{name} must be real; got complex dtype {array.dtype} (pass {name}.real, or "
            f"convolve the real and imaginary parts separately)"
        )
    if kind not in "biuf":
        raise TypeError(
            f"{name} must have a numeric (bool, integer or float) dtype; got dtype {array.dtype}"
        )
    return array


def as_flag(name: str, value) -> bool:
    """Return ``value`` as a bool: True, False (NumPy's too), 1 or 0; else raise naming ``name``.

    >>> as_flag("flip", 1)
    True
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise ArgumentTypeError(f"{name} must be True or False; got {show(value)}")


def pad_mode_name(pad_mode) -> str:
    """NumPy's name for a pad mode, accepting PyTorch's aliases."""
    word = pad_mode.lower() if isinstance(pad_mode, str) else None
    word = _PAD_ALIASES.get(word, word)
    if word not in PAD_MODES:
        raise ValueError(
            "pad_mode must be 'constant', 'reflect', 'symmetric', 'edge' or 'wrap' (or "
            f"PyTorch's 'zeros', 'replicate', 'circular'); got {pad_mode!r}"
        )
    return word


def _kernel_hwio(kernel: np.ndarray, geom: shapes.ConvGeometry, flip: bool) -> np.ndarray:
    """View any accepted kernel form as (fh, fw, c // groups, k)."""
    if geom.kernel_rank == 2:
        hwio = kernel[:, :, None, None]
    elif geom.kernel_rank == 3:
        hwio = (kernel.transpose(1, 2, 0) if geom.channels_first else kernel)[..., None]
    else:
        hwio = kernel.transpose(2, 3, 1, 0) if geom.channels_first else kernel
    return hwio[::-1, ::-1] if flip else hwio


def _batch_nhwc(array: np.ndarray, batched: bool, channels_first: bool) -> np.ndarray:
    """View an image or batch in the user's layout, rank 3 or 4, as (n, h, w, c)."""
    batch = array if batched else array[None]
    return batch.transpose(0, 2, 3, 1) if channels_first else batch


def x_nhwc(x: np.ndarray, geom: shapes.ConvGeometry) -> np.ndarray:
    """View the user's x (an ndarray, or a Dask array) as (n, h, w, c)."""
    if geom.kernel_rank == 2:
        return x[None, :, :, None]
    return _batch_nhwc(x, geom.batched, geom.channels_first)


def _bias(bias, geom: shapes.ConvGeometry, dtype) -> "np.ndarray | None":
    if bias is None:
        return None
    array = as_real_array("bias", bias)
    if array.shape not in ((), (geom.k,)):
        raise ValueError(
            f"bias must be None, a scalar or have shape (K,) = ({geom.k},) for {geom.k} output "
            f"channel{'s' if geom.k != 1 else ''}; got bias shape {array.shape}"
        )
    if array.shape == (geom.k,) and array.dtype == dtype:
        return array  # only read: added to the output
    return np.broadcast_to(array, (geom.k,)).astype(dtype)


def _check_pad_mode_fits(geom: shapes.ConvGeometry, pad_mode: str) -> None:
    """NumPy cannot reflect, repeat or wrap an empty axis: say so before np.pad does."""
    if pad_mode == "constant" or geom.n * geom.out_h * geom.out_w * geom.k == 0:
        return
    for axis, size, pads in (("height", geom.h, geom.pads[0]), ("width", geom.w, geom.pads[1])):
        if size == 0 and any(pads):
            raise ValueError(
                f"pad_mode {pad_mode!r} cannot fill padding from an empty image (x {axis} 0); "
                f"use pad_mode='constant'"
            )


def _stepping(geom: shapes.ConvGeometry) -> shapes.ConvGeometry:
    """``geom`` with each stride at most one step past the padded input, and dilation 1
    along an axis of one tap: the same windows (a stride of 10^20 leaves one, a one-tap
    kernel has no gaps), and no stride or dilation of 10^20 multiplied into a memory offset."""
    strides, dilations = [], []
    for stride, size, kernel, dilation, pads in zip(geom.strides, (geom.h, geom.w), (geom.fh, geom.fw),
                                                    geom.dilation, geom.pads):
        last_start = size + sum(pads) - shapes.span(kernel, dilation)  # of the last possible window
        strides.append(min(stride, max(last_start + 1, 1)))
        dilations.append(dilation if kernel > 1 else 1)
    return geom._replace(strides=tuple(strides), dilation=tuple(dilations))


def conv_geometry(x_shape, kernel_shape, strides, padding, dilation, groups, data_format) -> shapes.ConvGeometry:
    """:func:`shapes.conv_geometry` then :func:`_stepping`, remembered for arguments seen before.

    The geometry is pure integer logic, so a network that calls the same layer again (or a
    1x1 layer on a 1x1 image, where checking the arguments cost more than the product) gets
    it from a cache. The cache key holds each argument's type beside its value, all the way
    into tuples: ``strides=1.0`` is refused again, not served the geometry of ``strides=1``
    (which it equals and hashes like). Arguments that are not plain ints, strings and tuples
    of them (a list, a NumPy integer) are checked afresh every time.
    """
    arguments = (tuple(x_shape), tuple(kernel_shape), strides, padding, dilation, groups, data_format)
    options = _typed_key(arguments[2:])  # the shapes are an array's: tuples of ints
    if options is None:
        return _checked_geometry(*arguments)
    key = arguments[:2] + options
    geom = _GEOMETRIES.get(key)
    if geom is None:
        geom = _checked_geometry(*arguments)
        if len(_GEOMETRIES) >= _GEOMETRIES_KEPT:
            _GEOMETRIES.pop(next(iter(_GEOMETRIES)), None)  # the oldest entry
        _GEOMETRIES[key] = geom
    return geom


_GEOMETRIES: dict = {}
_GEOMETRIES_KEPT = 512  # distinct layers remembered: every convolution of a few real networks


def _checked_geometry(x_shape, kernel_shape, strides, padding, dilation, groups, data_format) -> shapes.ConvGeometry:
    return _stepping(shapes.conv_geometry(x_shape, kernel_shape, strides, padding, dilation, groups=groups,
                                          data_format=data_format))


def _typed_key(value):
    """``value`` with the type of every item beside it, or None when it holds anything but
    ints (bool included, as its own type), strings and tuples of them."""
    kind = type(value)
    if kind is int or kind is str or kind is bool:
        return kind, value
    if kind is not tuple:
        return None
    items = []
    for item in value:
        typed = _typed_key(item)
        if typed is None:
            return None
        items.append(typed)
    return tuple(items)


def conv_args(
    x, kernel, bias, *, strides, padding, dilation, groups, flip, pad_mode, data_format
) -> ConvArgs:
    """Check and normalise the arguments of ``conv2d`` (and of the reference loops)."""
    x = as_real_array("x", x)
    kernel = as_real_array("kernel", kernel)
    geom = conv_geometry(x.shape, kernel.shape, strides, padding, dilation, groups, data_format)
    mode = pad_mode_name(pad_mode)
    _check_pad_mode_fits(geom, mode)
    dtype = np.result_type(x.dtype, kernel.dtype, np.float32)
    hwio = _kernel_hwio(kernel, geom, as_flag("flip", flip)).astype(dtype, copy=False)  # read only
    return ConvArgs(x_nhwc(x, geom), hwio, _bias(bias, geom, dtype), geom, mode, dtype)


def new_output(geom: shapes.ConvGeometry, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Allocate the result in the user's layout; return it and its (n, out_h, out_w, k) view.

    The compute code fills the view, so a channels-first result is written in place
    without a transposing copy.
    """
    out = np.empty(geom.output_shape, dtype)
    return out, _output_nhwc(out, geom)


def _output_nhwc(out: np.ndarray, geom: shapes.ConvGeometry) -> np.ndarray:
    """View an array of the output's shape as (n, out_h, out_w, k)."""
    if geom.kernel_rank < 4:  # no channel axis: (n?, out_h, out_w)
        return out[..., None] if geom.batched else out[None, ..., None]
    return _batch_nhwc(out, geom.batched, geom.channels_first)


def conv_grad_args(grad_out, x, kernel, **options) -> tuple[ConvArgs, np.ndarray]:
    """Check ``conv2d_backward``'s arguments: conv2d's, then grad_out against its output.

    Returns the :class:`ConvArgs` (without bias) and grad_out's (n, out_h, out_w, k) view.
    """
    x, kernel = as_real_array("x", x), as_real_array("kernel", kernel)
    args = conv_args(x, kernel, None, **options)
    expected = (f"conv2d's output shape {args.geom.output_shape} for x shape {x.shape} and "
                f"kernel shape {kernel.shape}")
    return args, _grad_nhwc(grad_out, args.geom, expected)


def _grad_nhwc(grad_out, geom: shapes.ConvGeometry, expected: str) -> np.ndarray:
    """grad_out checked against the output's shape (``expected`` says which), as NHWC."""
    grad = as_real_array("grad_out", grad_out)
    if grad.shape != geom.output_shape:
        raise ValueError(f"grad_out must have {expected}; got grad_out shape {grad.shape}")
    return _output_nhwc(grad, geom)


def new_input_grad(geom: shapes.ConvGeometry, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Zeros of x's shape in ``dtype``, and their (n, h, w, c) view to accumulate into."""
    if geom.kernel_rank == 2:
        shape = (geom.h, geom.w)
    else:
        image = (geom.c, geom.h, geom.w) if geom.channels_first else (geom.h, geom.w, geom.c)
        shape = ((geom.n,) if geom.batched else ()) + image
    grad_x = np.zeros(shape, dtype)
    return grad_x, x_nhwc(grad_x, geom)


def kernel_from_hwio(hwio: np.ndarray, geom: shapes.ConvGeometry, flip: bool) -> np.ndarray:
    """Undo :func:`_kernel_hwio`: a (fh, fw, c // groups, k) array in the user's kernel form."""
    if flip:
        hwio = hwio[::-1, ::-1]
    if geom.kernel_rank == 2:
        kernel = hwio[:, :, 0, 0]
    elif geom.kernel_rank == 3:
        kernel = hwio[..., 0].transpose(2, 0, 1) if geom.channels_first else hwio[..., 0]
    else:
        kernel = layout.filters_first(hwio) if geom.channels_first else layout.filters_last(hwio)
    return np.ascontiguousarray(kernel)


def banked_args(x, kernel, bias, *, strides, padding, sharing: str) -> ConvArgs:
    """Check the arguments of the weight-sharing ops (``locally_connected2d`` and kin).

    The kernel stays a bank ``(b_h, b_w, fh, fw, c, k)`` in the result dtype and the bias
    is ``(b_h, b_w, k)`` or None.
    """
    x, kernel = as_real_array("x", x), as_real_array("kernel", kernel)
    if x.ndim not in (3, 4):
        raise ValueError(f"x must be (H, W, C) or (N, H, W, C); got x shape {x.shape}")
    if kernel.ndim != 6:
        raise ValueError(
            f"kernel must be (B_h, B_w, Fh, Fw, C, K), one (Fh, Fw, C, K) kernel per "
            f"{shapes.BANK_GRIDS[sharing].name} cell; got kernel shape {kernel.shape}"
        )
    geom = _stepping(shapes.conv_geometry(x.shape, kernel.shape[2:], strides, padding))
    _check_banks(sharing, kernel.shape, x.shape, geom)
    dtype = np.result_type(x.dtype, kernel.dtype, np.float32)
    return ConvArgs(x_nhwc(x, geom), kernel.astype(dtype), _bank_bias(bias, kernel.shape, dtype),
                    geom, "constant", dtype)


def _check_banks(sharing: str, kernel_shape, x_shape, geom: shapes.ConvGeometry) -> None:
    banks, output = tuple(kernel_shape[:2]), (geom.out_h, geom.out_w)
    grid = shapes.BANK_GRIDS[sharing]
    both = f"(kernel shape {tuple(kernel_shape)}, x shape {tuple(x_shape)})"
    if min(banks) < 1:
        raise ValueError(f"kernel's {grid.name} {grid.symbols} must be positive; got {banks} {both}")
    if sharing == "unshared" and banks != output:
        raise ValueError(
            f"kernel has an output grid of {banks} but the output is {output} for these strides "
            f"and padding {both}"
        )
    if sharing == "regions" and (banks[0] > output[0] or banks[1] > output[1]):
        raise ValueError(f"kernel has {banks} regions but the output is only {output} pixels {both}")


def _bank_bias(bias, kernel_shape, dtype) -> "np.ndarray | None":
    if bias is None:
        return None
    array = as_real_array("bias", bias)
    expected = tuple(kernel_shape[:2]) + (kernel_shape[-1],)
    if array.shape not in ((), expected):
        raise ValueError(f"bias must be None, a scalar or have shape {expected}; got bias shape {array.shape}")
    return np.broadcast_to(array, expected).astype(dtype)


def banked_grad_args(grad_out, x, kernel, *, strides, padding, sharing: str) -> tuple[ConvArgs, np.ndarray]:
    """:func:`banked_args`, then grad_out against the output; returns grad_out's NHWC view."""
    args = banked_args(x, kernel, None, strides=strides, padding=padding, sharing=sharing)
    return args, _grad_nhwc(grad_out, args.geom, f"the output's shape {args.geom.output_shape}")


def pool_args(x, pool_size, strides, padding, data_format, *, dilation=1, ceil_mode=False
              ) -> tuple[np.ndarray, shapes.PoolGeometry]:
    """Check the arguments of a pooling; return x's (n, h, w, c) view and the geometry."""
    x = as_real_array("x", x)
    geom = shapes.pool_geometry(x.shape, pool_size, strides, padding, data_format, dilation=dilation,
                                ceil_mode=as_flag("ceil_mode", ceil_mode))
    return _batch_nhwc(x, geom.batched, geom.channels_first), geom


def pool_grad_args(grad_out, x, pool_size, strides, padding, data_format, *, dilation=1, ceil_mode=False
                   ) -> tuple[np.ndarray, np.ndarray, shapes.PoolGeometry]:
    """:func:`pool_args`, then grad_out against the pooled output; returns x's and
    grad_out's (n, h, w, c) views and the geometry."""
    x_nhwc, geom = pool_args(x, pool_size, strides, padding, data_format, dilation=dilation, ceil_mode=ceil_mode)
    options = f"pool_size {geom.pool}, strides {geom.strides}, padding {show(padding)}"
    if geom.dilation != (1, 1):
        options += f", dilation {geom.dilation}"
    return x_nhwc, pool_grad_nhwc(grad_out, geom, geom.output_shape, options), geom


def pool_grad_nhwc(grad_out, geom, shape: tuple, options: str) -> np.ndarray:
    """grad_out checked against a pooling's output ``shape`` (``options`` say how it came
    about), seen as (n, out_h, out_w, c)."""
    grad = as_real_array("grad_out", grad_out)
    if grad.shape != shape:
        raise ValueError(
            f"grad_out must have the pooled output's shape {shape} (x shape {geom.input_shape}, "
            f"{options}); got grad_out shape {grad.shape}"
        )
    return _batch_nhwc(grad.reshape(geom.output_shape), geom.batched, geom.channels_first)


def adaptive_args(x, output_size, data_format) -> tuple[np.ndarray, shapes.AdaptiveGeometry]:
    """Check an adaptive pooling's arguments (``output_size=None``: a global pooling)."""
    x = as_real_array("x", x)
    if output_size is None:
        geom = shapes.global_geometry(x.shape, data_format)
    else:
        geom = shapes.adaptive_geometry(x.shape, output_size, data_format)
    return _batch_nhwc(x, geom.batched, geom.channels_first), geom


def as_norm_order(p) -> float:
    """The ``p`` of an Lp pooling: a finite real number > 0."""
    number = None if isinstance(p, (bool, np.bool_, str, bytes)) else getattr(p, "real", None)
    if number is None or np.ndim(p) != 0 or np.iscomplexobj(p):
        raise ArgumentTypeError(f"p must be a finite number > 0, such as 1 or 2; got {show(p)}")
    if not (np.isfinite(number) and number > 0):
        raise ValueError(f"p must be a finite number > 0, such as 1 or 2; got {show(p)}")
    return float(number)


def unpool_args(x, indices, output_size, data_format) -> tuple[np.ndarray, np.ndarray, shapes.PoolGeometry]:
    """Check ``max_unpool2d``'s arguments; return x's and the indices' (n, h, w, c) views
    and a geometry whose *input* is the unpooled image and whose *output* is x."""
    x, index = as_real_array("x", x), np.asarray(indices)
    channels_first = shapes.is_channels_first(data_format)
    if index.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers, as max_pool2d returns them; got dtype {index.dtype}")
    if index.shape != x.shape:
        raise ValueError(f"indices must have x's shape {x.shape}; got indices shape {index.shape}")
    geom = shapes.pool_geometry(x.shape, 1, data_format=data_format)  # x's layout, checked
    out_h, out_w = _unpool_size(output_size, x.shape, geom)
    if index.size and (index.min() < 0 or index.max() >= out_h * out_w):
        raise ValueError(
            f"indices must lie in [0, {out_h * out_w}) for output_size ({out_h}, {out_w}); got indices "
            f"from {index.min()} to {index.max()}"
        )
    geom = geom._replace(h=out_h, w=out_w, out_h=geom.h, out_w=geom.w)
    layout = (geom.batched, channels_first)
    return _batch_nhwc(x, *layout), _batch_nhwc(index, *layout), geom


def _unpool_size(output_size, x_shape, geom) -> tuple[int, int]:
    """(H, W) from an int, a pair, or a whole shape in x's layout (PyTorch's forms)."""
    if hasattr(output_size, "__len__") and len(output_size) == len(x_shape):
        full = tuple(output_size)
        height, width = (full[-2], full[-1]) if geom.channels_first else (full[-3], full[-2])
        fixed = [i for i, (want, got) in enumerate(zip(full, x_shape)) if want != got]
        spatial = {len(x_shape) - 2, len(x_shape) - 1} if geom.channels_first else {len(x_shape) - 3, len(x_shape) - 2}
        if set(fixed) - spatial:
            raise ValueError(f"output_size must keep x's batch and channel sizes (x shape {x_shape}); "
                             f"got output_size {show(output_size)}")
        output_size = (height, width)
    return as_pair("output_size", output_size, minimum=1)


def pool_nhwc(array: np.ndarray, geom) -> np.ndarray:
    """View an array in a pooling's user layout (its input's or output's) as (n, h, w, c)."""
    return _batch_nhwc(array, geom.batched, geom.channels_first)


def new_pool_output(geom: shapes.PoolGeometry, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Zeros of the pooled output's shape in the user's layout, and their (n, out_h, out_w, c) view."""
    out = np.zeros(geom.output_shape, dtype)
    return out, _batch_nhwc(out, geom.batched, geom.channels_first)


def new_pool_input_grad(geom: shapes.PoolGeometry, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Zeros of x's shape in ``dtype``, and their (n, h, w, c) view to accumulate into."""
    grad_x = np.zeros(geom.input_shape, dtype)
    return grad_x, _batch_nhwc(grad_x, geom.batched, geom.channels_first)


class TransposeArgs(NamedTuple):
    """The checked, normalised arguments of a transposed convolution."""

    x: np.ndarray  # (n, h, w, c) view of the user's array, its own dtype
    kernel: np.ndarray  # (fh, fw, k // groups, c) in ``dtype``: the forward convolution's kernel
    bias: "np.ndarray | None"  # (k,) in ``dtype``
    geom: shapes.TransposeGeometry
    dtype: np.dtype


def transpose_args(x, kernel, bias, *, strides, padding, output_padding, output_shape, dilation, groups,
                   data_format) -> TransposeArgs:
    """Check and normalise the arguments of ``conv_transpose2d`` (and of its reference loops).

    Both kernel layouts become the forward convolution's HWIO kernel, (fh, fw, k // groups, c):
    channels-last is that already, channels-first ``(c, k // groups, fh, fw)`` is viewed so.
    """
    x, kernel = as_real_array("x", x), as_real_array("kernel", kernel)
    geom = shapes.transpose_geometry(x.shape, kernel.shape, strides, padding, output_padding, output_shape,
                                     dilation, groups=groups, data_format=data_format)
    dtype = np.result_type(x.dtype, kernel.dtype, np.float32)
    # C order: a channels-first kernel's view would be copied again by every chunk's weight matrix
    hwio = (kernel.transpose(2, 3, 1, 0) if geom.channels_first else kernel).astype(dtype, order="C")
    x_view = _batch_nhwc(x, geom.batched, geom.channels_first)
    return TransposeArgs(x_view, hwio, _bias(bias, geom, dtype), geom, dtype)


def new_transpose_output(geom: shapes.TransposeGeometry, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Zeros of the transposed convolution's result in the user's layout, and their
    (n, out_h, out_w, k) view (rows and columns no input pixel reaches stay zero)."""
    out = np.zeros(geom.output_shape, dtype)
    return out, _batch_nhwc(out, geom.batched, geom.channels_first)


def transpose_grad_args(grad_out, x, kernel, **options) -> tuple[TransposeArgs, np.ndarray]:
    """Check ``conv_transpose2d_backward``'s arguments; return them and grad_out's NHWC view."""
    x, kernel = as_real_array("x", x), as_real_array("kernel", kernel)
    args = transpose_args(x, kernel, None, **options)
    grad = as_real_array("grad_out", grad_out)
    if grad.shape != args.geom.output_shape:
        raise ValueError(
            f"grad_out must have conv_transpose2d's output shape {args.geom.output_shape} for x shape "
            f"{x.shape} and kernel shape {kernel.shape}; got grad_out shape {grad.shape}"
        )
    return args, _batch_nhwc(grad, args.geom.batched, args.geom.channels_first)


def new_transpose_input_grad(geom: shapes.TransposeGeometry, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Zeros of x's shape in ``dtype``, and their (n, h, w, c) view."""
    grad_x = np.zeros(geom.input_shape, dtype)
    return grad_x, _batch_nhwc(grad_x, geom.batched, geom.channels_first)


def transpose_kernel_from_hwio(hwio: np.ndarray, geom: shapes.TransposeGeometry) -> np.ndarray:
    """Undo :func:`transpose_args`'s view: (fh, fw, k // groups, c) in the user's kernel layout."""
    return layout.filters_first(hwio) if geom.channels_first else layout.filters_last(hwio)
