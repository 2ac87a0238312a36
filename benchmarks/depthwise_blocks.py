"""depthwise.pixel_block's rule against one output pixel at a time, on the recorded networks'
depthwise layers, ONE thread on both sides, minimum over repeats (as networks_one_thread.py).

Per model and batch (1, 8): the depthwise layers' totals (count x time) with the rule, with
one pixel at a time (``pixel_block`` forced to 1 and ``FIXED_MIN_CHANNELS`` back at 24, the
loop before the blocks), and PyTorch's (better layout), measured alternately in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/depthwise_blocks.py
"""
import timeit

import numpy as np
import threadpoolctl
import torch

import convlayer
from convlayer.algorithms import depthwise, parallel
from convlayer.bench import libraries, networks
from convlayer.bench.cases import Layer, layer_inputs

TORCH = libraries.torch_peer()  # sets PyTorch's threads: held to one just below
torch.set_num_threads(1); threadpoolctl.threadpool_limits(1); parallel.thread_count = lambda: 1
MODELS = ["mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "shufflenet_v2_x1_0", "convnext_tiny"]
RULES = {"blocks": (depthwise.pixel_block, depthwise.FIXED_MIN_CHANNELS), "one pixel": (lambda geom: 1, 24)}
data = networks.recorded()


def best(f):
    f(); t = min(timeit.repeat(f, number=1, repeat=3))
    n = max(1, int(0.02 / max(t, 1e-6)))
    return min(timeit.repeat(f, number=n, repeat=5)) / n


def layer_times(layer: Layer, batch, rng):
    x, kernel, bias = layer_inputs(layer, batch, rng)
    times = dict.fromkeys(RULES, 1.0)
    for _ in range(2):  # alternately, twice
        for name, (block, minimum) in RULES.items():
            depthwise.pixel_block, depthwise.FIXED_MIN_CHANNELS = block, minimum
            times[name] = min(times[name], best(lambda: convlayer.conv2d(x, kernel, bias, **layer.options)))
    depthwise.pixel_block, depthwise.FIXED_MIN_CHANNELS = RULES["blocks"]
    x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    kernel_oihw = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
    times["torch"] = min(best(call) for call in TORCH.layer_forward(layer, x_nchw, kernel_oihw, bias).values())
    return times


def main():
    rng = np.random.default_rng(0)
    for batch in (1, 8):
        times = {}
        for model in MODELS:
            totals = dict.fromkeys(list(RULES) + ["torch"], 0.0)
            for i, count in data["models"][model]:
                layer = Layer.from_record(data["layers"][i])
                if not layer.groups == layer.c == layer.k > 1:
                    continue
                if i not in times:
                    times[i] = layer_times(layer, batch, rng)
                for name in totals:
                    totals[name] += count * times[i][name] * 1e3
            print(f"{model:<20} b{batch} depthwise ms: blocks {totals['blocks']:.2f}, one pixel {totals['one pixel']:.2f} "
                  f"({totals['blocks'] / totals['one pixel']:.2f}), torch {totals['torch']:.2f} "
                  f"(blocks / torch {totals['blocks'] / totals['torch']:.2f})", flush=True)


if __name__ == "__main__":
    main()
