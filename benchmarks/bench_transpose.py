"""Time conv_transpose2d and its gradient against PyTorch on two decoder layers.

Shapes (channels-last names; PyTorch gets the same arrays as NCHW):
- 8x16x16x256 -> 128, 4x4 kernel, stride 2, padding 1 (a DCGAN-style generator block);
- 1x64x64x64 -> 32, 3x3 kernel, stride 2, padding 1, output_padding 1 (a U-Net-style upsampler).

Forward: ``torch.nn.functional.conv_transpose2d``. Backward: ``torch.ops.aten.convolution_backward``
with all three gradients (what autograd runs), against ``conv_transpose2d_backward``. Each
time is the minimum over rounds of consecutive calls of one function (not one call of each
in turn: PyTorch's OpenMP threads spin after a call and slow whatever runs next), and the
table gives convlayer's time over PyTorch's, measured in this process. On a shared machine
run it pinned to one core too (``THREADS=1``, see below): ratios of one-thread runs move less
with other jobs than two-thread ones, whose BLAS threads wait on each other.

Usage: python benchmarks/bench_transpose.py
       THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/bench_transpose.py
"""

import os
import time

import numpy as np
import torch

import convlayer

THREADS = int(os.environ.get("THREADS", "2"))
CASES = [("8x16x16x256 -> 128, 4x4, s2, p1", 8, 16, 256, 128, 4, 2, 1, 0),
         ("1x64x64x64 -> 32, 3x3, s2, p1, op1", 1, 64, 64, 32, 3, 2, 1, 1)]


def race(calls, rounds=6, repeats=8) -> list:
    """The minimum time of each call, in ``rounds`` of ``repeats`` consecutive calls each."""
    best = [float("inf")] * len(calls)
    for _ in range(rounds):
        for i, call in enumerate(calls):
            call()
            for _ in range(repeats):
                start = time.perf_counter()
                call()
                best[i] = min(best[i], time.perf_counter() - start)
    return best


def main() -> None:
    torch.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    print(f"threads: {THREADS}; load average {os.getloadavg()[0]:.1f}")
    print("| layer | pass | PyTorch NCHW (ms) | convlayer NHWC / PyTorch | convlayer NCHW / PyTorch |")
    print("|---|---|---:|---:|---:|")
    for name, n, h, c, k, f, s, p, op in CASES:
        y = rng.standard_normal((n, h, h, c)).astype(np.float32)
        weight = (rng.standard_normal((c, k, f, f)) / np.sqrt(c * f * f)).astype(np.float32)  # (C, K, fh, fw)
        kernel = np.ascontiguousarray(weight.transpose(2, 3, 1, 0))  # (fh, fw, K, C)
        y_nchw = np.ascontiguousarray(y.transpose(0, 3, 1, 2))
        y_t, weight_t = torch.from_numpy(y_nchw), torch.from_numpy(weight)
        out = torch.nn.functional.conv_transpose2d(y_t, weight_t, stride=s, padding=p, output_padding=op)
        grad = rng.standard_normal(out.shape).astype(np.float32)
        grad_t, grad_nhwc = torch.from_numpy(grad), np.ascontiguousarray(grad.transpose(0, 2, 3, 1))
        options = dict(strides=s, padding=p, output_padding=op)
        forward = race([
            lambda: torch.nn.functional.conv_transpose2d(y_t, weight_t, stride=s, padding=p, output_padding=op),
            lambda: convlayer.conv_transpose2d(y, kernel, **options),
            lambda: convlayer.conv_transpose2d(y_nchw, weight, data_format="channels_first", **options)])
        backward = race([
            lambda: torch.ops.aten.convolution_backward(grad_t, y_t, weight_t, [k], [s, s], [p, p], [1, 1], True,
                                                        [op, op], 1, [True, True, True]),
            lambda: convlayer.conv_transpose2d_backward(grad_nhwc, y, kernel, **options),
            lambda: convlayer.conv_transpose2d_backward(grad, y_nchw, weight, data_format="channels_first",
                                                        **options)])
        for label, (theirs, last, first) in (("forward", forward), ("backward", backward)):
            print(f"| {name} | {label} | {theirs * 1e3:.2f} | {last / theirs:.2f} | {first / theirs:.2f} |")


if __name__ == "__main__":
    main()
