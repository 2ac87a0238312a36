"""Data to train on: sets that ship inside installed packages (nothing is downloaded), and
your own images in class folders (:func:`image_folder`)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Split(NamedTuple):
    """Images (n, h, w, c) float32 and integer labels (n,), for training and testing."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits(test_size: float = 0.25, seed: int = 0) -> Split:
    """scikit-learn's handwritten digits: 1,797 images of 8x8 pixels, ten classes.

    The images ship inside scikit-learn (``pip install 'convlayer[train]'``): nothing is
    downloaded. Without it this raises an ``ImportError`` that says what to install.

    Pixel values 0..16 are scaled to [0, 1] and given a channel axis, (n, 8, 8, 1). The
    split is stratified (every digit in the same proportion in both parts) and fixed by
    ``seed``.

    >>> split = digits()
    >>> split.x_train.shape, split.x_test.shape
    ((1347, 8, 8, 1), (450, 8, 8, 1))
    """
    from ._optional import require

    load_digits = require("sklearn.datasets", "data.digits()").load_digits  # or: what to install
    train_test_split = require("sklearn.model_selection", "data.digits()").train_test_split
    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[..., None]
    parts = train_test_split(images, bunch.target, test_size=test_size, stratify=bunch.target,
                             random_state=seed)
    x_train, x_test, y_train, y_test = parts
    return Split(x_train, y_train, x_test, y_test)


