"""``convlayer filter``: run one convolutional layer over images and write what each filter sees.

For every input image it writes, into the output folder: one display image per output
channel (``NAME.CHANNEL.png``), a sidecar ``NAME.json`` stating the layer and how each
channel was scaled for display, and on request the exact float output (``NAME.npy``,
``--save-raw``) and a side-by-side figure (``NAME.figure.png``, ``--figure``). With
``--per-channel`` each filter is applied to every colour channel on its own (a depthwise
layer) and ``NAME.CHANNEL.png`` is a colour image in the input's bit depth.

Safety: nothing is written unless every check passes first (the layer, the inputs, the
output names); an existing output is never replaced without ``--overwrite``, and
``--skip-existing`` keeps the outputs of inputs already done; each file is written to a
temporary name and renamed, the sidecar last, so an interrupted run leaves complete files.
Exit codes: 0 all done, 1 some inputs skipped (each reported), 2 nothing done.

What a run reads and writes, and the checks before it writes anything, are in
:mod:`._plan`. Images larger than memory (``--chunks``, ``--scheduler``, ``--workers``, Zarr
inputs) go through the same pipeline, read lazily and written chunk by chunk by
:mod:`._stream`.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from .. import images
from .._files import atomic_write
from ..functional import conv2d, relu
from . import _stream
from ._layer import LayerSpec, build_layer, layer_title
from ._plan import check_outputs, collect_inputs, output_paths, run_settings

EXAMPLE = """examples:
  convlayer filter sample:coffee -k blur -k sharpen --per-channel --figure -o out/
  convlayer filter sample:chelsea -k edge -k blur --figure -o out/
  convlayer filter photos/ -k sobel_x -k sobel_y --relu --strides 2 -o out/
  convlayer filter photos/ -k gaussian --per-channel --skip-existing -o out/
  convlayer filter scan.tif --mode gray --kernel-file my_filter.npy --save-raw -o out/
  convlayer filter scene.tif -k edge -k blur --chunks 4096 --save-zarr -o out/
  convlayer filter scene.zarr -k edge --save-zarr --workers 2 -o out/

named kernels: edge, blur, gaussian, sharpen, sobel_x, sobel_y, emboss, identity
sample photos (shipped with scikit-image): sample:astronaut, sample:chelsea, sample:coffee,
  sample:rocket, sample:camera (gray)

outputs, for an input NAME.ext, in OUTDIR:
  NAME.KERNEL.png   each output channel, scaled for display (8-bit gray; the scaling is in
                    NAME.json); with --per-channel, the filtered image in colour, at the
                    input's bit depth, clipped to its range (.tif for a TIFF input)
  NAME.json         the layer, the shapes, and how each channel was scaled
  NAME.npy          the exact float output, (H', W', K)  (--save-raw)
  NAME.figure.png   input, every channel, the equalised edge map  (--figure)
  NAME.zarr         the exact float output as a Zarr store, written chunk by chunk  (--save-zarr)
  NAME.tif          the exact float output as a TIFF, written a row of chunks at a time  (--save-tiff)

larger than memory: --chunks, --scheduler, --workers or a Zarr input read each image
lazily (TIFF and Zarr region by region) and compute it chunk by chunk with Dask; then only
NAME.zarr, NAME.tif and NAME.json are written (the PNGs need the whole output in memory)

