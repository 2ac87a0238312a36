"""``convlayer explain``: draw what a layer does, with the user's own numbers.

Without an image it draws the layer's geometry (:func:`convlayer.explain.sliding_figure`,
the GIF of :func:`~convlayer.explain.write_animation`, or
:func:`~convlayer.explain.channels_figure`); with an image, the arithmetic of one output
pixel (:func:`~convlayer.explain.pixel_figure`). Every argument is checked before anything
is drawn, and the file is written whole or not at all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import kernels, shapes
from .._args import as_pair
from .._files import atomic_write
from ..explain.pixel import check_at
from . import _common, _parse

EXAMPLE = """examples:
  convlayer explain --input 7x7 --kernel-size 3x3 --strides 2 --padding same -o stride.png
  convlayer explain --input 6x6 --kernel-size 3 --strides 2 --animate -o slide.gif
  convlayer explain --input 5x5 --kernel-size 3 --channels 3 --filters 2 --strides 2 -o channels.png
  convlayer explain --input 7x7 --kernel-size 3 --dilation 2 -o dilation.png
  convlayer explain --input 6x6 --kernel-size 3 --sharing tiled --banks 2x2 -o tiled.png
  convlayer explain sample:astronaut -k edge --at 120,200 --bias 1 -o pixel.png
  convlayer explain --transpose --input 3x3 --kernel-size 3 --strides 2 -o transposed.png
  convlayer explain --transpose --input 4x4 --kernel-size 3 --strides 2 --padding 1 --output-padding 1 -o up.png
  convlayer explain model.onnx
  convlayer explain model.onnx --input 8x32x32x3

