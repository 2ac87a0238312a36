"""Time locally_connected2d forward + backward against a PyTorch unfold implementation.

Shape: 8x32x32x16 -> 16, 3x3 kernel, 'same' padding (a 32x32 grid of 3x3x16x16 kernels).
PyTorch has no locally-connected layer; the usual one is unfold (im2col) and one product
per output pixel (einsum), with autograd for the gradients. Both run in this process,
interleaved, medians over repetitions; torch uses 2 threads.

Usage: python benchmarks/bench_sharing.py [--reps 15]
"""

import argparse
import statistics
import time

import numpy as np
import torch

import convlayer


def torch_locally_connected(x, weights, bias, fh, fw):
    n, c, h, w = x.shape
    patches = torch.nn.functional.unfold(x, (fh, fw), padding=(fh // 2, fw // 2))  # (n, c*fh*fw, h*w)
    out = torch.einsum("npl,lpk->nlk", patches, weights)
    return out.reshape(n, h, w, -1) + bias


def main(reps: int) -> None:
    torch.set_num_threads(2)
    n, h, w, c, k, f = 8, 32, 32, 16, 16, 3
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, h, w, c), dtype=np.float32)
    kernel = rng.standard_normal((h, w, f, f, c, k), dtype=np.float32) * 0.1
    bias = np.zeros((h, w, k), np.float32)
    grad = rng.standard_normal((n, h, w, k), dtype=np.float32)

    def ours():
        out = convlayer.locally_connected2d(x, kernel, bias, padding="same")
        convlayer.locally_connected2d_backward(grad, x, kernel, padding="same")
        return out

    tx = torch.tensor(x).permute(0, 3, 1, 2).contiguous().requires_grad_()
    weights = torch.tensor(kernel.transpose(0, 1, 4, 2, 3, 5).reshape(h * w, c * f * f, k)).requires_grad_()
    tb = torch.tensor(bias).requires_grad_()
    tgrad = torch.tensor(grad)

    def theirs():
        out = torch_locally_connected(tx, weights, tb, f, f)
        out.backward(tgrad)
        return out

    difference = np.abs(ours() - theirs().detach().numpy()).max()
    times = {"convlayer": [], "torch unfold": []}
    for _ in range(reps):
        for name, run in (("convlayer", ours), ("torch unfold", theirs)):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"locally_connected2d 8x32x32x16 -> 16, 3x3 same, forward + backward, median of {reps}")
    for name, ms in medians.items():
        print(f"  {name:13s} {ms:8.1f} ms")
    print(f"  ratio convlayer / torch: {medians['convlayer'] / medians['torch unfold']:.2f}"
          f"   (max |difference| of outputs {difference:.1e})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    main(parser.parse_args().reps)
