"""``data.image_folder``: class folders to arrays (issue 20, item 11).

Oracles: images of known uniform values (their resized pixels are those values over 255), a
crop whose kept part is known, counts of files per class, and Pillow's own resize.
"""

import warnings

import numpy as np
import pytest
from PIL import Image

from convlayer import data


def make(root, classes):
    """classes: name -> list of (h, w, c) uint8 arrays, saved as PNG."""
    for name, pictures in classes.items():
        (root / name).mkdir(parents=True)
        for i, pixels in enumerate(pictures):
            Image.fromarray(pixels.squeeze() if pixels.shape[2] == 1 else pixels).save(root / name / f"{i}.png")
    return root


def uniform(value, shape=(30, 40, 3)):
    return np.full(shape, value, np.uint8)


def test_classes_labels_split_and_values(tmp_path):
    colours = {"b_red": (200, 10, 10), "a_green": (10, 200, 10), "c_blue": (10, 10, 200)}
    root = make(tmp_path, {name: [uniform(c, (20 + i, 30, 3)) for i in range(10)] for name, c in colours.items()})
    (root / ".hidden").mkdir()
    (root / "a_green" / "notes.txt").write_text("not an image")
    folder = data.image_folder(root, size=(8, 12), validation_split=0.2, seed=0)
    assert folder.classes == ["a_green", "b_red", "c_blue"]  # sorted; the hidden folder left out
    assert folder.x_train.shape == (24, 8, 12, 3) and folder.x_val.shape == (6, 8, 12, 3)
    assert folder.x_train.dtype == np.float32 and folder.skipped == []
    assert np.bincount(folder.y_val).tolist() == [2, 2, 2]  # stratified: round(10 * 0.2) per class
    for x, y in ((folder.x_train, folder.y_train), (folder.x_val, folder.y_val)):
        for image, label in zip(x, y):
            expected = np.array(colours[folder.classes[label]], np.float32) / 255
            np.testing.assert_allclose(image, np.broadcast_to(expected, image.shape), atol=1e-6)
    again = data.image_folder(root, size=(8, 12), seed=0)
    np.testing.assert_array_equal(again.x_val, folder.x_val)


def test_the_held_out_images_depend_on_the_seed(tmp_path):
    root = make(tmp_path, {name: [uniform(i * 10 + k) for i in range(10)] for k, name in enumerate("ab")})
    held = {seed: sorted(data.image_folder(root, size=4, seed=seed).x_val[:, 0, 0, 0].tolist()) for seed in range(4)}
    assert len({tuple(v) for v in held.values()}) > 1