without IMAGE: the padded input (zeros on each side counted), the kernel at a few output
positions, the output grid and the output-size formula with your numbers; --animate
slides the window one output position per frame; --channels/--filters draws each output
channel as the sum over input channels plus a bias, with the parameter count; --sharing
colours each output pixel by the kernel bank it uses; --transpose draws the transposed
convolution: the input, the same input stuffed with zeros and padded (the kernel slides over
it at stride 1), and the output with each pixel's stamp and the number of stamps overlapping
on every output pixel (the checkerboard when the kernel is not a multiple of the stride).
with MODEL.onnx (--input: its input shape in its own layout, if it declares none): per layer the op, output shape, kernel, strides, dilation, groups, the
padding on each side and its rule, parameters, multiply-adds, receptive field and jump, with
asymmetric padding flagged (needs convlayer[onnx]).
with IMAGE: for output pixel --at ROW,COL, the input patch, the kernel, their products and
the sum plus bias: the same value convlayer.conv2d computes there."""

FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", nargs="?", metavar="IMAGE",
                        help="an image (PNG, JPEG, TIFF, ...) whose real values to show at --at, or "
                             "sample:NAME, a photo shipped with scikit-image (sample:astronaut)")
    parser.add_argument("--input", metavar="HxW[xC]",
                        help="input height and width, e.g. 7x7, or HxWxC (without IMAGE)")
    parser.add_argument("--kernel-size", metavar="FhxFw", help="kernel size, e.g. 3x3 or 3 (default 3x3)")
    parser.add_argument("-k", "--kernel", metavar="NAME",
                        help=f"a named filter: {', '.join(kernels.names())} (with IMAGE, default edge; "
                             "without, its size is drawn)")
    parser.add_argument("--strides", default="1", metavar="S", help="e.g. 2 or 2x1 (default 1)")
    parser.add_argument("--padding", default="same", metavar="P",
                        help="same, same_lower, valid, full, P, 'P_h,P_w' or 'top,bottom,left,right' "
                             "(default same)")
    parser.add_argument("--dilation", default="1", metavar="D", help="e.g. 2 (default 1)")
    parser.add_argument("--channels", metavar="C", help="input channels: draw each with its kernel slice")
    parser.add_argument("--filters", metavar="K", help="filters, i.e. output channels (default 1)")
    parser.add_argument("--sharing", choices=shapes.SHARING_KINDS,
                        help="colour each output pixel by the kernel bank it uses")
    parser.add_argument("--banks", metavar="RxC",
                        help="kernel banks for --sharing tiled (the tile period) or regions (the grid)")
    parser.add_argument("--transpose", action="store_true",
                        help="draw the transposed convolution (conv_transpose2d) of these numbers")
    parser.add_argument("--output-padding", metavar="P", help="with --transpose: e.g. 1 or 1x0")
    parser.add_argument("--output-shape", metavar="HxW", help="with --transpose: the output size")
    parser.add_argument("--animate", action="store_true", help="write a GIF, one frame per output position")
    parser.add_argument("--max-frames", default="64", metavar="N",
                        help="with --animate, at most N frames: larger outputs skip positions (default 64)")
    parser.add_argument("--at", metavar="ROW,COL", help="with IMAGE: the output pixel (default the centre)")
    parser.add_argument("--bias", nargs="+", type=float, metavar="B",
                        help="with IMAGE: the bias, one value per filter as in filter (here one; default 0)")
    parser.add_argument("--mode", choices=("rgb", "gray"),
                        help="with IMAGE: rgb (3 channels) or gray (luminance) (default rgb)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="where to write: .png, .pdf, .svg or .jpg, or .gif with --animate "
                             "(default convlayer-explain.png or .gif)")
    _common.add_overwrite(parser)


def run(args: argparse.Namespace) -> int:
    if args.image is not None and args.image.lower().endswith(".onnx"):
        return _explain_model(args)
    _kernel_words(args)
    _check_combinations(args)
    output = _output_path(args)
    if args.image is not None:
        return _explain_image(args, output)
    if args.transpose:
        return _explain_transpose(args, output)
    layer = _layer(args)
    from .. import explain

    if args.animate:
        (max_frames,) = _ints("--max-frames", args.max_frames, (1,), "a positive integer", minimum=1)
        _common.check_replace("explain", [output], args.overwrite)
        count = explain.write_animation(output, layer["input_hw"], layer["kernel_hw"], max_frames=max_frames,
                                        **layer["options"])
        print(f"wrote {output.resolve()} ({count} frames)")
        return 0
    if args.sharing is None and (layer["channels"] > 1 or layer["filters"] > 1):
        figure = explain.channels_figure(layer["input_hw"], layer["kernel_hw"], channels=layer["channels"],
                                         filters=layer["filters"], **layer["options"])
        text = explain.channel_lines(layer["notes"])
    else:
        figure = explain.sliding_figure(layer["input_hw"], layer["kernel_hw"], sharing=args.sharing,
                                        banks=layer["banks"], channels=layer["channels"],
                                        filters=layer["filters"], **layer["options"])
        text = explain.formula_lines(layer["notes"], with_params=args.sharing is not None)
    _save(figure, output, args.overwrite)
    print("\n".join(text))
    print(f"wrote {output.resolve()}")
    return 0


def _explain_model(args) -> int:
    """Print the per-layer table of an ONNX model (``--input``: its input shape, as it declares it)."""
    import convlayer.onnx

    shape = None
    if args.input is not None:
        shape = _ints("--input", args.input, (4,), "the model's input shape, e.g. 1x3x224x224", minimum=1)
    print(convlayer.onnx.load(args.image).summary(shape, show=False))
    return 0


def _kernel_words(args) -> None:
    """-k/--kernel names a filter, --kernel-size gives a size; -k 3x3 (a size) is the old spelling."""
    word = args.kernel.strip().lower() if args.kernel is not None else None
    if word is None or word in kernels.names():
        args.kernel = word
        return
    try:
        _parse.ints("kernel-size", word, (1, 2))
    except ValueError:
        raise ValueError(f"-k/--kernel must name a filter ({', '.join(kernels.names())}) or, deprecated, "
                         f"give a size F or FhxFw (use --kernel-size); got {args.kernel!r}") from None
    if args.image is not None:
        raise ValueError(f"-k {args.kernel}: with IMAGE give a named filter: {', '.join(kernels.names())}")
    if args.kernel_size is not None:
        raise ValueError(f"give the size once: --kernel-size {args.kernel_size} or -k {args.kernel}")
    _common.deprecated_spelling("explain", f"-k/--kernel {args.kernel} (a size)", f"--kernel-size {args.kernel}")
    args.kernel_size, args.kernel = args.kernel, None


def _check_combinations(args) -> None:
    """Options that belong to one kind of picture are refused with the other."""
    if args.image is None and not args.transpose:
        for option, value in (("--output-padding", args.output_padding), ("--output-shape", args.output_shape)):
            if value is not None:
                raise ValueError(f"{option} needs --transpose")
    if args.transpose:
        given = [option for option, value in (("IMAGE", args.image), ("--channels", args.channels),
                                              ("--filters", args.filters), ("--sharing", args.sharing),
                                              ("--animate", args.animate or None)) if value is not None]
        if given:
            raise ValueError(f"--transpose draws one channel's geometry; leave out {', '.join(given)}")
    if args.image is not None:
        if args.input is not None:
            raise ValueError("give IMAGE or --input, not both: the image's size is its own")
        for option, value in (("--channels", args.channels), ("--filters", args.filters),
                              ("--sharing", args.sharing), ("--banks", args.banks),
                              ("--kernel-size", args.kernel_size)):
            if value is not None:
                raise ValueError(f"{option} draws a layer's geometry; it does not go with IMAGE")
        if args.animate:
            raise ValueError("--animate draws a layer's geometry; it does not go with IMAGE")
        return
    if args.input is None:
        raise ValueError("give --input HxW (e.g. --input 7x7) to draw a layer, or an IMAGE to see its values")
    for option, value in (("--at", args.at), ("--bias", args.bias), ("--mode", args.mode)):
        if value is not None:
            raise ValueError(f"{option} needs an IMAGE")
    if args.animate and (args.sharing or args.channels or args.filters):
        raise ValueError("--animate draws one window at a time; leave out --sharing, --channels and "
                         "--filters")
    if args.banks is not None and args.sharing not in ("tiled", "regions"):
        given = f"--sharing {args.sharing}" if args.sharing else "no --sharing"
        raise ValueError(f"--banks goes with --sharing tiled or regions; got {given}")
    if args.sharing in ("tiled", "regions") and args.banks is None:
        raise ValueError(f"--sharing {args.sharing} needs --banks RxC, e.g. --banks 2x2")


def _output_path(args) -> Path:
    default = "convlayer-explain.gif" if args.animate else "convlayer-explain.png"
    output = Path(args.output or default)
    suffix = output.suffix.lower()
    if args.animate and suffix != ".gif":
        raise ValueError(f"-o {output}: --animate writes a GIF; name it FILE.gif")
    if not args.animate and suffix not in FIGURE_SUFFIXES:
        hint = " (a GIF needs --animate)" if suffix == ".gif" else ""
        raise ValueError(f"-o {output}: the file must end in {', '.join(FIGURE_SUFFIXES)}{hint}")
    return _common.check_output_file(output)


def _layer(args) -> dict:
    """The layer the command line describes, checked in full by explain.annotations."""
    from .. import explain

    input_hw = _ints("--input", args.input, (2, 3), "HxW or HxWxC, e.g. 7x7", minimum=1)
    channels = _count("--channels", args.channels)
    if len(input_hw) == 3:
        if args.channels is not None and channels != input_hw[2]:
            raise ValueError(f"--input {args.input} has {input_hw[2]} channels but --channels is {channels}")
        input_hw, channels = input_hw[:2], input_hw[2]
    if args.kernel is not None and args.kernel_size is not None:
        raise ValueError(f"give -k {args.kernel} or --kernel-size {args.kernel_size}, not both")
    if args.kernel is not None:  # its size: the drawing shows geometry, not values
        kernel_hw = kernels.get(args.kernel).shape
        print(f"convlayer explain: note: -k {args.kernel} is a {kernel_hw[0]}x{kernel_hw[1]} filter; without "
              f"an IMAGE the drawing shows its geometry, not its values", file=sys.stderr)
    else:
        kernel_hw = _parse.ints("kernel-size", args.kernel_size or "3x3", (1, 2))
        kernel_hw = kernel_hw * 2 if len(kernel_hw) == 1 else kernel_hw
    options = {"strides": _parse.pair("strides", args.strides), "padding": _parse.padding(args.padding),
               "dilation": _parse.pair("dilation", args.dilation)}
    banks = None
    if args.banks is not None:
        banks = as_pair("banks", _ints("--banks", args.banks, (1, 2), "R or RxC, e.g. 2x2", minimum=1))
    filters = _count("--filters", args.filters)
    if banks is not None:
        geom = shapes.conv_geometry(input_hw + (1,), kernel_hw + (1, 1), **options)
        _parse.check_banks(args.banks, banks, (geom.out_h, geom.out_w))
    notes = explain.annotations(input_hw, kernel_hw, channels=channels, filters=filters,
                                sharing=args.sharing or "shared", banks=banks, **options)
    return {"input_hw": input_hw, "kernel_hw": kernel_hw, "options": options, "channels": channels,
            "filters": filters, "banks": banks, "notes": notes}


def _explain_transpose(args, output: Path) -> int:
    """The transposed convolution of --input, --kernel-size (or a named filter's size),
    --strides, --padding and the rest."""
    from ..explain import transpose

    input_hw = _ints("--input", args.input, (2,), "HxW, e.g. 3x3", minimum=1)
    if args.kernel is not None:  # a named filter: the drawing shows its size
        kernel_hw = kernels.get(args.kernel).shape
    else:
        kernel_hw = _parse.ints("kernel-size", args.kernel_size or "3x3", (1, 2))
    kernel_hw = kernel_hw * 2 if len(kernel_hw) == 1 else kernel_hw
    extra = None if args.output_padding is None else _parse.pair("output-padding", args.output_padding)
    size = None if args.output_shape is None else _parse.ints("output-shape", args.output_shape, (2,))
    options = dict(strides=_parse.pair("strides", args.strides), padding=_parse.padding(args.padding),
                   output_padding=extra, output_shape=size, dilation=_parse.pair("dilation", args.dilation))
    geom = shapes.transpose_geometry(input_hw + (1,), kernel_hw + (1, 1), options["strides"], options["padding"],
                                     extra, size, options["dilation"])  # every argument checked first
    figure = transpose.transpose_figure(input_hw, kernel_hw, **options)
    _save(figure, output, args.overwrite)
    print("\n".join(transpose.transpose_lines(geom, options["padding"], extra, size is not None)))
    print(f"wrote {output.resolve()}")
    return 0


def _count(option: str, text) -> int:
    return 1 if text is None else _ints(option, text, (1,), "a positive integer", minimum=1)[0]


def _ints(option: str, text: str, counts: tuple, form: str, *, minimum: int) -> tuple:
    """'7x7' or '10,20' as ints, so many of them, each at least ``minimum``."""
    try:
        values = _parse.ints(option.lstrip("-"), text, counts)
    except ValueError:
        values = ()
    if not values or min(values) < minimum:
        raise ValueError(f"{option} must be {form}; got {text!r}")
    return values


def _explain_image(args, output: Path) -> int:
    """The arithmetic of one output pixel of a real image."""
    from .. import explain, images
    from ..explain import plot

    name = args.kernel or "edge"
    bias = _one_bias(args.bias)
    options = {"strides": _parse.pair("strides", args.strides), "padding": _parse.padding(args.padding),
               "dilation": _parse.pair("dilation", args.dilation)}
    at = None
    if args.at is not None:
        at = _ints("--at", args.at, (2,), "ROW,COL of an output pixel, e.g. 10,20", minimum=0)
    stored, notes = images.read(args.image)
    pixels, more = images.prepare(stored, args.mode or "rgb", repeat_gray=False)  # as filter does
    kernel = kernels.stack([name], pixels.shape[2])[..., 0]  # (3, 3, C): one filter over the channels
    geom = shapes.conv_geometry(pixels.shape, kernel.shape, **options)
    at = (geom.out_h // 2, geom.out_w // 2) if at is None else check_at(at, (geom.out_h, geom.out_w), "--at")
    step = explain.pixel_arithmetic(pixels, kernel, bias, at=at, **options)
    channel_names = ["R", "G", "B"] if pixels.shape[2] == 3 else ["gray"]
    figure = explain.pixel_figure(step, plot.for_display(pixels), name=name, channel_names=channel_names)
    _save(figure, output, args.overwrite)
    for note in notes + more:
        print(f"convlayer explain: note: {note}", file=sys.stderr)
    print(explain.sum_line(step))
    print(f"wrote {output.resolve()}")
    return 0


def _one_bias(values) -> float:
    """--bias takes one value per filter, as in ``convlayer filter``; here there is one filter."""
    if values is None:
        return 0.0
    if len(values) != 1:
        raise ValueError(f"--bias needs one value per output channel (1); got {len(values)}: {values}")
    return values[0]


def _save(figure, output: Path, overwrite: bool) -> None:
    """Write ``figure`` to ``output`` whole or not at all; the replace warning comes here, once
    every argument has been checked and the figure drawn (not before an error)."""
    _common.check_replace("explain", [output], overwrite)
    fmt = output.suffix.lstrip(".").lower()
    atomic_write(output, lambda temporary: figure.savefig(temporary, format=fmt, dpi=100))
