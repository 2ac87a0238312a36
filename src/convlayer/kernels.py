"""Named image filters, and the helper that stacks them into a layer's kernel.

The tutorial's two filters come first: the edge detector (a Laplacian-style 3x3 kernel
with 8 in the middle and -1 around it, whose weights sum to zero, so flat regions give 0)
and the 3x3 box blur (weights 1/9, summing to one, so flat regions keep their value).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

_FILTERS = {
    "edge": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "blur": np.full((3, 3), 1 / 9),
    "gaussian": np.outer([1, 2, 1], [1, 2, 1]) / 16,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "sobel_x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel_y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
}


def names() -> list[str]:
    """The names :func:`get` accepts.

    >>> names()[:2]
    ['edge', 'blur']
    """
    return list(_FILTERS)


def get(name: str, dtype=np.float32) -> np.ndarray:
    """A named 3x3 filter as a new ``(3, 3)`` array.

    Parameters
    ----------
    name : str
        One of :func:`names`: 'edge', 'blur', 'gaussian', 'sharpen', 'sobel_x' (responds
        to left-to-right increases), 'sobel_y' (top-to-bottom increases), 'emboss',
        'identity'.
    dtype : dtype
        Of the result (float32 by default).

    Notes
    -----
    The filters are written for cross-correlation, the convention of ``conv2d``; the
    symmetric ones (edge, blur, gaussian, sharpen, identity) are unchanged by ``flip=True``,
    while the Sobel and emboss kernels change sign or direction.

    Examples
    --------
    >>> get("edge")
    array([[-1., -1., -1.],
           [-1.,  8., -1.],
           [-1., -1., -1.]], dtype=float32)
    >>> float(get("blur").sum())
    1.0
    """
    if not isinstance(name, str) or name.lower() not in _FILTERS:
        raise ValueError(f"name must be one of {', '.join(map(repr, _FILTERS))}; got {name!r}")
    return np.array(_FILTERS[name.lower()], dtype=dtype)


def stack(filters: Sequence, channels: int, dtype=np.float32) -> np.ndarray:
    """Stack 2-D filters into a ``(fh, fw, channels, k)`` layer kernel.

    Filter ``i`` becomes output channel ``i`` and is repeated across the ``channels`` input
    channels, as the tutorial builds its layer with ``np.repeat``: each output channel then
    applies the same 2-D filter to every input channel and sums the results.

    Parameters
    ----------
    filters : sequence of str or array_like, shape (fh, fw)
        Names for :func:`get` or 2-D arrays, all of one shape.
    channels : int
        Number of input channels ``c`` (3 for an RGB image).

    Returns
    -------
    ndarray, shape (fh, fw, channels, len(filters))

    Examples
    --------
    >>> layer = stack(["edge", "blur"], channels=3)
    >>> layer.shape
    (3, 3, 3, 2)
    >>> bool((layer[:, :, 2, 0] == get("edge")).all())
    True
    """
    arrays = [get(f, dtype) if isinstance(f, str) else np.asarray(f, dtype) for f in filters]
    if not arrays:
        raise ValueError("filters must name at least one filter; got an empty sequence")
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 2:
        raise ValueError(f"filters must be 2-D and of one shape; got shapes {[a.shape for a in arrays]}")
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
        raise ValueError(f"channels must be a positive integer; got {channels!r}")
    per_output = np.stack(arrays, axis=-1)  # (fh, fw, k)
    return np.repeat(per_output[:, :, None, :], channels, axis=2)


def depthwise(filters, channels: int, dtype=np.float32) -> np.ndarray:
    """A depthwise layer kernel: each 2-D filter applied to every channel on its own.

    Use it with ``conv2d(x, kernel, groups=channels)``: output channel ``j * k + i`` is
    filter ``i`` applied to input channel ``j`` alone (nothing is summed over channels), so
    a blur of an RGB photo is an RGB photo, as in an image editor. The outputs are grouped
    by input channel, as PyTorch's ``groups=C`` layer groups them; with one filter, output
    channel ``j`` is channel ``j`` filtered.

    Parameters
    ----------
    filters : str, array_like of shape (fh, fw), or a sequence of them
        Names for :func:`get` or 2-D arrays, all of one shape.
    channels : int
        Number of input channels ``c`` (3 for an RGB image).

    Returns
    -------
    ndarray, shape (fh, fw, 1, channels * len(filters))

    Examples
    --------
    >>> import numpy as np, convlayer
    >>> layer = depthwise("blur", channels=3)
    >>> layer.shape
    (3, 3, 1, 3)
    >>> red = np.zeros((4, 4, 3)); red[..., 0] = 225
    >>> convlayer.conv2d(red, layer, groups=3, pad_mode="edge")[1, 1].round(3).tolist()
    [225.0, 0.0, 0.0]
    """
    if isinstance(filters, str) or np.ndim(filters) == 2:
        filters = [filters]
    per_output = stack(filters, channels=1, dtype=dtype)  # (fh, fw, 1, k)
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
        raise ValueError(f"channels must be a positive integer; got {channels!r}")
    return np.tile(per_output, (1, 1, 1, channels))  # channel j's outputs are j * k .. j * k + k - 1
