"""Weight sharing and parameter counts: the sharing kinds, their kernel grids, num_params."""

from __future__ import annotations

from typing import NamedTuple

from .._args import as_int, as_pair
from .conv import IntPair


# Weight sharing and parameter counts. A layer's kernels form a grid of *banks* (rows, cols);
# each kind of sharing sizes that grid its own way, and convlayer.sharing says which bank
# each output pixel uses.

SHARING_KINDS = ("shared", "tiled", "regions", "unshared")


class BankGrid(NamedTuple):
    """How a kind of weight sharing names the grid of its kernel banks."""

    keyword: str  # the argument that gives the grid (rows, cols), as num_params takes it
    name: str  # what one cell of the grid is called, in messages
    symbols: str  # the grid's size in formulas


BANK_GRIDS = {
    "tiled": BankGrid("tiles", "tiles", "(T_h, T_w)"),
    "regions": BankGrid("regions", "regions", "(R_h, R_w)"),
    "unshared": BankGrid("output_size", "output grid", "(H', W')"),
}


def check_sharing(sharing: str) -> str:
    """Return ``sharing`` if it is one of :data:`SHARING_KINDS`; else raise naming them."""
    if sharing not in SHARING_KINDS:
        raise ValueError(f"sharing must be one of {', '.join(map(repr, SHARING_KINDS))}; got {sharing!r}")
    return sharing


def num_params(
    kernel_size: IntPair,
    in_channels: int,
    out_channels: int,
    *,
    bias: bool = True,
    groups: int = 1,
    sharing: str = "shared",
    output_size: "IntPair | None" = None,
    regions: "IntPair | None" = None,
    tiles: "IntPair | None" = None,
) -> int:
    """Number of trainable parameters of a 2D convolution-like layer.

    Parameters
    ----------
    kernel_size : int or (int, int)
        ``(Fh, Fw)``.
    in_channels, out_channels : int
        ``C`` and ``K``.
    bias : bool
        Whether the layer has biases.
    groups : int
        ``C`` and ``K`` must both divide by it; each filter sees ``C / groups`` channels.
    sharing : {'shared', 'tiled', 'regions', 'unshared'}
        How weights are shared across output pixels (:data:`SHARING_KINDS`); each kind but
        'shared' needs the keyword of its bank grid (:data:`BANK_GRIDS`).
    output_size : int or (int, int), optional
        ``(H', W')``; required for 'unshared'.
    regions : int or (int, int), optional
        ``(R_h, R_w)``; required for 'regions'. For 'tiled' it may give the tile period.
    tiles : int or (int, int), optional
        ``(T_h, T_w)`` for 'tiled'.

    Returns
    -------
    int
        shared: ``(Fh * Fw * C / groups + 1) * K`` (the ``+ 1`` only with bias);
        tiled, regions: that times ``T_h * T_w`` or ``R_h * R_w`` (one filter bank and one
        bias per tile or region); unshared: the weights times ``H' * W'`` plus a bias per
        output pixel and channel.

    Examples
    --------
    >>> num_params(3, 3, 2)
    56
    >>> num_params((7, 7), 3, 64)
    9472
    >>> num_params(3, 32, 32, groups=32)
    320
    >>> num_params(3, 3, 2, sharing="unshared", output_size=(4, 4))
    896
    """
    fh, fw = as_pair("kernel_size", kernel_size)
    c = as_int("in_channels", in_channels, minimum=0)
    k = as_int("out_channels", out_channels, minimum=0)
    groups = as_int("groups", groups, minimum=1)
    if c % groups or k % groups:
        raise ValueError(
            f"groups must divide both in_channels and out_channels; got groups={groups}, "
            f"in_channels={c}, out_channels={k}"
        )
    per_bank = fh * fw * (c // groups) * k + (k if bias else 0)
    return per_bank * _num_banks(sharing, output_size, regions, tiles)


def _num_banks(sharing, output_size, regions, tiles) -> int:
    """How many kernel banks a sharing kind has: the rows times the columns of its grid."""
    if check_sharing(sharing) == "shared":
        return 1
    given = {"output_size": output_size, "regions": regions,
             "tiles": tiles if tiles is not None else regions}
    keyword = BANK_GRIDS[sharing].keyword
    if given[keyword] is None:
        raise ValueError(f"sharing={sharing!r} needs {keyword}=(rows, cols); got None")
    rows, cols = as_pair(keyword, given[keyword])
    return rows * cols
