"""Pooling: the maximum, mean or Lp norm over each window, or over fixed bins, and gradients.

Sliding windows (:mod:`.max`, :mod:`.average`) move like a convolution's kernel (the same
padding words and output sizes: :func:`convlayer.shapes.pool_geometry`, reached through
:func:`convlayer._validate.pool_args`), with PyTorch's and ONNX's ``dilation`` and
``ceil_mode`` too, but padded positions are not zeros: max pooling ignores them (as if they
were ``-inf``) and average pooling divides by the number of real, unpadded pixels in the
window, as ``tf.nn.max_pool2d`` and ``tf.nn.avg_pool2d`` do (``count_include_pad=True``
counts the padding, PyTorch's default). Adaptive and global pools (:mod:`.adaptive`) reduce
PyTorch's bins. Every op has its ``_backward`` twin beside it.
"""

from .adaptive import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    global_max_pool2d,
    global_max_pool2d_backward,
)
from .average import avg_pool2d, avg_pool2d_backward, lp_pool2d, lp_pool2d_backward
from .max import max_pool2d, max_pool2d_backward, max_unpool2d, max_unpool2d_backward

__all__ = [
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d", "adaptive_max_pool2d_backward",
    "avg_pool2d", "avg_pool2d_backward", "global_avg_pool2d", "global_avg_pool2d_backward", "global_max_pool2d",
    "global_max_pool2d_backward", "lp_pool2d", "lp_pool2d_backward", "max_pool2d", "max_pool2d_backward",
    "max_unpool2d", "max_unpool2d_backward",
]
