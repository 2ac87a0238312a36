"""The Dask side of ``convlayer filter``: images larger than memory, chunk by chunk.

With ``--chunks``, ``--scheduler``, ``--workers`` or a Zarr input, :mod:`.filter` reads
each image lazily here (TIFF and Zarr region by region, see
:func:`convlayer.dask.read_image`), filters it with the lazy :func:`convlayer.conv2d`, and
writes its exact output chunk by chunk with the writers here: a Zarr store
(``--save-zarr``) or a strip TIFF (``--save-tiff``, one row of chunks in memory at a time).
The display PNGs, ``--save-raw`` and ``--figure`` need the whole output in memory, so that
path does not write them. The writers take in-memory outputs too.

The command's safety rules hold: every option is checked before anything is written; a
Zarr store is written under a temporary name in the output folder and renamed at the end,
so an interrupted run leaves no partial store; a TIFF goes through :func:`atomic_write`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .. import images
from .._args import as_int, as_pair
from .._files import atomic_write, umask
from . import _parse


def wanted(args, inputs: "list[Path]") -> bool:
    """Whether the run takes the Dask path; check its options (before anything is written)."""
    lazy = any(v is not None for v in (args.chunks, args.scheduler, args.workers))
    lazy = lazy or any(images.is_zarr_store(path) for path in inputs)
    if args.scheduler is not None and args.workers is not None:
        raise ValueError("give --scheduler ADDRESS or --workers N, not both")
    if args.workers is not None:
        as_int("--workers", args.workers, minimum=1)
    if args.chunks is not None:
        args.chunks = as_pair("--chunks", _parse.pair("chunks", args.chunks))
    if lazy or args.save_zarr or args.save_tiff:
        _require_dask()
    if not lazy:
        return False
    for flag, given in (("--save-raw", args.save_raw), ("--figure", args.figure)):
        if given:
            raise ValueError(f"{flag} needs the whole output in memory; with --chunks, --scheduler, "
                             f"--workers or a Zarr input write --save-zarr or --save-tiff")
    if not (args.save_zarr or args.save_tiff):
        raise ValueError("with --chunks, --scheduler, --workers or a Zarr input the output is "
                         "written chunk by chunk: add --save-zarr and/or --save-tiff")
    return True


def _require_dask() -> None:
    import dask.array  # noqa: F401  (an ImportError reaches cli.main, which says what to do)
    import zarr  # noqa: F401


@contextlib.contextmanager
def scheduler(args):
    """Yield the ``dask.distributed`` client of ``--scheduler`` or ``--workers``, else None.

    Without either, Dask's threaded scheduler runs the work in this process.
    """
    if args.scheduler is None and args.workers is None:
        yield None
        return
    from distributed import Client, LocalCluster
    cluster = None
    if args.scheduler is not None:
        client = Client(args.scheduler, timeout="10s")
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def read_image(path: Path, chunks) -> tuple:
    """``(pixels, notes)`` as :func:`convlayer.images.read` returns them, the pixels a lazy
    ``(h, w, c)`` Dask array (and no notes)."""
    from .. import dask as lazy

    return lazy.read_image(path, chunks), []


# Writers: whole or not at all.


def write_zarr(target: Path, maps, client=None) -> Path:
    """Write an array (NumPy or Dask) as the Zarr store ``target``, chunk by chunk.

    The store is written under a temporary name next to ``target`` and renamed at the end;
    an existing ``target`` is replaced only then.
    """
    import dask.array as da

    array = _regular(maps if isinstance(maps, da.Array) else da.from_array(maps))
    temporary = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        os.chmod(temporary, 0o777 & ~umask())  # mkdtemp makes 0700; outputs are ordinary folders
        _compute(da.to_zarr(array, str(temporary), compute=False), client)
        _replace(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return target


def _regular(array):
    """Zarr needs equal chunks (the last may be smaller): rechunk only when they are not."""
    ragged = any(len(set(axis[:-1])) > 1 or axis[-1] > axis[0] for axis in array.chunks)
    return array.rechunk(array.chunksize) if ragged else array


def _compute(stored, client) -> None:
    """Run a lazy store with a progress bar on stderr (shown after one second)."""
    if client is None:
        import dask
        from dask.diagnostics import ProgressBar

        with ProgressBar(minimum=1.0, out=sys.stderr):
            dask.compute(stored)
        return
    from distributed import progress

    future = client.compute(stored)
    with contextlib.redirect_stdout(sys.stderr):  # distributed's text bar prints to stdout
        progress(future)
    future.result()


def _replace(temporary: Path, target: Path) -> None:
    """Rename ``temporary`` to ``target``; an existing target (folder or file) is moved aside first."""
    if not (target.exists() or target.is_symlink()):
        os.rename(temporary, target)
        return
    aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old")) / "old"
    os.rename(target, aside)
    try:
        os.rename(temporary, target)
    except BaseException:
        os.rename(aside, target)
        raise
    finally:
        shutil.rmtree(aside.parent, ignore_errors=True)


def write_tiff(target: Path, maps) -> Path:
    """Write an ``(h, w, k)`` array as a float TIFF, one row of chunks in memory at a time.

    Strips of about 1 MiB, uncompressed, BigTIFF above 2 GiB, so other readers (and
    :func:`convlayer.dask.read_image`) can read it region by region.
    """
    import dask.array as da

    array = maps if isinstance(maps, da.Array) else da.from_array(maps)
    return atomic_write(target, lambda temporary: _write_tiff_bands(temporary, array))


def _write_tiff_bands(temporary: str, array) -> None:
    import tifffile
    from tqdm import tqdm

    shape = array.shape if array.shape[2] > 1 else array.shape[:2]
    row_bytes = array.shape[1] * array.shape[2] * array.dtype.itemsize
    bands = tqdm(_bands(array), total=len(array.chunks[0]), unit="band", file=sys.stderr,
                 disable=True if len(array.chunks[0]) < 2 else None, leave=False)
    rows = (row if row.shape[1] > 1 else row[:, 0] for band in bands for row in band)
    tifffile.imwrite(temporary, rows, shape=shape, dtype=array.dtype, photometric="minisblack",
                     planarconfig="contig" if len(shape) == 3 else None,
                     rowsperstrip=max(1, 2**20 // max(row_bytes, 1)),
                     bigtiff=array.nbytes >= 2**31)


def _bands(array):
    """Each row of chunks, computed (in parallel across its columns) when it is needed.

    A ``dask.distributed`` client, when there is one, is Dask's default scheduler.
    """
    start = 0
    for height in array.chunks[0]:
        yield array[start:start + height].compute()
        start += height
