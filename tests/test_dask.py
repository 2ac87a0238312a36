"""conv2d on Dask arrays equals the in-memory call; the filter command streams TIFF and Zarr.

The oracle is the in-memory ``conv2d`` itself (tested elsewhere against loops, SciPy and
PyTorch). Values are compared in float64 at 1e-12: a block's matrix product may round
differently from the whole image's (BLAS sums a different number of rows), nothing more.
``dask.array.utils.assert_eq`` also checks that every computed block has the shape the
lazy array's ``chunks`` promise.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")
tifffile = pytest.importorskip("tifffile")

from dask.array.utils import assert_eq  # noqa: E402

import convlayer  # noqa: E402
from convlayer import conv2d, kernels  # noqa: E402
from convlayer.cli.main import main  # noqa: E402

PAD_MODES = ("constant", "reflect", "symmetric", "edge", "wrap")


def assert_same(lazy, x, kernel, bias=None, **options):
    """The lazy result is a Dask array that equals the in-memory call, chunks checked."""
    expected = conv2d(np.asarray(x), kernel, bias, **options)
    assert isinstance(lazy, da.Array)
    assert lazy.shape == expected.shape and lazy.dtype == expected.dtype
    scale = max(float(np.max(np.abs(expected), initial=0)), 1.0)
    assert_eq(lazy, expected, rtol=1e-12, atol=1e-12 * scale)


def random_case(rng):
    """A random layer (any padding form, pad mode, stride, dilation, groups) and its input."""
    c = int(rng.choice([1, 2, 3, 4]))
    k = int(rng.choice([1, 2, 4]))
    groups = int(rng.choice([g for g in (1, 2) if c % g == 0 and k % g == 0]))
    fh, fw = (int(v) for v in rng.integers(1, 6, 2))
    padding = rng.choice(["same", "same_lower", "valid", "full", "int", "pairs"])
    padding = {"int": int(rng.integers(0, 4)),
               "pairs": tuple(tuple(int(v) for v in rng.integers(0, 5, 2)) for _ in range(2))}.get(padding, str(padding))
    options = dict(strides=tuple(int(v) for v in rng.integers(1, 4, 2)),
                   dilation=tuple(int(v) for v in rng.integers(1, 3, 2)),
                   padding=padding, groups=groups, pad_mode=str(rng.choice(PAD_MODES)))
    shape = ((int(rng.integers(1, 4)),) if rng.random() < 0.5 else ()) + tuple(int(v) for v in rng.integers(1, 30, 2)) + (c,)
    x = rng.standard_normal(shape)
    return x, rng.standard_normal((fh, fw, c // groups, k)), rng.standard_normal(k), options


@pytest.mark.parametrize("seed", range(40))
def test_random_layers_and_chunkings(seed):
    rng = np.random.default_rng(seed)
    for _ in range(10):  # draw until the kernel fits the padded input
        x, kernel, bias, options = random_case(rng)
        try:
            conv2d(x, kernel, bias, **options)
            break
        except ValueError:
            continue
    else:
        pytest.skip("no fitting layer drawn")
    chunks = tuple(int(rng.integers(1, size + 1)) for size in x.shape)  # ragged, tiny or whole
    assert_same(conv2d(da.from_array(x, chunks=chunks), kernel, bias, **options), x, kernel, bias, **options)


@pytest.mark.parametrize("pad_mode", PAD_MODES)
@pytest.mark.parametrize("strides", [1, 2, 3, (3, 1)])
@pytest.mark.parametrize("chunks", [2, (5, 3, 7), -1])
def test_pad_modes_strides_and_chunk_sizes(pad_mode, strides, chunks):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((15, 17, 2))
    kernel = rng.standard_normal((4, 3, 2, 3))  # even height: the odd pad goes after
    if isinstance(chunks, tuple):  # ragged along rows
        chunks = (chunks, 5, 2)
    lazy = da.from_array(x, chunks=chunks)
    for padding in ("same", "valid", ((5, 0), (1, 6))):  # explicit: wider than a chunk, one-sided
        assert_same(conv2d(lazy, kernel, strides=strides, padding=padding, pad_mode=pad_mode),
                    x, kernel, strides=strides, padding=padding, pad_mode=pad_mode)


@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_padding_wider_than_the_image(pad_mode):
    x = np.random.default_rng(11).standard_normal((3, 4, 1))  # reflected and wrapped more than once
    padding = ((5, 7), (9, 2))
    assert_same(conv2d(da.from_array(x, chunks=2), np.ones((3, 2, 1, 1)), padding=padding, pad_mode=pad_mode),
                x, np.ones((3, 2, 1, 1)), padding=padding, pad_mode=pad_mode)


@pytest.mark.parametrize("dilation", [1, 2, (3, 1)])
@pytest.mark.parametrize("padding", ["same", "same_lower", "full", 2])
def test_dilation_with_a_halo_larger_than_small_chunks(dilation, padding):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 20, 19, 3))
    kernel = rng.standard_normal((5, 5, 3, 2))
    lazy = da.from_array(x, chunks=(1, 2, 3, 1))  # chunks smaller than the halo get merged
    y = conv2d(lazy, kernel, [1.0, -1.0], strides=2, padding=padding, dilation=dilation)
    assert_same(y, x, kernel, [1.0, -1.0], strides=2, padding=padding, dilation=dilation)
    assert y.chunks[0] == (1, 1) and len(y.chunks[3]) == 1  # images as given, channels whole


def test_kernel_forms_layouts_dtypes_and_flip():
    rng = np.random.default_rng(5)
    image = rng.standard_normal((11, 13))
    assert_same(conv2d(da.from_array(image, chunks=4), np.arange(6.0).reshape(2, 3), 0.5, flip=True),
                image, np.arange(6.0).reshape(2, 3), 0.5, flip=True)
    batch = rng.standard_normal((3, 9, 10, 4))
    one_filter = rng.standard_normal((3, 3, 4))
    assert_same(conv2d(da.from_array(batch, chunks=(2, 4, 4, 4)), one_filter, strides=2), batch, one_filter, strides=2)
    first = rng.standard_normal((2, 4, 9, 10))
    torch_kernel = rng.standard_normal((6, 2, 3, 2))  # (k, c / groups, fh, fw)
    options = dict(groups=2, data_format="channels_first", padding="same", pad_mode="reflect")
    y = conv2d(da.from_array(first, chunks=(1, 1, 3, 4)), torch_kernel, np.arange(6.0), **options)
    assert_same(y, first, torch_kernel, np.arange(6.0), **options)
    photo = rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)
    y = conv2d(da.from_array(photo, chunks=5), kernels.stack(["edge", "blur"], 3))
    assert y.dtype == np.float32
    assert_same(y, photo, kernels.stack(["edge", "blur"], 3))
    ints = rng.integers(-5, 5, (7, 8, 1))
    assert_same(conv2d(da.from_array(ints, chunks=3), np.ones((3, 3, 1, 1), int)), ints, np.ones((3, 3, 1, 1), int))


def test_empty_inputs_give_the_in_memory_result():
    kernel = np.ones((3, 3, 2, 4))
    assert_same(conv2d(da.zeros((0, 8, 8, 2), chunks=4), kernel), np.zeros((0, 8, 8, 2)), kernel)
    flat = np.zeros((0, 5, 2))  # zero height: the bias over the padding
    assert_same(conv2d(da.from_array(flat), kernel, np.arange(4.0), padding=2), flat, kernel, np.arange(4.0), padding=2)


def _never_computed(shape, dtype=np.float64):
    def boom(block):
        raise AssertionError("conv2d computed its input")
    return da.zeros(shape, dtype=dtype, chunks=4).map_blocks(boom, dtype=dtype)


def test_lazy_and_the_same_errors_before_any_work():
    x = _never_computed((10, 10, 3))
    assert conv2d(x, np.ones((3, 3, 3, 2)), strides=2).shape == (5, 5, 2)  # nothing computed
    assert conv2d(x, np.ones((3, 3, 3, 0))).compute().shape == (10, 10, 0)  # no output channels
    with pytest.raises(ValueError, match=r"kernel has 4 input channels but x has 3 \(kernel shape \(3, 3, 4, 8\), x shape \(10, 10, 3\)\)"):
        conv2d(x, np.ones((3, 3, 4, 8)))
    with pytest.raises(ValueError, match="algorithm must be"):
        conv2d(x, np.ones((3, 3, 3, 2)), algorithm="winograd-ish")
    y = conv2d(da.from_array(np.ones((6, 7, 2)), chunks=3), np.ones((3, 3, 2, 2)), algorithm="im2col")
    np.testing.assert_array_equal(y.compute(), conv2d(np.ones((6, 7, 2)), np.ones((3, 3, 2, 2))))
    with pytest.raises(ValueError, match="pad_mode must be"):
        conv2d(x, np.ones((3, 3, 3, 2)), pad_mode="mirror")
    with pytest.raises(ValueError, match="does not fit the padded input"):
        conv2d(x, np.ones((12, 3, 3, 2)), padding="valid")
    with pytest.raises(TypeError, match="x must be real; got complex dtype complex128"):
        conv2d(_never_computed((10, 10, 3), np.complex128), np.ones((3, 3, 3, 2)))


def test_relu_and_predict_on_dask(exact_forward):
    x = np.random.default_rng(2).standard_normal((6, 7, 2))
    y = convlayer.relu(da.from_array(x, chunks=3))
    assert isinstance(y, da.Array)
    np.testing.assert_array_equal(y.compute(), convlayer.relu(x))
    from convlayer.nn import Conv2D, Dense, Flatten, ReLU, Sequential

    model = Sequential([Conv2D(1, 3, 3, strides=2), ReLU(), Flatten(), Dense(3 * 4 * 4, 5)], seed=0)
    images = np.random.default_rng(4).standard_normal((23, 8, 8, 1)).astype(np.float32)
    lazy = model.predict(da.from_array(images, chunks=(7, 4, 4, 1)), batch_size=10)
    assert isinstance(lazy, da.Array) and lazy.chunks == ((10, 10, 3), (5,))
    exact = exact_forward(model, images)  # batches of 10 or 256 may round differently
    exact.check(lazy.compute(), "dask")
    exact.check(model.predict(images), "in memory")


def test_a_folder_of_images_as_one_lazy_batch(tmp_path):
    from convlayer.dask import read_images

    rng = np.random.default_rng(8)
    photos = rng.integers(0, 256, (5, 9, 10, 3), dtype=np.uint8)
    for index, photo in enumerate(photos):
        tifffile.imwrite(tmp_path / f"{index}.tif", photo)
    batch = read_images(tmp_path, batch_size=2)
    assert batch.shape == (5, 9, 10, 3) and batch.chunks[0] == (2, 2, 1)
    layer = kernels.stack(["edge", "blur"], 3)
    assert_same(conv2d(batch, layer, strides=2), photos, layer, strides=2)


def test_reading_tiff_regions_in_threads_restores_tifffile_logging(tmp_path):
    """Threads quieting tifffile at once must leave its logger as they found it."""
    import logging

    from convlayer.dask import read_image

    tifffile.imwrite(tmp_path / "tiled.tif", np.ones((256, 256, 3), np.uint8), tile=(32, 32))
    logger = logging.getLogger("tifffile")
    assert logger.level == logging.NOTSET
    for _ in range(3):
        assert int(read_image(tmp_path / "tiled.tif", chunks=16).sum().compute(scheduler="threads")) == 256 * 256 * 3
        assert logger.level == logging.NOTSET


def test_import_convlayer_and_numpy_calls_do_not_import_dask():
    code = ("import sys, numpy as np, convlayer, convlayer.cli.filter; "
            "convlayer.conv2d(np.ones((4, 4)), np.ones((3, 3))); convlayer.relu(np.ones(3)); "
            "print(sorted(m for m in ('dask', 'distributed', 'zarr') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_two_process_local_cluster_equals_threads():
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(9)
    x = da.from_array(rng.standard_normal((2, 40, 37, 3)), chunks=(1, 16, 12, 3))
    kernel = rng.standard_normal((3, 3, 3, 4))
    y = conv2d(x, kernel, np.arange(4.0), strides=2, padding="same", pad_mode="wrap")
    threaded = y.compute(scheduler="threads")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        on_cluster = client.compute(y).result()
    # float64 blocks summed with another BLAS thread count may round differently (module notes)
    np.testing.assert_allclose(on_cluster, threaded, rtol=1e-12, atol=1e-12 * np.abs(threaded).max())


# The command line.


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """The same RGB image as a tiled TIFF and as a Zarr store, and its pixels."""
    folder = tmp_path_factory.mktemp("scene")
    pixels = np.random.default_rng(10).integers(0, 256, (150, 203, 3), dtype=np.uint8)
    tifffile.imwrite(folder / "scene.tif", pixels, tile=(64, 64))
    store = zarr.create_array(str(folder / "store.zarr"), shape=pixels.shape, chunks=(40, 64, 3), dtype=pixels.dtype)
    store[:] = pixels
    return folder, pixels


def assert_float32_close(got, expected):
    """Two float32 outputs of the edge-and-blur layer, summed over other blocks.

    Each value sums at most 27 products of a pixel (<= 255, gray or RGB) and a weight, and a
    bias (|b| <= 2): each result is within gamma_28 ~ 28 u of at most 255 * sum |kernel| + 2
    (Higham 3.1), so they differ by at most twice that; ReLU keeps the distance; 2 for headroom.
    """
    weights = np.abs(kernels.stack(["edge", "blur"], 3, dtype=np.float64)).sum(axis=(0, 1, 2))
    for channel, total in enumerate(weights):
        atol = 2 * 2 * 28 * 2.0**-24 * (255 * total + 2)
        np.testing.assert_allclose(got[..., channel], expected[..., channel], rtol=0, atol=atol)


def in_memory_filter(tmp_path, source, *options):
    """The exact output of the in-memory filter (its --save-raw .npy) on the same image."""
    out = tmp_path / "memory"
    assert main(["filter", str(source), "-k", "edge", "-k", "blur", "--save-raw", "-o", str(out), *options]) == 0
    return np.load(out / f"{source.stem}.npy")


@pytest.mark.parametrize("options", [[], ["--strides", "2", "--padding", "valid", "--relu"],
                                     ["--pad-mode", "reflect", "--bias", "1", "-2", "--mode", "gray"]])
def test_filter_tiff_and_zarr_inputs_write_zarr_equal_to_in_memory(scene, tmp_path, options):
    folder, pixels = scene
    expected = in_memory_filter(tmp_path, folder / "scene.tif", *options)
    out = tmp_path / "lazy"
    argv = ["-k", "edge", "-k", "blur", "--save-zarr", "--save-tiff", "-o", str(out), *options]
    assert main(["filter", str(folder / "scene.tif"), "--chunks", "48x70", *argv]) == 0
    assert main(["filter", str(folder / "store.zarr"), *argv]) == 0
    for name in ("scene", "store"):
        written = zarr.open(str(out / f"{name}.zarr"), mode="r")
        assert written.dtype == np.float32 and written.shape == expected.shape
        assert_float32_close(written[:], expected)
        np.testing.assert_array_equal(tifffile.imread(out / f"{name}.tif"), written[:])
        sidecar = json.loads((out / f"{name}.json").read_text())
        assert sidecar["output_shape"] == list(expected.shape) and sidecar["zarr"] == f"{name}.zarr"
    assert sorted(p.name for p in out.iterdir()) == ["scene.json", "scene.tif", "scene.zarr",
                                                     "store.json", "store.tif", "store.zarr"]


def test_filter_with_a_local_cluster(scene, tmp_path):
    folder, pixels = scene
    out = tmp_path / "out"
    assert main(["filter", str(folder / "store.zarr"), "-k", "sobel_x", "--strides", "3", "--save-zarr",
                 "--workers", "2", "-o", str(out)]) == 0
    expected = conv2d(pixels, kernels.stack(["sobel_x"], 3), strides=3)
    np.testing.assert_allclose(zarr.open(str(out / "store.zarr"), mode="r")[:], expected, rtol=1e-6, atol=1e-4)


def test_filter_streaming_is_safe(scene, tmp_path, capsys):
    folder, _ = scene
    source, out = str(folder / "store.zarr"), tmp_path / "out"
    assert main(["filter", source, "-k", "edge", "--save-zarr", "-o", str(out)]) == 0
    before = zarr.open(str(out / "store.zarr"), mode="r")[:]
    refusals = {
        "exists; use --overwrite": ["filter", source, "-k", "blur", "--save-zarr", "-o", str(out)],
        "is an input; choose another -o": ["filter", source, "-k", "edge", "--save-zarr", "--overwrite", "-o", str(folder)],
        "--save-raw needs the whole output in memory": ["filter", source, "-k", "edge", "--save-raw", "--save-zarr", "-o", str(out)],
        "add --save-zarr and/or --save-tiff": ["filter", source, "-k", "edge", "-o", str(tmp_path / "new")],
        "give --scheduler ADDRESS or --workers N, not both": ["filter", source, "-k", "edge", "--save-zarr", "--workers", "2",
                                                              "--scheduler", "tcp://127.0.0.1:1", "-o", str(out)],
        "--chunks must be positive integers; got 0": ["filter", source, "-k", "edge", "--chunks", "0", "--save-zarr", "-o", str(out)],
    }
    for message, argv in refusals.items():
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    np.testing.assert_array_equal(zarr.open(str(out / "store.zarr"), mode="r")[:], before)
    assert not (tmp_path / "new").exists()
    assert main(["filter", source, "-k", "blur", "--save-zarr", "--overwrite", "-o", str(out)]) == 0
    assert not np.array_equal(zarr.open(str(out / "store.zarr"), mode="r")[:], before)
    assert sorted(p.name for p in out.iterdir()) == ["store.json", "store.zarr"]  # no temporaries left