exit codes: 0 all done, 1 some inputs skipped (each is reported), 2 bad input, nothing done"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR",
                        help="image files (PNG, JPEG, TIFF, BMP, GIF, WebP), folders of them, or "
                             "sample:NAME, a photo shipped with scikit-image (sample:coffee)")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                        help="folder for the outputs (created if missing)")
    # -k and --kernel-file share one list, so output channels follow the command line's order.
    parser.add_argument("-k", "--kernel", action="append", dest="filters", default=[], metavar="NAME",
                        type=lambda name: ("name", name),
                        help="a named 3x3 filter, applied across all input channels; repeat it "
                             "for more output channels")
    parser.add_argument("--kernel-file", action="append", dest="filters", metavar="F",
                        type=lambda path: ("file", path),
                        help=".npy of shape (Fh, Fw), (Fh, Fw, C) or (Fh, Fw, C, K), or a "
                             "text/CSV matrix for one 2-D filter")
    parser.add_argument("--bias", nargs="+", type=float, metavar="B",
                        help="one value per filter, in order, e.g. --bias 1 0 (default 0)")
    parser.add_argument("--strides", default="1", metavar="S", help="e.g. 2 or 2x1 (default 1)")
    parser.add_argument("--padding", default="same", metavar="P",
                        help="same, same_lower, valid, full, P, 'P_h,P_w' or "
                             "'top,bottom,left,right' (default same)")
    parser.add_argument("--pad-mode", metavar="M",
                        help="constant, reflect, symmetric, edge or wrap, with NumPy's meanings, or "
                             "PyTorch's zeros, replicate, circular (default constant: zeros; with "
                             "--per-channel edge, so borders do not darken, as in an image editor)")
    parser.add_argument("--dilation", default="1", metavar="D", help="e.g. 2 (default 1)")
    parser.add_argument("--flip", action="store_true",
                        help="true convolution: rotate each kernel by 180 degrees")
    parser.add_argument("--relu", action="store_true", help="apply ReLU to the output")
    parser.add_argument("--mode", choices=("rgb", "gray"), default="rgb",
                        help="rgb: the layer sees the colour channels; a gray image stays one "
                             "channel (repeated over three only for a kernel file of 3 channels); "
                             "gray: luminance first (default rgb). A note says what was done to "
                             "each gray, alpha, palette or 16-bit image")
    parser.add_argument("--per-channel", action="store_true",
                        help="apply each filter to every colour channel on its own (depthwise, "
                             "conv2d groups=C) and write a colour image per filter, in the input's "
                             "colours and bit depth, clipped to its range as an image editor does")
    parser.add_argument("--scale", choices=images.SCALES,
                        help="display scaling of the PNGs: percentile (the 2nd..98th, a signed "
                             "map symmetric about 0 = mid-gray), minmax (the extremes) or none "
                             "(the values, clipped to 0..255); the default is percentile, and none "
                             "with --per-channel. The exact scaling is in NAME.json; --save-raw "
                             "keeps the values")
    parser.add_argument("--save-raw", action="store_true", help="also write the float output as NAME.npy")
    parser.add_argument("--figure", action="store_true", help="also write a side-by-side figure NAME.figure.png")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    existing.add_argument("--skip-existing", action="store_true",
                          help="keep the outputs of inputs already done (their sidecar NAME.json, "
                               "written last, exists with the same settings) and do the rest: rerun "
                               "an interrupted folder run with it")
    large = parser.add_argument_group("images larger than memory (Dask: pip install 'convlayer[dask]')")
    large.add_argument("--chunks", metavar="SIZE",
                       help="compute each image lazily in chunks of SIZE or HxW pixels (default: "
                            "a Zarr input's own chunks, else 4096)")
    large.add_argument("--save-zarr", action="store_true",
                       help="write the exact float output as the Zarr store NAME.zarr")
    large.add_argument("--save-tiff", action="store_true",
                       help="write the exact float output as NAME.tif (BigTIFF when large; one "
                            "row of chunks is in memory at a time: use smaller --chunks for "
                            "very wide images)")
    large.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on this dask.distributed scheduler, e.g. tcp://10.0.0.5:8786 "
                            "(inputs and OUTDIR must be on a filesystem its workers share)")
    large.add_argument("--workers", type=int, metavar="N",
                       help="start a local Dask cluster of N worker processes for the run")


def run(args: argparse.Namespace) -> int:
    layer = build_layer(args)
    inputs = collect_inputs(args.inputs)
    lazy = _stream.wanted(args, inputs)
    outdir = Path(args.output)
    plans = {path: output_paths(path, outdir, layer, args, lazy=lazy) for path in inputs}
    kept = check_outputs(plans, outdir, overwrite=args.overwrite,
                          settings=run_settings(args) if args.skip_existing else None)
    with _stream.scheduler(args) as client:
        one = functools.partial(filter_one, lazy=lazy, client=client)
        done, skipped, written = _filter_all(plans, layer, args, one, kept)
    _say_what_was_written(written, done, len(kept), outdir)
    if skipped and not done and not kept:
        return 2
    return 1 if skipped else 0


