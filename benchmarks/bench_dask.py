"""Time and peak memory of convlayer on Dask: in memory vs threaded Dask vs a local cluster,
and one image whose output does not fit in memory.

    .venv/bin/python benchmarks/bench_dask.py layer            # (a) 8192x8192x3 -> 8 channels, 3x3
    .venv/bin/python benchmarks/bench_dask.py huge             # (b) 60000x60000x3 uint8 -> edge, blur

(a) writes an 8192x8192x3 float32 image as an uncompressed Zarr store, then runs the same
job three ways, each in a fresh child process: read the store, a 3x3 layer to 8 float32
channels ('same' padding), write an uncompressed Zarr store. 'memory' reads the whole image
and calls ``conv2d`` on the NumPy array; 'threads' and 'cluster' call it on
``dask.array.from_zarr`` and store with ``to_zarr``, on Dask's threaded scheduler (2 threads)
or on a ``LocalCluster`` of 2 worker processes with 1 thread each. In memory runs twice,
with NumPy's BLAS on every core and on one; the Dask runs use one BLAS thread per task
(``OPENBLAS_NUM_THREADS=1``, as Dask's cluster workers set for themselves). The outputs are
checked against each other.

(b) generates a synthetic uint8 RGB scene as a Zarr store (chunks 4096) and runs the command
a user would run, ``convlayer filter scene.zarr -k edge -k blur --save-zarr -o OUT``, to a
float32 Zarr store of ``2 * 4 * size**2`` bytes (28.8 GB at 60000). It first checks the free
disk: if the uncompressed input and output plus a margin do not fit, it scales the size
down to the largest that does, and says so.

Peak memory is the largest sum of resident set sizes (RSS) of the child process and all its
descendants (the cluster's nanny and worker processes), polled every 20 ms with psutil;
times exclude interpreter start-up and, for the cluster, its start (printed apart).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GB = 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    layer = commands.add_parser("layer", help="(a) in memory vs threaded Dask vs a 2-process cluster")
    layer.add_argument("--size", type=int, default=8192)
    layer.add_argument("--chunks", type=int, default=2048)
    huge = commands.add_parser("huge", help="(b) an image whose output does not fit in memory")
    huge.add_argument("--size", type=int, default=60000)
    huge.add_argument("--chunks", type=int, default=4096)
    for sub in (layer, huge):
        sub.add_argument("--dir", default=tempfile.gettempdir(), help="where the stores go (default /tmp)")
        sub.add_argument("--keep", action="store_true", help="keep the stores")
    child = commands.add_parser("_child")  # one measured run, in its own process
    child.add_argument("variant")
    child.add_argument("source")
    child.add_argument("target")
    args = parser.parse_args()
    if args.command == "_child":
        print(json.dumps(run_variant(args.variant, args.source, args.target)))
    elif args.command == "layer":
        bench_layer(args)
    else:
        bench_huge(args)


# Measuring a child process tree.


def measured(command: list, env: "dict | None" = None) -> tuple[float, float, str]:
    """Run ``command``; return (wall seconds, peak RSS of its process tree in bytes, stdout)."""
    import psutil

    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    root, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        peak = max(peak, _tree_rss(root))
        time.sleep(0.02)
    out = process.stdout.read()
    if process.returncode:
        raise SystemExit(f"{' '.join(map(str, command))} failed with exit code {process.returncode}")
    return time.perf_counter() - start, peak, out


def _tree_rss(root) -> int:
    import psutil

    total = 0
    try:
        for process in [root] + root.children(recursive=True):
            try:
                total += process.memory_info().rss
            except psutil.Error:  # a process that just ended
                pass
    except psutil.Error:
        pass
    return total


# (a) one layer, three ways.


def bench_layer(args) -> None:
    folder = Path(tempfile.mkdtemp(dir=args.dir, prefix="convlayer-bench-"))
    try:
        source = folder / "input.zarr"
        _write_random_image(source, args.size, args.chunks)
        print(f"input {args.size}x{args.size}x3 float32 ({3 * 4 * args.size**2 / GB:.2f} GB), output 8 float32 "
              f"channels ({8 * 4 * args.size**2 / GB:.2f} GB), 3x3 'same', Zarr chunks {args.chunks}, "
              f"{os.cpu_count()} CPUs")
        print(f"{'run':<9} {'BLAS threads':>11} {'time s':>8} {'peak RSS GB':>12}  notes")
        for name, variant, blas in RUNS:
            env = dict(os.environ, **({name: "1" for name in BLAS_THREADS} if blas == "1" else {}))
            _, peak, out = measured([sys.executable, __file__, "_child", variant, str(source),
                                     str(folder / f"{name}.zarr")], env=env)
            record = json.loads(out.strip().splitlines()[-1])
            note = f"conv2d alone {record['conv2d']:.1f} s" if "conv2d" in record else ""
            note += f"cluster start {record['startup']:.1f} s (not counted)" if "startup" in record else ""
            print(f"{name:<9} {blas:>11} {record['seconds']:8.1f} {peak / GB:12.2f}  {note}", flush=True)
        for name, _, _ in RUNS[1:]:
            print(f"max |{name} - memory| = {_max_difference(folder / f'{name}.zarr', folder / 'memory.zarr'):.3g}")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


# (name, how, BLAS threads per task): NumPy's BLAS uses every core unless told otherwise;
# under Dask each task should use one (Dask's cluster workers set this themselves).
RUNS = [("memory", "memory", "all"), ("memory-1", "memory", "1"), ("threads", "threads", "1"),
        ("cluster", "cluster", "1")]
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _layer_kernel() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((3, 3, 3, 8)).astype(np.float32)


def _write_random_image(target: Path, size: int, chunks: int) -> None:
    import dask.array as da

    pixels = da.random.default_rng(0).random((size, size, 3), dtype=np.float32, chunks=(chunks, chunks, 3))
    da.to_zarr(pixels, str(target), compressors=None)


def run_variant(variant: str, source: str, target: str) -> dict:
    """One measured job: read, filter, write; return its times."""
    import zarr

    import convlayer

    kernel = _layer_kernel()
    if variant == "memory":
        start = time.perf_counter()
        x = zarr.open_array(source, mode="r")[:]
        begin = time.perf_counter()
        y = convlayer.conv2d(x, kernel)
        conv = time.perf_counter() - begin
        out = zarr.create_array(target, shape=y.shape, chunks=(2048, 2048, 8), dtype=y.dtype, compressors=None)
        out[:] = y
        return {"seconds": time.perf_counter() - start, "conv2d": conv}
    import dask
    import dask.array as da

    def job() -> float:
        begin = time.perf_counter()
        y = convlayer.conv2d(da.from_zarr(source), kernel)
        da.to_zarr(y, target, compressors=None)
        return time.perf_counter() - begin

    if variant == "threads":
        with dask.config.set(scheduler="threads"):
            return {"seconds": job()}
    from distributed import Client, LocalCluster

    begin = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster):
        startup = time.perf_counter() - begin
        return {"seconds": job(), "startup": startup}


def _max_difference(a: Path, b: Path) -> float:
    import dask.array as da

    return float(abs(da.from_zarr(str(a)) - da.from_zarr(str(b))).max().compute())


# (b) an output larger than memory.


def bench_huge(args) -> None:
    folder_parent = Path(args.dir)
    size = _size_that_fits(folder_parent, args.size, args.chunks)
    folder = Path(tempfile.mkdtemp(dir=folder_parent, prefix="convlayer-huge-"))
    try:
        scene = folder / "scene.zarr"
        begin = time.perf_counter()
        _write_scene(scene, size, args.chunks)
        print(f"generated {scene} ({size}x{size}x3 uint8, {3 * size**2 / GB:.1f} GB raw, "
              f"{_disk_bytes(scene) / GB:.1f} GB on disk) in {time.perf_counter() - begin:.0f} s", flush=True)
        command = [str(Path(sys.executable).with_name("convlayer")), "filter", str(scene), "-k", "edge", "-k", "blur",
                   "--save-zarr", "-o", str(folder / "out")]
        print("$ OPENBLAS_NUM_THREADS=1", " ".join(command), flush=True)
        wall, peak, _ = measured(command, env=dict(os.environ, **{name: "1" for name in BLAS_THREADS}))
        output = folder / "out" / "scene.zarr"
        print(f"output {size}x{size}x2 float32: {8 * size**2 / GB:.1f} GB raw, {_disk_bytes(output) / GB:.1f} GB on disk")
        print(f"time {wall:.0f} s ({wall / 60:.1f} min), peak RSS {peak / GB:.2f} GB "
              f"({'under' if peak < 4 * GB else 'OVER'} 4 GB)")
        print(f"spot check: {_spot_check(scene, output)}")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def _size_that_fits(parent: Path, size: int, chunks: int) -> int:
    """The requested size, or the largest multiple of ``chunks`` whose uncompressed input and
    output (11 bytes a pixel) leave a margin of 10 GB or 20% of the free disk."""
    free = shutil.disk_usage(parent).free
    margin = max(10 * GB, 0.2 * free)
    fits = int(np.sqrt(max(free - margin, 0) / 11))
    print(f"free disk at {parent}: {free / GB:.0f} GB; {size}x{size} needs {11 * size**2 / GB:.0f} GB "
          f"uncompressed (+ a {margin / GB:.0f} GB margin)")
    if size <= fits:
        return size
    scaled = max(fits // chunks * chunks, chunks)
    print(f"not enough disk for {size}x{size}: scaled down to {scaled}x{scaled}")
    return scaled


def _write_scene(target: Path, size: int, chunks: int) -> None:
    """A deterministic RGB 'satellite scene': smooth fields, stripes and some noise, in uint8."""
    import dask.array as da

    def block(block_info=None):
        (r0, r1), (c0, c1), _ = block_info[None]["array-location"]
        rows, cols = np.mgrid[r0:r1, c0:c1].astype(np.float32)
        noise = np.random.default_rng([r0, c0]).integers(0, 24, (r1 - r0, c1 - c0, 3), dtype=np.uint8)
        base = 100 + 60 * np.sin(rows / 900) * np.cos(cols / 1300) + 40 * (np.sin((rows + cols) / 40) > 0)
        return np.clip(base[..., None] + noise + np.array([0, 10, 20]), 0, 255).astype(np.uint8)

    pixels = da.map_blocks(block, dtype=np.uint8, chunks=da.core.normalize_chunks((chunks, chunks, 3), (size, size, 3)),
                           meta=np.empty((0, 0, 0), np.uint8))
    da.to_zarr(pixels, str(target))


def _disk_bytes(path: Path) -> int:
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file())


def _spot_check(scene: Path, output: Path) -> str:
    """A 600x600 window through the middle, against conv2d of the input pixels it reads
    (the filter's 'same' padding, from convlayer.shapes)."""
    import zarr

    import convlayer

    x, y = zarr.open_array(str(scene), mode="r"), zarr.open_array(str(output), mode="r")
    layer = convlayer.kernels.stack(["edge", "blur"], 3)
    (top, bottom), (left, right) = convlayer.shapes.resolve_padding(x.shape[:2], layer.shape[:2])
    middle = x.shape[0] // 2
    window = x[middle - top: middle + 600 + bottom, middle - left: middle + 600 + right]
    expected = convlayer.conv2d(window, layer, padding="valid")
    got = y[middle: middle + 600, middle: middle + 600]
    return f"max |difference| {np.max(np.abs(got - expected)):.3g} on a 600x600 window"


if __name__ == "__main__":  # LocalCluster's worker processes re-import this file
    main()
