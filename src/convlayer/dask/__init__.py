"""convlayer's ops on Dask arrays, chunk by chunk, for arrays larger than memory.

``convlayer.conv2d(dask_array, ...)`` comes here (:func:`conv2d`) and returns a lazy Dask
array with the values of the in-memory call, chunked along N, H and W (never along
channels). Also here: :func:`relu` on Dask arrays, :func:`predict` (a model batch by
batch), :func:`read_image` (a TIFF or Zarr image, read lazily) and :func:`read_images` (a
folder of photos as one lazy batch).

- :mod:`.graph`: conv2d's checks and its graph of one task per output block;
- :mod:`.plan`: where each axis is cut, and which input pixel each padded position copies;
- :mod:`.blocks`: what a task runs (gather a block, correlate it);
- :mod:`.ops`: relu and predict;
- :mod:`.io`: the file readers.

Importing this package imports Dask; ``import convlayer`` does not.
"""

from ..images import is_zarr_store  # a path test, needing no Dask; public here too
from .graph import conv2d
from .io import DEFAULT_CHUNK, read_image, read_images
from .ops import predict, relu

__all__ = ["conv2d", "predict", "read_image", "read_images", "relu"]
