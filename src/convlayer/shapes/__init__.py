"""Shape logic for 2D convolutions and poolings: integers in, integers out, no arrays.

Everything a convolution or a pooling needs to know before it touches an array lives here:
how a padding word ('same', 'valid', ...) becomes numbers of zeros on each side, how the
user's layout reads as ``(n, h, w, c)``, how big the output is (:mod:`.conv`, :mod:`.pool`, and the transposed convolution's in
:mod:`.transpose`),
and how many parameters a layer has under each kind of weight sharing (:mod:`.params`). The
compute code only ever sees the resolved numbers.
"""

from .._args import PADDING_WORDS, ArgumentTypeError
from .conv import (  # noqa: F401  (IntPair and Padding: the type aliases other modules annotate with)
    ConvGeometry,
    IntPair,
    Padding,
    conv2d_output_shape,
    conv_geometry,
    is_channels_first,
    output_size,
    pad_amounts,
    resolve_padding,
    span,
)
from .params import BANK_GRIDS, SHARING_KINDS, BankGrid, check_sharing, num_params
from .pool import (AdaptiveGeometry, PoolGeometry, adaptive_bins, adaptive_geometry, global_geometry,
                   pool_geometry, window_taps)
from .transpose import TransposeGeometry, conv_transpose2d_output_shape, transpose_geometry

__all__ = [
    "BANK_GRIDS", "PADDING_WORDS", "SHARING_KINDS", "AdaptiveGeometry", "ArgumentTypeError", "BankGrid",
    "ConvGeometry", "PoolGeometry", "TransposeGeometry", "adaptive_bins", "adaptive_geometry", "check_sharing",
    "conv2d_output_shape", "conv_geometry", "conv_transpose2d_output_shape", "global_geometry",
    "is_channels_first", "num_params", "output_size", "pad_amounts", "pool_geometry", "resolve_padding", "span",
    "transpose_geometry", "window_taps",
]