class ImageFolder(NamedTuple):
    """Images ``(n, h, w, c)`` float32 in [0, 1] and integer labels, for training and validation,
    with the class names (``classes[label]``) and one line per file that was skipped."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    classes: list
    skipped: list


COLORS = ("auto", "rgb", "gray")


def image_folder(path, size=(32, 32), *, validation_split: float = 0.2, seed: int = 0, color: str = "auto",
                 crop: bool = False) -> ImageFolder:
    """Your own images, one sub-folder per class, as arrays to train on.

    ::

        path/
            cats/   a.jpg b.png ...
            dogs/   c.jpg ...

    Class names are the sub-folders' names, sorted (label 0 is the first); folders and files
    whose names start with a dot are left out, as are files that are not images by their
    suffix (PNG, JPEG, TIFF, BMP, GIF, WebP). Each image is read as a viewer shows it (EXIF
    orientation applied, the first frame of an animation, alpha dropped), scaled to [0, 1]
    (divided by 255 for 8-bit images, 65535 for 16-bit ones; a floating-point TIFF keeps its
    values) and resized with Pillow's bilinear filter (antialiased when shrinking) to ``size``.

    Parameters
    ----------
    path : str or path
        The folder of class folders.
    size : int or (int, int)
        ``(height, width)`` every image is resized to.
    validation_split : float
        The share of each class held out for validation, in [0, 1): ``round(n * share)``
        images of a class of ``n``, at least one when the share is above 0 and the class has
        two images or more, and never all of them. Stratified, so every class is in both
        parts (a class of one image stays in training).
    seed : int
        Which images are held out, and the order of both parts.
    color : {'auto', 'rgb', 'gray'}
        'rgb' gives 3 channels (a gray image repeated), 'gray' 1 (a colour image's Rec. 709
        luminance). 'auto' is 'gray' when every image is gray (one channel, or three equal
        ones) and 'rgb' otherwise.
    crop : bool
        Cut each image to the aspect ratio of ``size`` about its centre before resizing,
        instead of stretching it.

    Returns
    -------
    ImageFolder
        ``x_train, y_train, x_val, y_val, classes, skipped``.

    Raises
    ------
    ValueError
        If ``path`` is not a folder, holds fewer than two class folders, or a class has no
        readable image. A file that cannot be read (corrupt, truncated, empty) is not an
        error: it is skipped, named in ``skipped`` and in a warning.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name, value in (("dark", 20), ("light", 230)):
    ...     (root / name).mkdir()
    ...     for i in range(5):
    ...         Image.new("L", (40, 30), value + i).save(root / name / f"{i}.png")
    >>> folder = image_folder(root, size=(16, 16))
    >>> folder.x_train.shape, folder.x_val.shape, folder.classes
    ((8, 16, 16, 1), (2, 16, 16, 1), ['dark', 'light'])
    """
    import warnings
    from pathlib import Path

    from . import images
    from ._args import as_pair

    from ._optional import require

    require("PIL.Image", "data.image_folder()")  # Pillow reads and resizes; without it, what to install
    root, size = Path(path), as_pair("size", size)
    if not 0 <= float(validation_split) < 1:
        raise ValueError(f"validation_split must be in [0, 1); got {validation_split!r}")
    if color not in COLORS:
        raise ValueError(f"color must be 'auto', 'rgb' or 'gray'; got {color!r}")
    if not root.is_dir():
        raise ValueError(f"{root}: no such folder (expected one sub-folder of images per class)")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(folders) < 2:
        raise ValueError(f"{root}: needs one sub-folder of images per class, at least two; found "
                         f"{[p.name for p in folders]}")
    pictures, labels, skipped = [], [], []
    for label, folder in enumerate(folders):
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                       and images.is_image_path(p))
        count = len(pictures)
        for file in files:
            try:
                pixels, _ = images.read(file)
            except images.ImageError as error:
                skipped.append(f"skipped {error}")
                continue
            pictures.append(_resized(pixels, size, crop))
            labels.append(label)
        if len(pictures) == count:
            raise ValueError(f"{folder}: class {folder.name!r} has no readable image ({len(files)} image files)")
    for line in skipped:
        warnings.warn(line, stacklevel=2)
    gray = color == "gray" or (color == "auto" and all(_is_gray(p) for p in pictures))
    x = np.stack([_channels(p, gray) for p in pictures])
    labels = np.array(labels)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in range(len(folders)):
        members = rng.permutation(np.flatnonzero(labels == label))
        held = round(len(members) * validation_split)
        held = min(max(held, 1), len(members) - 1) if validation_split > 0 and len(members) >= 2 else 0
        val.extend(members[:held])
        train.extend(members[held:])
    train, val = rng.permutation(np.array(train, int)), rng.permutation(np.array(val, int))
    return ImageFolder(x[train], labels[train], x[val], labels[val], [p.name for p in folders], skipped)


def _resized(pixels: np.ndarray, size: tuple, crop: bool) -> np.ndarray:
    """An image (h, w, c) of any depth as float32 in [0, 1] at ``size``, alpha dropped."""
    from PIL import Image

    if pixels.shape[2] in (2, 4):
        pixels = pixels[:, :, :-1]
    if pixels.dtype.kind in "ui":
        values = pixels.astype(np.float32) / np.float32(np.iinfo(pixels.dtype).max)
    else:
        values = pixels.astype(np.float32)
    if crop:
        height, width = values.shape[:2]
        keep_h, keep_w = min(height, round(width * size[0] / size[1])), min(width, round(height * size[1] / size[0]))
        top, left = (height - keep_h) // 2, (width - keep_w) // 2
        values = values[top : top + keep_h, left : left + keep_w]
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(values[:, :, i]))  # float32: Pillow's mode F
                           .resize((size[1], size[0]), Image.BILINEAR)) for i in range(values.shape[2])]
    return np.clip(np.stack(channels, axis=-1), 0, 1) if pixels.dtype.kind in "ui" else np.stack(channels, axis=-1)


def _is_gray(pixels: np.ndarray) -> bool:
    return pixels.shape[2] == 1 or bool(np.array_equal(pixels[:, :, 0], pixels[:, :, 1])
                                        and np.array_equal(pixels[:, :, 1], pixels[:, :, 2]))


def _channels(pixels: np.ndarray, gray: bool) -> np.ndarray:
    """3 channels for 'rgb' (a gray image repeated), 1 for 'gray' (Rec. 709 luminance)."""
    from .images import LUMINANCE

    if gray:
        return pixels if pixels.shape[2] == 1 else (pixels @ LUMINANCE.astype(np.float32))[:, :, None]
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels


SAMPLE_CLASSES = ("astronaut", "chelsea", "coffee", "rocket")


def sample_image_folder(path, per_class: int = 40, seed: int = 0):
    """Write a small folder of class folders to try :func:`image_folder` and ``convlayer train
    --data`` on, made from the photos that ship inside scikit-image (nothing is downloaded).

    Four classes, one per photo (:data:`SAMPLE_CLASSES`: astronaut, chelsea, coffee, rocket),
    each of ``per_class`` random square crops (a third to two thirds of the photo's short
    side, half of them mirrored), alternately PNG and JPEG. The same ``seed`` writes the same
    files. Telling the photos apart is easy (each has its own colours): a small CNN reaches
    100% validation accuracy in a few seconds, which shows that the pipeline works, not that
    the model generalises.

    Parameters
    ----------
    path : str or path
        A new or empty folder. A folder that already holds exactly these four class folders
        is left as it is, so a script that calls this twice runs twice.
    per_class : int
    seed : int

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from pathlib import Path

    from PIL import Image

    from . import images
    from ._args import as_int

    root, per_class = Path(path), as_int("per_class", per_class, minimum=1)
    if root.is_dir() and any(root.iterdir()):
        if sorted(p.name for p in root.iterdir()) == list(SAMPLE_CLASSES):
            return root
        raise ValueError(f"{root}: exists and holds other files; sample_image_folder writes into a new or empty "
                         f"folder")
    rng = np.random.default_rng(seed)
    for name in SAMPLE_CLASSES:
        photo = images.read_sample(name)
        (root / name).mkdir(parents=True, exist_ok=True)
        h, w = photo.shape[:2]
        for i in range(per_class):
            side = int(rng.integers(min(h, w) // 3, min(h, w) * 2 // 3))
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = photo[top : top + side, left : left + side]
            crop = crop[:, ::-1] if rng.random() < 0.5 else crop
            Image.fromarray(np.ascontiguousarray(crop)).save(root / name / f"{i:02d}.{'png' if i % 2 else 'jpg'}")
    return root
