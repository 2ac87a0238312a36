"""``convlayer shape``: a layer's output shape, padding and parameter count, explained.

Every number printed comes from :mod:`convlayer.shapes` and every formula from
:mod:`convlayer.explain.formulas` (the text ``convlayer explain`` draws); this module lays
them out.
"""

from __future__ import annotations

import argparse
import sys

from .. import shapes
from ..explain import formulas
from . import _parse

EXAMPLE = """examples:
  convlayer shape --input 224x224x3 --kernel-size 7x7 --filters 64 --strides 2 --padding same
  convlayer shape --input 8x8x1 --kernel-size 3 --filters 16 --sharing --banks 2x2
  convlayer shape --input 8x32x32x16 --kernel-size 3 --filters 32 --padding valid --dilation 2
  convlayer shape --input 6x6 --kernel-size 3 --strides 2 --padding 0,1,0,1
  convlayer shape --input 3x224x224 --data-format channels_first --kernel-size 7 --filters 64 --strides 2 --padding 3
  convlayer shape --transpose --input 16x16x256 --kernel-size 4 --filters 128 --strides 2 --padding 1
  convlayer shape --transpose --input 64x64x64 --kernel-size 3 --filters 32 --strides 2 --padding 1 --output-padding 1"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, metavar="SHAPE",
                        help="input shape: HxW, HxWxC or NxHxWxC (channels last, the default), or "
                             "CxHxW or NxCxHxW with --data-format channels_first")
    parser.add_argument("--data-format", choices=("channels_last", "channels_first"),
                        help="how --input is laid out: channels_last (HxWxC, TensorFlow's) or "
                             "channels_first (CxHxW, PyTorch's) (default channels_last, with a warning "
                             "when the shape looks channels-first)")
    # --kernel is the contract's spelling (SPEC.md: shape --kernel 7x7): an alias, not deprecated
    parser.add_argument("--kernel-size", "--kernel", dest="kernel_size", metavar="FhxFw",
                        help="kernel height and width, e.g. 3x3 or 3 (required; --kernel works too)")
    parser.add_argument("--filters", default="1", metavar="K", help="output channels (default 1)")
    parser.add_argument("--strides", default="1", metavar="S", help="stride, e.g. 2 or 2x1 (default 1)")
    parser.add_argument("--padding", default="same", metavar="P",
                        help="same, same_lower, valid, full, an int, 'p_h,p_w' or "
                             "'top,bottom,left,right' (default same)")
    parser.add_argument("--dilation", default="1", metavar="D", help="dilation, e.g. 2 or 2x1 (default 1)")
    parser.add_argument("--groups", default="1", metavar="G", help="channel groups (default 1)")
    parser.add_argument("--no-bias", action="store_true", help="the layer has no bias")
    parser.add_argument("--sharing", action="store_true",
                        help="also compare the parameter counts of shared, tiled, region-shared and "
                             "unshared (locally-connected) weights")
    parser.add_argument("--banks", metavar="RxC",
                        help="with --sharing: the tiles or regions, at most the output grid (default 2x2)")
    parser.add_argument("--transpose", action="store_true",
                        help="the transposed convolution (conv_transpose2d, Conv2DTranspose): --filters "
                             "is its output channels, --padding crops")
    parser.add_argument("--output-padding", default=None, metavar="P",
                        help="with --transpose: rows and columns added at the bottom and right, e.g. 1 or 1x0")
    parser.add_argument("--output-shape", default=None, metavar="HxW",
                        help="with --transpose: the output size, any one conv2d maps back to the input's")


def run(args: argparse.Namespace) -> int:
    if args.banks is not None and not args.sharing:
        raise ValueError(f"--banks {args.banks} goes with --sharing (the parameter counts it compares); "
                         f"add --sharing or leave out --banks")
    dims = _parse.ints("input", args.input, (2, 3, 4))
    channels_first = args.data_format == "channels_first"
    if args.data_format is None and _parse.looks_channels_first(dims):
        print(f"convlayer shape: warning: --input {args.input} is read channels-last, as H={dims[-3]}, "
              f"W={dims[-2]}, C={dims[-1]}; for PyTorch's CxHxW give --data-format channels_first",
              file=sys.stderr)
    if channels_first and len(dims) > 2:  # CxHxW or NxCxHxW, read as channels-last from here on
        dims = dims[:-3] + dims[-2:] + dims[-3:-2]
    input_shape = dims + (1,) if len(dims) == 2 else dims  # HxW is one channel
    c = input_shape[-1]
    if args.kernel_size is None:
        raise ValueError("--kernel-size is required, e.g. --kernel-size 3x3")
    kernel = _parse.ints("kernel-size", args.kernel_size, (1, 2))
    fh, fw = kernel * 2 if len(kernel) == 1 else kernel
    (k,), (groups,) = _parse.ints("filters", args.filters, (1,)), _parse.ints("groups", args.groups, (1,))
    strides, dilation = _parse.pair("strides", args.strides), _parse.pair("dilation", args.dilation)
    padding = _parse.padding(args.padding)
    if args.transpose:
        print(_transpose(args, input_shape, (fh, fw), k, groups, strides, padding, dilation))
        return 0
    kernel_shape = (fh, fw, c // max(groups, 1), k)
    geom = shapes.conv_geometry(input_shape, kernel_shape, strides, padding, dilation, groups=groups)
    banks = None
    if args.sharing:
        banks = _parse.ints("banks", args.banks or "2x2", (1, 2))
        banks = banks * (3 - len(banks))
        _parse.check_banks(args.banks or "2x2", banks, (geom.out_h, geom.out_w))
    print(report(geom, padding, bias=not args.no_bias, channels_first=channels_first))
    if banks is not None:
        print()
        print(sharing_report(geom, banks, bias=not args.no_bias))
    return 0


def report(geom: shapes.ConvGeometry, padding, *, bias: bool = True, channels_first: bool = False) -> str:
    """The text ``convlayer shape`` prints for a resolved geometry (with ``channels_first``,
    the input, kernel and output in PyTorch's layouts)."""
    word = padding if isinstance(padding, str) else "explicit"
    lines = _head(geom, word, _extras(geom), channels_first)
    for axis in (0, 1):
        lines += _axis_lines(geom, axis, word)
    lines += ["", _params_line(geom, bias)]
    return "\n".join(lines)


def _axis_lines(geom: shapes.ConvGeometry, axis: int, word: str) -> list[str]:
    """Output size and padding of one axis, under its name in the left column."""
    size, kernel = (geom.h, geom.fh) if axis == 0 else (geom.w, geom.fw)
    out = (geom.out_h, geom.out_w)[axis]
    lines = formulas.axis_formulas(axis, size, kernel, geom.strides[axis], geom.dilation[axis],
                                   geom.pads[axis], out, word, report=True)
    name = "height" if axis == 0 else "width"
    return [f"{name if i == 0 else '':7s} {line}" for i, line in enumerate(lines)]


def _params_line(geom: shapes.ConvGeometry, bias: bool) -> str:
    count = shapes.num_params((geom.fh, geom.fw), geom.c, geom.k, bias=bias, groups=geom.groups)
    formula = formulas.params_formula(geom.fh, geom.fw, geom.c, geom.k, count, bias=bias, groups=geom.groups,
                                      report=True)
    return f"parameters  {formula}"


def sharing_report(geom: shapes.ConvGeometry, banks: tuple, *, bias: bool = True) -> str:
    """Parameter counts of one layer under each kind of weight sharing, with the formula."""
    grids = {"shared": None, "tiled": banks, "regions": banks, "unshared": (geom.out_h, geom.out_w)}
    lines = [f"parameters by weight sharing (tiles and regions {banks[0]} x {banks[1]}, "
             f"output grid {geom.out_h} x {geom.out_w}):"]
    for kind, grid in grids.items():
        extra = {shapes.BANK_GRIDS[kind].keyword: grid} if grid else {}
        count = shapes.num_params((geom.fh, geom.fw), geom.c, geom.k, bias=bias, groups=geom.groups,
                                  sharing=kind, **extra)
        formula = formulas.params_numbers(geom.fh, geom.fw, geom.c, geom.k, bias=bias, groups=geom.groups,
                                          grid=grid)
        lines.append(f"  {kind:9s} {formula:42s} = {count:>15,}")
    return "\n".join(lines)



def _transpose(args, input_shape, kernel_hw, k, groups, strides, padding, dilation) -> str:
    """The report of ``--transpose``: the geometry, then :func:`transpose_report`."""
    extra = None if args.output_padding is None else _parse.pair("output-padding", args.output_padding)
    size = None if args.output_shape is None else _parse.ints("output-shape", args.output_shape, (2,))
    kernel_shape = kernel_hw + (k // max(groups, 1), input_shape[-1])
    geom = shapes.transpose_geometry(input_shape, kernel_shape, strides, padding, extra, size, dilation,
                                     groups=groups)
    return transpose_report(geom, padding, extra, size is not None, bias=not args.no_bias,
                            channels_first=args.data_format == "channels_first")


def transpose_report(geom: shapes.TransposeGeometry, padding, output_padding=None, output_shape: bool = False,
                     *, bias: bool = True, channels_first: bool = False) -> str:
    """The text ``convlayer shape --transpose`` prints for a resolved geometry (with
    ``channels_first``, the input, kernel and output in PyTorch's layouts: its
    ``ConvTranspose2d.weight`` is (C, K/groups, Fh, Fw))."""
    word = padding if isinstance(padding, str) else "explicit"
    extras = _extras(geom)
    if output_padding is not None:
        pair = output_padding if isinstance(output_padding, tuple) else (output_padding, output_padding)
        extras.append(f"output_padding {pair[0]} x {pair[1]}")
    lines = _head(geom, word, extras, channels_first, transposed=True)
    for axis, (name, size, kernel, out) in enumerate((("height", geom.h, geom.fh, geom.out_h),
                                                       ("width", geom.w, geom.fw, geom.out_w))):
        extra = None if output_padding is None else shapes_pair(output_padding)[axis]
        text = formulas.transpose_axis_formulas(axis, size, kernel, geom.strides[axis], geom.dilation[axis],
                                                geom.pads[axis], out, word, extra, output_shape)
        lines += [f"{name if i == 0 else '':7s} {line}" for i, line in enumerate(text)]
    count = shapes.num_params((geom.fh, geom.fw), geom.c, geom.k, bias=bias, groups=geom.groups)
    formula = formulas.params_formula(geom.fh, geom.fw, geom.c, geom.k, count, bias=bias, groups=geom.groups,
                                      report=True)
    lines += ["", f"parameters  {formula}  (the kernel of the conv2d from K to C channels, read backwards)"]
    return "\n".join(lines)


def shapes_pair(value) -> tuple[int, int]:
    """An int or a pair as a pair."""
    return value if isinstance(value, tuple) else (value, value)


def _extras(geom) -> list[str]:
    """The kernel line's dilation and groups, where they are not 1."""
    extras = [f"dilation {geom.dilation[0]} x {geom.dilation[1]}"] if geom.dilation != (1, 1) else []
    return extras + ([f"groups {geom.groups}"] if geom.groups > 1 else [])


def _head(geom, word: str, extras: list, channels_first: bool, transposed: bool = False) -> list[str]:
    """The report's input, kernel and output lines (and a blank one), in the layout asked for.

    The kernel is conv2d's ``(Fh, Fw, C/groups, K)`` (PyTorch's ``(K, C/groups, Fh, Fw)``) or,
    ``transposed``, conv_transpose2d's ``(Fh, Fw, K/groups, C)`` (``ConvTranspose2d.weight``,
    ``(C, K/groups, Fh, Fw)``).
    """
    batch = f"{geom.n} x " if geom.batched else ""
    per_group = "/groups" if geom.groups > 1 else ""
    (a, a_name), (b, b_name) = ((geom.k // geom.groups, "K"), (geom.c, "C")) if transposed else \
        ((geom.c // geom.groups, "C"), (geom.k, "K"))
    tail = ", transposed" if transposed else ""
    if channels_first:
        shown = (f"{geom.c} x {geom.h} x {geom.w}",
                 f"{b} x {a} x {geom.fh} x {geom.fw}  ({b_name} x {a_name}{per_group} x Fh x Fw{tail})",
                 f"{geom.k} x {geom.out_h} x {geom.out_w}")
    else:
        shown = (f"{geom.h} x {geom.w} x {geom.c}",
                 f"{geom.fh} x {geom.fw} x {a} x {b}  (Fh x Fw x {a_name}{per_group} x {b_name}{tail})",
                 f"{geom.out_h} x {geom.out_w} x {geom.k}")
    kernel = f"kernel      {shown[1]}, strides {geom.strides[0]} x {geom.strides[1]}, padding {word!r}"
    return [f"input       {batch}{shown[0]}", kernel + "".join(f", {e}" for e in extras),
            f"output      {batch}{shown[2]}", ""]