def test_resize_is_pillows_bilinear(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    root = make(tmp_path, {"a": [pixels, pixels], "b": [pixels, pixels]})
    folder = data.image_folder(root, size=(16, 20), validation_split=0)
    expected = np.asarray(Image.fromarray(pixels).resize((20, 16), Image.BILINEAR), np.float32) / 255
    np.testing.assert_allclose(folder.x_train[0], expected, atol=1.01 / 255)  # Pillow's 8-bit result rounds


def test_gray_and_colour_are_decided_by_the_images(tmp_path):
    gray = make(tmp_path / "gray", {"a": [uniform(50, (9, 9, 1))] * 2, "b": [uniform(90)] * 2})  # RGB of equal channels
    assert data.image_folder(gray, size=4).x_train.shape[-1] == 1
    mixed = make(tmp_path / "mixed", {"a": [uniform(50, (9, 9, 1))] * 2, "b": [uniform((90, 10, 10))] * 2})
    folder = data.image_folder(mixed, size=4, validation_split=0)
    assert folder.x_train.shape[-1] == 3
    first_a = folder.x_train[folder.y_train == 0][0]
    np.testing.assert_allclose(first_a, 50 / 255, atol=1e-6)  # the gray image repeated over R, G, B
    as_gray = data.image_folder(mixed, size=4, validation_split=0, color="gray")
    red = as_gray.x_train[as_gray.y_train == 1][0]
    np.testing.assert_allclose(red, (0.2125 * 90 + 0.7154 * 10 + 0.0721 * 10) / 255, atol=1e-6)
    assert data.image_folder(gray, size=4, color="rgb").x_train.shape[-1] == 3


def test_crop_keeps_the_centre(tmp_path):
    pixels = np.zeros((20, 40, 1), np.uint8)
    pixels[:, 10:30] = 255  # the centre 20x20 square is white, the sides black
    root = make(tmp_path, {"a": [pixels] * 2, "b": [pixels] * 2})
    cropped = data.image_folder(root, size=10, validation_split=0, crop=True).x_train
    np.testing.assert_allclose(cropped, 1.0)
    stretched = data.image_folder(root, size=10, validation_split=0).x_train
    assert stretched.min() == 0.0


def test_a_corrupt_file_is_named_and_skipped(tmp_path):
    root = make(tmp_path, {"a": [uniform(10)] * 3, "b": [uniform(200)] * 3})
    (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "b" / "empty.jpg").write_bytes(b"")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        folder = data.image_folder(root, size=4, validation_split=0)
    assert len(folder.y_train) == 6
    assert len(folder.skipped) == 2 and all(line.startswith("skipped ") for line in folder.skipped)
    assert "broken.png" in folder.skipped[0] and "empty.jpg" in folder.skipped[1]
    assert [str(w.message) for w in caught] == folder.skipped


@pytest.mark.parametrize("setup, message", [
    (lambda root: None, "no such folder"),
    (lambda root: make(root, {"only": [uniform(1)] * 2}), r"at least two; found \['only'\]"),
    (lambda root: (make(root, {"a": [uniform(1)] * 2}), (root / "b").mkdir(),
                   (root / "b" / "x.png").write_bytes(b"junk")), "class 'b' has no readable image"),
], ids=["missing", "one-class", "unreadable-class"])
def test_folder_errors(tmp_path, setup, message):
    root = tmp_path / "data"
    setup(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=message):
            data.image_folder(root)


def test_argument_errors(tmp_path):
    root = make(tmp_path, {"a": [uniform(1)] * 2, "b": [uniform(2)] * 2})
    with pytest.raises(ValueError, match=r"validation_split must be in \[0, 1\); got 1"):
        data.image_folder(root, validation_split=1)
    with pytest.raises(ValueError, match="color must be 'auto', 'rgb' or 'gray'; got 'cmyk'"):
        data.image_folder(root, color="cmyk")
    with pytest.raises(ValueError, match="size"):
        data.image_folder(root, size=(0, 4))


def test_a_small_class_keeps_one_for_training(tmp_path):
    root = make(tmp_path, {"a": [uniform(1)] * 2, "b": [uniform(2)], "c": [uniform(3)] * 5})
    folder = data.image_folder(root, size=2, validation_split=0.9)
    assert np.bincount(folder.y_train, minlength=3).tolist() == [1, 1, 1]
    assert np.bincount(folder.y_val, minlength=3).tolist() == [1, 0, 4]


def test_sample_image_folder(tmp_path):
    root = data.sample_image_folder(tmp_path / "photos", per_class=3, seed=0)
    assert sorted(p.name for p in root.iterdir()) == ["astronaut", "chelsea", "coffee", "rocket"]
    assert sorted(p.name for p in (root / "coffee").iterdir()) == ["00.jpg", "01.png", "02.jpg"]
    again = data.sample_image_folder(tmp_path / "again", per_class=3, seed=0)
    for file in root.rglob("*.*"):
        assert file.read_bytes() == (again / file.relative_to(root)).read_bytes()
    stamp = (root / "rocket" / "01.png").stat().st_mtime_ns
    assert data.sample_image_folder(root, per_class=3) == root  # already there: left as it is
    assert (root / "rocket" / "01.png").stat().st_mtime_ns == stamp
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "holiday.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="exists and holds other files"):
        data.sample_image_folder(tmp_path / "mine")
    with Image.open(root / "coffee" / "00.jpg") as image:
        assert image.size[0] == image.size[1] and 400 // 3 <= image.size[0] < 400 * 2 // 3


def _not_installed(monkeypatch, *modules):
    """As if ``modules`` were not installed: importing them fails, and no spec is found."""
    import importlib.util
    import sys

    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)  # import raises ModuleNotFoundError
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr("importlib.util.find_spec",
                        lambda name, *a: None if name in modules else real_find_spec(name, *a))


def test_digits_without_scikit_learn_says_what_to_install(monkeypatch):
    """Issue 20, item 2: the README's snippet died with a bare "No module named 'sklearn'"."""
    _not_installed(monkeypatch, "sklearn", "sklearn.datasets", "sklearn.model_selection")
    with pytest.raises(ModuleNotFoundError, match=r"^data\.digits\(\) needs the package 'sklearn': "
                                                   r"pip install 'convlayer\[train\]'$"):
        data.digits()


def test_image_folder_without_pillow_says_what_to_install(monkeypatch, tmp_path):
    _not_installed(monkeypatch, "PIL", "PIL.Image")
    with pytest.raises(ModuleNotFoundError, match=r"^data\.image_folder\(\) needs the package 'PIL': "
                                                   r"pip install 'convlayer\[images\]'$"):
        data.image_folder(tmp_path)
