"""convlayer: 2D convolutional layers on NumPy, exact, fast and explained.

>>> import numpy as np, convlayer
>>> image = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)
>>> layer = convlayer.kernels.stack(["edge", "blur"], channels=3)   # (3, 3, 3, 2)
>>> convlayer.conv2d(image, layer, bias=[1, 0], strides=2, padding="same").shape
(16, 16, 2)

``import convlayer`` imports NumPy and nothing else; the command line, figures and image
files load their dependencies when they are used. It shortens how long OpenBLAS's idle
threads spin (``OPENBLAS_THREAD_TIMEOUT``, unless set): see :mod:`convlayer._blas`; and
has glibc's malloc keep freed memory for the next call (unless ``CONVLAYER_MALLOC=glibc``
or a ``MALLOC_*`` variable is set): see :mod:`convlayer._malloc`.
"""

from . import _blas, _malloc

_blas.shorten_spin()  # first: before anything here imports NumPy
_malloc.keep_freed_memory()

from . import kernels, reference, shapes
from .algorithms.buffers import get_memory_budget, memory_budget, release_work_buffers, set_memory_budget
from .functional import Conv2DGrads, conv2d, conv2d_backward, relu, relu_backward
from .pooling import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    global_max_pool2d,
    global_max_pool2d_backward,
    lp_pool2d,
    lp_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_unpool2d,
    max_unpool2d_backward,
)
from .sharing import (
    locally_connected2d,
    locally_connected2d_backward,
    region_conv2d,
    region_conv2d_backward,
    tiled_conv2d,
    tiled_conv2d_backward,
)
from .transposed import conv_transpose2d, conv_transpose2d_backward

__version__ = "0.1.0"

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "Conv2DGrads",
    "get_memory_budget",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "global_max_pool2d",
    "global_max_pool2d_backward",
    "kernels",
    "locally_connected2d",
    "locally_connected2d_backward",
    "lp_pool2d",
    "lp_pool2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_unpool2d",
    "max_unpool2d_backward",
    "memory_budget",
    "reference",
    "region_conv2d",
    "region_conv2d_backward",
    "release_work_buffers",
    "relu",
    "relu_backward",
    "set_memory_budget",
    "shapes",
    "tiled_conv2d",
    "tiled_conv2d_backward",
]
