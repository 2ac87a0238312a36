"""Time locally_connected2d forward + backward against a PyTorch unfold implementation.

Shape: 8x32x32x16 -> 16, 3x3 kernel, 'same' padding (a 32x32 grid of 3x3x16x16 kernels).
PyTorch has no locally-connected layer; the usual one is unfold (im2col) and one product
per output pixel (einsum), with autograd for the gradients. PyTorch gets convlayer's own
padding numbers (:func:`convlayer.shapes.resolve_padding`), and both are timed in this
process as ``convlayer bench`` times its peers (:func:`convlayer.bench.time_calls`, medians,
PyTorch on ``convlayer.bench.TORCH_THREADS`` threads).

Usage: python benchmarks/bench_sharing.py [--reps-time 0.3]
"""

import argparse

import numpy as np
import torch

import convlayer
from convlayer import bench, shapes

N, H, W, C, K, F = 8, 32, 32, 16, 16, 3
PADDING = "same"


def torch_locally_connected(x, weights, bias, pads):
    """unfold + one product per output pixel: x (n, c, h, w) -> (n, out_h, out_w, k)."""
    (top, bottom), (left, right) = pads
    padded = torch.nn.functional.pad(x, (left, right, top, bottom))
    patches = torch.nn.functional.unfold(padded, (F, F))  # (n, c * F * F, out_h * out_w)
    out = torch.einsum("npl,lpk->nlk", patches, weights)
    return out.reshape(x.shape[0], bias.shape[0], bias.shape[1], -1) + bias


def main(reps_time: float) -> None:
    torch.set_num_threads(bench.TORCH_THREADS)
    out_h, out_w = shapes.conv2d_output_shape((H, W, C), (F, F, C, K), padding=PADDING)[:2]
    pads = shapes.resolve_padding((H, W), (F, F), padding=PADDING)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, H, W, C), dtype=np.float32)
    kernel = rng.standard_normal((out_h, out_w, F, F, C, K), dtype=np.float32) * 0.1
    bias = np.zeros((out_h, out_w, K), np.float32)
    grad = rng.standard_normal((N, out_h, out_w, K), dtype=np.float32)

    def ours():
        out = convlayer.locally_connected2d(x, kernel, bias, padding=PADDING)
        convlayer.locally_connected2d_backward(grad, x, kernel, padding=PADDING)
        return out

    tx = torch.tensor(x).permute(0, 3, 1, 2).contiguous().requires_grad_()
    # unfold orders a patch (c, fh, fw), and its pixels row by row
    by_pixel = kernel.transpose(0, 1, 4, 2, 3, 5).reshape(out_h * out_w, C * F * F, K)
    weights = torch.tensor(by_pixel).requires_grad_()
    tb = torch.tensor(bias).requires_grad_()
    tgrad = torch.tensor(grad)

    def theirs():
        out = torch_locally_connected(tx, weights, tb, pads)
        out.backward(tgrad)
        return out

    difference = np.abs(ours() - theirs().detach().numpy()).max()
    medians = bench.time_calls({"convlayer": ours, "torch unfold": theirs}, reps_time)
    print(f"locally_connected2d {N}x{H}x{W}x{C} -> {K}, {F}x{F} {PADDING}, forward + backward, medians")
    for name, seconds in medians.items():
        print(f"  {name:13s} {seconds * 1e3:8.1f} ms")
    print(f"  ratio convlayer / torch: {medians['convlayer'] / medians['torch unfold']:.2f}"
          f"   (max |difference| of outputs {difference:.1e})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps-time", type=float, default=0.3, metavar="SECONDS",
                        help="timed seconds per contender (default 0.3)")
    main(parser.parse_args().reps_time)
