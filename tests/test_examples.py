"""The tutorial's two programs, rewritten on convlayer, run and draw their figures."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.mark.parametrize("script, args, expected", [
    ("tutorial_single_filter.py", [], "feature map (512, 512) float32"),
    ("tutorial_two_filters.py", [], "output (512, 512, 2), 56 parameters"),
])
def test_tutorial_programs(tmp_path, script, args, expected):
    result = subprocess.run([sys.executable, EXAMPLES / script, *args], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    [figure] = list(tmp_path.glob("*.png"))
    pixels = np.asarray(Image.open(figure).convert("L"), dtype=float)
    assert pixels.std() > 20


def test_single_filter_on_a_user_image(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (40, 60, 4), dtype=np.uint8)
    Image.fromarray(image, "RGBA").save(tmp_path / "image.png")
    result = subprocess.run([sys.executable, EXAMPLES / "tutorial_single_filter.py", "image.png", "out.png"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "input (40, 60, 3) uint8 -> feature map (40, 60) float32" in result.stdout
    assert (tmp_path / "out.png").stat().st_size > 1000


def test_sharing_experiment_prints_its_table():
    result = subprocess.run([sys.executable, EXAMPLES / "sharing_on_digits.py", "--epochs", "2"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "%" in line]
    assert [row.split(" | ")[0] for row in rows] == ["| shared", "| tiled 2x2", "| regions 2x2", "| unshared"]
    first_layer = [int(row.split(" | ")[1].replace(",", "")) for row in rows]
    assert first_layer == [160, 640, 640, 10240]
    test_accuracy = [float(row.split(" | ")[4].rstrip("%")) for row in rows]
    assert min(test_accuracy) > 80  # every kind learns