def _say_what_was_written(written: list, done: int, kept: int, outdir: Path) -> None:
    """One line on stdout: the files written (named when few) and the inputs kept."""
    images_done = f"{done} image{'s' * (done != 1)}"
    line = f"wrote {len(written)} file{'s' * (len(written) != 1)} for {images_done} in {outdir.resolve()}"
    if 0 < len(written) <= 6:
        line += f": {', '.join(path.name for path in written)}"
    if kept:
        line += f"; kept the outputs of {kept} image{'s' * (kept != 1)} already done (--skip-existing)"
    print(line)


def _filter_all(plans: dict, layer: LayerSpec, args, one, kept: set) -> tuple[int, int, list]:
    """Filter every input with ``one`` (:func:`filter_one`) but those ``kept``; return (done,
    skipped, the files written).

    A bad image is reported and skipped. The progress bar counts the kept inputs too, so a
    resumed run shows where it stands in the whole folder.
    """
    from tqdm import tqdm

    done = skipped = 0
    written = []
    bar = tqdm(plans.items(), unit="img", disable=True if len(plans) < 2 else None, file=sys.stderr)
    for path, planned in bar:
        if path in kept:
            bar.set_postfix_str(f"kept {len(kept)}", refresh=False)
            continue
        try:
            notes = one(path, planned, layer, args)
        except MemoryError:
            bar.write(f"convlayer filter: skipped {path}: not enough memory (try --chunks, which "
                      f"computes it piece by piece)", file=sys.stderr)
            skipped += 1
            continue
        except (images.ImageError, ValueError, TypeError) as error:
            bar.write(f"convlayer filter: skipped {error}" if str(path) in str(error)
                      else f"convlayer filter: skipped {path}: {error}", file=sys.stderr)
            skipped += 1
            continue
        for note in notes:
            bar.write(f"convlayer filter: note: {note}", file=sys.stderr)
        written += list(planned.values())
        done += 1
    return done, skipped, written


def filter_one(path: Path, planned: dict, layer: LayerSpec, args, *, lazy: bool = False,
               client=None) -> list[str]:
    """Read, filter and write the outputs of one image; return notes for the user.

    With ``lazy`` the image is a Dask array, read and computed chunk by chunk (by
    ``client``, a ``dask.distributed`` client, when given) as its Zarr and TIFF outputs are
    written; ``planned`` then holds no PNGs, raw output or figure. The sidecar is written
    last, so that it exists means every output of the image does.
    """
    stored, notes = _stream.read_image(path, args.chunks) if lazy else images.read(path)
    pixels, more = images.prepare(stored, args.mode, repeat_gray=layer.fixed_channels is not None)
    notes += [f"{path}: {note}" for note in more]
    layer = layer.for_channels(pixels.shape[2])
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is one note, not NumPy's warnings
        maps = conv2d(pixels, layer.kernel, layer.conv_bias, **layer.options)
        if layer.relu:
            maps = relu(maps)
    if not lazy:  # a lazy output is not computed until it is written
        notes += _overflow_notes(path, maps)
    Path(args.output).mkdir(parents=True, exist_ok=True)
    if lazy:
        channels = _lazy_channels(layer)
    elif layer.per_channel:
        channels = _write_colour(planned, maps, layer, _editor_dtype(stored), args.scale or "none")
    else:
        channels = _write_channels(planned, maps, layer, args.scale or "percentile")
    if "raw" in planned:
        atomic_write(planned["raw"], lambda temporary: _save_npy(temporary, maps))
    if "figure" in planned:
        _write_figure(planned, pixels, maps, layer, path)
    if "zarr" in planned:
        _stream.write_zarr(planned["zarr"], maps, client)
    if "tiff" in planned:
        _stream.write_tiff(planned["tiff"], maps)
    extra = _lazy_outputs(planned, maps) if lazy else {"raw": _name(planned, "raw")}
    extra["settings"] = run_settings(args)
    _write_sidecar(planned["sidecar"], path, stored, pixels, maps, layer, channels, notes, extra)
    return notes


