"""Regenerate the README's gallery in docs/gallery/: run `make gallery` from the repository root.

Each picture is drawn by the `convlayer explain` command printed beside it (the image one on
scikit-image's astronaut photo, which ships with the package: nothing is downloaded), and
the receptive-field figure by ``Sequential.receptive_field`` on the README's digits model.
The two filter figures (docs/filter-figure.jpg, docs/photo-figure.jpg) are the README's
``convlayer filter`` commands on the shipped photos; both made smaller, as JPEG.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from convlayer.cli.main import main

DOCS = Path(__file__).resolve().parent
FILTER_FIGURES = [  # (file in docs/, arguments of `convlayer filter`, width in pixels)
    ("filter-figure.jpg", "sample:chelsea -k edge -k blur --bias 1 0 --relu --figure", 1400),
    ("photo-figure.jpg", "sample:coffee -k blur -k sharpen --per-channel --figure", 1000),
]

GALLERY = Path(__file__).resolve().parent / "gallery"

COMMANDS = [  # (file, arguments of `convlayer explain`)
    ("stride1.png", "--input 5x5 --kernel-size 3x3 --strides 1 --padding same"),
    ("stride2.png", "--input 7x7 --kernel-size 3x3 --strides 2 --padding same"),  # SAME, even padding: 1 + 1
    ("same-odd.png", "--input 6x6 --kernel-size 3x3 --strides 2 --padding same"),  # SAME, odd: 0 + 1
    ("valid.png", "--input 7x7 --kernel-size 3x3 --strides 2 --padding valid"),
    ("dilation.png", "--input 7x7 --kernel-size 3x3 --dilation 2"),
    ("channels.png", "--input 5x5 --kernel-size 3x3 --channels 3 --filters 2 --strides 2"),
    ("sharing-shared.png", "--input 6x6 --kernel-size 3x3 --sharing shared"),
    ("sharing-tiled.png", "--input 6x6 --kernel-size 3x3 --sharing tiled --banks 2x2"),
    ("sharing-regions.png", "--input 6x6 --kernel-size 3x3 --sharing regions --banks 2x3"),
    ("sharing-unshared.png", "--input 6x6 --kernel-size 3x3 --sharing unshared"),
    ("slide.gif", "--input 6x6 --kernel-size 3x3 --strides 2 --animate"),
    ("transposed.png", "--transpose --input 3x3 --kernel-size 3x3 --strides 2 --padding same"),  # the checkerboard
    ("transposed-even.png", "--transpose --input 3x3 --kernel-size 4x4 --strides 2 --padding 1"),  # 4 = 2 x 2: even
    ("pixel.png", "sample:astronaut -k edge --at 152,180 --bias 1"),
]


def filter_figure(target: Path, arguments: str, width: int) -> bool:
    """Run `convlayer filter ARGUMENTS --figure` into a temporary folder; keep the figure as ``target``."""
    import tempfile

    from PIL import Image

    from convlayer._files import atomic_write

    print(f"$ convlayer filter {arguments} -o out/  -> docs/{target.name}")
    with tempfile.TemporaryDirectory() as folder:
        if main(["filter", *shlex.split(arguments), "-o", folder]) != 0:
            return False
        (figure,) = Path(folder).glob("*.figure.png")
        picture = Image.open(figure).convert("RGB")
        picture = picture.resize((width, round(picture.height * width / picture.width)), Image.LANCZOS)
        atomic_write(target, lambda temporary: picture.save(temporary, format="JPEG", quality=88))
    return True


def receptive_field_figure(target: Path) -> None:
    """The README's digits model: conv 3x3, ReLU, max-pool 2, conv 3x3, ReLU, on 8x8 digits."""
    from convlayer import explain, nn
    from convlayer._files import atomic_write

    model = nn.Sequential([nn.Conv2D(1, 16, 3), nn.ReLU(), nn.MaxPool2D(2), nn.Conv2D(16, 32, 3), nn.ReLU(),
                           nn.Flatten(), nn.Dense(4 * 4 * 32, 10)], input_shape=(8, 8, 1), seed=0)
    figure = explain.receptive_field_figure(model.receptive_field(), (8, 8))
    atomic_write(target, lambda temporary: figure.savefig(temporary, format="png", dpi=100))


def main_gallery() -> int:
    GALLERY.mkdir(exist_ok=True)
    for name, arguments in COMMANDS:
        print(f"$ convlayer explain {arguments} -o docs/gallery/{name} --overwrite")
        if main(["explain", *shlex.split(arguments), "-o", str(GALLERY / name), "--overwrite"]) != 0:
            return 1
    for name, arguments, width in FILTER_FIGURES:
        if not filter_figure(DOCS / name, arguments, width):
            return 1
    print("$ python: Sequential.receptive_field() on the digits model -> docs/gallery/receptive-field.png")
    receptive_field_figure(GALLERY / "receptive-field.png")
    return 0


if __name__ == "__main__":
    sys.exit(main_gallery())
