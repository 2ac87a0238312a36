"""Plain-loop convolution, written from the definition, for teaching and for tests.

This is the tutorial's algorithm with its two bugs fixed: it builds the padded image before
sliding the window (the tutorial's loop indexed the unpadded one), and it computes in the
result dtype (the tutorial summed uint8 pixels, which wraps around at 256). It is slow on
purpose: one Python iteration per output value, so that every step can be read.

It shares the argument checks and shape logic of :func:`convlayer.conv2d` (so the same call
means the same thing) but none of its compute code.
"""

from __future__ import annotations

import numpy as np

from . import _validate


def conv2d(
    x,
    kernel,
    bias=None,
    *,
    strides=1,
    padding="same",
    dilation=1,
    groups=1,
    flip=False,
    pad_mode="constant",
    data_format="channels_last",
) -> np.ndarray:
    """Reference for :func:`convlayer.conv2d`: same arguments, same result, plain loops.

    Examples
    --------
    >>> import numpy as np
    >>> conv2d(np.arange(9.0).reshape(3, 3), np.ones((2, 2)), padding="valid")
    array([[ 8., 12.],
           [20., 24.]])
    """
    args = _validate.conv_args(
        x, kernel, bias, strides=strides, padding=padding, dilation=dilation, groups=groups,
        flip=flip, pad_mode=pad_mode, data_format=data_format,
    )
    result, out = _validate.new_output(args.geom, args.dtype)
    _correlate_loops(args, out)
    return result


def _correlate_loops(args: _validate.ConvArgs, out: np.ndarray) -> None:
    """Fill out (n, out_h, out_w, k): each value is one window times one filter, summed."""
    geom, kernel = args.geom, args.kernel
    (sh, sw), (dh, dw) = geom.strides, geom.dilation
    padded = _pad(args.x.astype(args.dtype), geom.pads, args.pad_mode)
    fh, fw, channels_per_group, k = kernel.shape
    filters_per_group = k // geom.groups
    for image in range(geom.n):
        for i in range(geom.out_h):
            for j in range(geom.out_w):
                for channel in range(k):
                    group = channel // filters_per_group
                    first = group * channels_per_group
                    window = padded[
                        image,
                        i * sh : i * sh + (fh - 1) * dh + 1 : dh,
                        j * sw : j * sw + (fw - 1) * dw + 1 : dw,
                        first : first + channels_per_group,
                    ]
                    total = np.sum(window * kernel[:, :, :, channel])
                    if args.bias is not None:
                        total = total + args.bias[channel]
                    out[image, i, j, channel] = total


def _pad(x: np.ndarray, pads, pad_mode: str) -> np.ndarray:
    """The padded batch (n, h + top + bottom, w + left + right, c), by ``np.pad``."""
    widths = ((0, 0), pads[0], pads[1], (0, 0))
    if x.size == 0 or pad_mode == "constant":
        return np.pad(x, widths, mode="constant")
    return np.pad(x, widths, mode=pad_mode)