def _write_channels(planned: dict, maps: np.ndarray, layer: LayerSpec, scale: str) -> list[dict]:
    """Write each output channel as a display PNG; return the sidecar's channel records."""
    channels = []
    for index, name in enumerate(layer.names):
        shown, scaling = images.display_scaling(maps[..., index], scale)
        images.write_png(planned[f"channel:{name}"], shown)
        channels.append({"name": name, "file": planned[f"channel:{name}"].name, **scaling})
    return channels


def _editor_dtype(stored) -> np.dtype:
    """The type a per-channel result is written in: the input's, float32 for a float input."""
    return np.dtype(stored.dtype) if np.dtype(stored.dtype).kind in "ui" else np.dtype(np.float32)


def _write_colour(planned: dict, maps: np.ndarray, layer: LayerSpec, dtype, scale: str) -> list[dict]:
    """Write each filter's per-channel result as an image of ``dtype``; return the records."""
    channels = []
    for index, name in enumerate(layer.names):
        pixels, record = images.editor_pixels(layer.filter_maps(maps, index), dtype, scale)
        images.write_image(planned[f"channel:{name}"], pixels)
        channels.append({"name": name, "file": planned[f"channel:{name}"].name, "dtype": str(pixels.dtype),
                         "per_channel": True, **record})
    return channels


def _lazy_channels(layer: LayerSpec) -> list[dict]:
    """The sidecar's channel records when there are no PNGs: each channel's index in the output."""
    return [{"name": name, "index": index} for index, name in enumerate(layer.names)]


def _lazy_outputs(planned: dict, maps) -> dict:
    """The sidecar's record of a lazy run: the output's chunks and the files written."""
    return {"chunks": [list(axis) for axis in maps.chunks],
            "zarr": _name(planned, "zarr"), "tiff": _name(planned, "tiff")}


def _name(planned: dict, output: str) -> "str | None":
    return planned[output].name if output in planned else None


def _overflow_notes(path: Path, maps: np.ndarray) -> list[str]:
    """A note when the output holds NaN or infinity: from the image, or beyond its dtype's range."""
    bad = maps.size - int(np.count_nonzero(np.isfinite(maps)))
    if not bad:
        return []
    return [f"{path}: {bad:,} output values are NaN or infinite (NaN or inf in the image, or kernel, "
            f"bias and pixel values whose results are beyond the range of {maps.dtype})"]


def _save_npy(temporary: str, array: np.ndarray) -> None:
    with open(temporary, "wb") as handle:  # a file object: np.save must not append '.npy'
        np.save(handle, array)


def _write_sidecar(target: Path, path, stored, pixels, maps, layer, channels, notes, extra) -> None:
    """The JSON sidecar of one input: input, layer, output, channels, then ``extra``."""
    record = {
        "input": str(path),
        "input_shape": list(stored.shape),
        "input_dtype": str(stored.dtype),
        "layer_input_shape": list(pixels.shape),
        "layer": layer.describe(),
        "output_shape": list(maps.shape),
        "output_dtype": str(maps.dtype),
        "channels": channels,
        **extra,
        "notes": notes,
    }
    text = json.dumps(record, indent=2) + "\n"
    atomic_write(target, lambda temporary: Path(temporary).write_text(text))


def _write_figure(planned: dict, pixels: np.ndarray, maps: np.ndarray, layer: LayerSpec, path: Path) -> None:
    """The input beside each filter's result: colour images per channel, else maps with colour bars."""
    from ..explain import plot

    # The title shows the file name as the fonts can: a name in a script they lack (CJK, say)
    # gets empty boxes, not matplotlib's "Glyph ... missing from font(s)" warning per letter.
    # NaN or inf in the maps (already a note) draw as they can, without NumPy's warnings.
    title = f"{path.name}: {layer_title(layer, pixels.shape, maps.shape)}"
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        if layer.per_channel:
            written = [images.read(planned[f"channel:{name}"])[0] for name in layer.names]
            figure = plot.images_figure([pixels] + written, ["input"] + layer.titles(), suptitle=title)
        else:
            extra = None
            if "edge" in layer.names:
                extra = (plot.equalised(maps[..., layer.names.index("edge")]), "edge map, CLAHE-equalised")
            figure = plot.layer_figure(plot.for_display(pixels), maps, layer.titles(), extra=extra,
                                       suptitle=title)
        atomic_write(planned["figure"], lambda temporary: figure.savefig(temporary, format="png", dpi=110))
