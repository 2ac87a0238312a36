"""``convlayer demo``: the tutorial's two-filter layer on a photo that ships with scikit-image.

The layer has two output channels over the three RGB channels: the edge detector with bias
1 and the box blur with bias 0, each 3x3 filter repeated across the channels, followed by
ReLU. The figure shows the input, both output channels, and the edge map equalised with
CLAHE (``skimage.exposure.equalize_adapthist``), which makes faint edges visible.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import kernels, shapes
from .._files import atomic_write
from ..functional import conv2d, relu
from . import _common

EXAMPLE = """examples:
  convlayer demo
  convlayer demo --photo sample:coffee -o coffee-layer.png --overwrite"""

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")  # RGB photos shipped inside scikit-image
BIAS = (1.0, 0.0)  # the tutorial's: edge gets 1, blur 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", default="convlayer-demo.png", metavar="FILE",
                        help="where to write the figure; .png, .pdf, .svg or .jpg "
                             "(default convlayer-demo.png)")
    parser.add_argument("--photo", default="astronaut", type=_photo, metavar="NAME",
                        help=f"which sample photo to filter: {', '.join(PHOTOS)}, or sample:NAME as "
                             f"other commands write it (default astronaut)")
    _common.add_overwrite(parser)


def _photo(text: str) -> str:
    """'coffee' or 'sample:coffee' -> 'coffee'; argparse reports anything else."""
    name = text[len("sample:"):] if text.lower().startswith("sample:") else text
    if name.lower() not in PHOTOS:
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(PHOTOS)})")
    return name.lower()


def apply_layer(image: np.ndarray) -> np.ndarray:
    """The demo layer on an (h, w, 3) image: (h, w, 2) float32 maps after ReLU."""
    layer = kernels.stack(["edge", "blur"], channels=image.shape[-1])
    return relu(conv2d(image, layer, bias=np.array(BIAS, np.float32), padding="same"))


def run(args: argparse.Namespace) -> int:
    from .. import images

    output = _common.check_output_file(Path(args.output))
    _common.check_replace("demo", [output], args.overwrite)
    image = images.read_sample(args.photo)
    maps = apply_layer(image)
    figure = _draw(image, maps, args.photo)
    fmt = output.suffix.lstrip(".").lower() or "png"
    path = atomic_write(output, lambda temporary: figure.savefig(temporary, format=fmt, dpi=110))
    print(f"wrote {path.resolve()}")
    return 0


def _draw(image, maps, photo: str):
    from ..explain import plot

    h, w, c = image.shape
    params = shapes.num_params(3, c, 2)
    title = (
        f"{photo} {h}x{w}x{c} -> conv 3x3x{c}x2, strides 1, padding 'same', "
        f"bias {list(BIAS)}, ReLU -> {maps.shape[0]}x{maps.shape[1]}x2 "
        f"({params} parameters: (3*3*{c} + 1) * 2)"
    )
    return plot.layer_figure(
        image, maps, ["edge (bias 1), ReLU", "blur (bias 0), ReLU"],
        extra=(plot.equalised(maps[..., 0]), "edge map, CLAHE-equalised"), suptitle=title,
    )
