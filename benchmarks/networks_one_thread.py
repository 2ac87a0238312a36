"""The recorded networks' conv layers on ONE thread on both sides, minimum over repeats.

`convlayer bench --suite networks` is the method (two threads, medians, pauses); on a shared
machine two-thread medians are noise (PyTorch's own times swung 2-50x between runs in the
session that wrote this). One thread and the fastest of several runs still compares the two
libraries' code on the same layers. Per layer and batch (1, 8): convlayer channels-last
against PyTorch's better layout, forward and backward (`aten.convolution_backward`); per
model the totals of count x time, their ratio and the worst layer.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/networks_one_thread.py out.json [fwd|both]
"""
import json
import sys
import timeit

import numpy as np
import threadpoolctl
import torch

import convlayer
from convlayer.algorithms import parallel
from convlayer.bench import networks
torch.set_num_threads(1); threadpoolctl.threadpool_limits(1); parallel.thread_count = lambda: 1
data = networks.recorded()
MODELS = ["resnet50", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "squeezenet1_1", "vgg16",
          "regnet_y_400mf", "shufflenet_v2_x1_0", "resnext50_32x4d", "convnext_tiny"]
passes = ("fwd", "bwd") if (len(sys.argv) < 3 or sys.argv[2] == "both") else ("fwd",)
used = sorted({i for m in MODELS for i, _ in data["models"][m]})
rng = np.random.default_rng(0)
cb = torch.ops.aten.convolution_backward
def best(f):
    f(); t = min(timeit.repeat(f, number=1, repeat=3))
    n = max(1, int(0.02 / max(t, 1e-6)))
    return min(timeit.repeat(f, number=n, repeat=5)) / n
times = {}
for batch in (1, 8):
    for i in used:
        L = data["layers"][i]; fh, fw = L["f"]; g = L["groups"]; (ph, pw) = L["padding"]
        x = rng.standard_normal((batch, L["h"], L["w"], L["c"]), dtype=np.float32)
        k = rng.standard_normal((fh, fw, L["c"] // g, L["k"]), dtype=np.float32)
        b = rng.standard_normal(L["k"], dtype=np.float32) if L["bias"] else None
        o = dict(strides=tuple(L["strides"]), padding=((ph, ph), (pw, pw)), dilation=tuple(L["dilation"]), groups=g)
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))); wt = torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))
        bt = torch.from_numpy(b) if b is not None else None; xl = xt.contiguous(memory_format=torch.channels_last)
        to = dict(stride=L["strides"], padding=L["padding"], dilation=L["dilation"], groups=g)
        row = {"conv_fwd": best(lambda: convlayer.conv2d(x, k, b, **o)),
               "torch_fwd": min(best(lambda: torch.nn.functional.conv2d(a, wt, bt, **to)) for a in (xt, xl))}
        if "bwd" in passes:
            y = convlayer.conv2d(x, k, **o); gy = rng.standard_normal(y.shape, dtype=np.float32)
            gt = torch.from_numpy(np.ascontiguousarray(gy.transpose(0, 3, 1, 2))); gl = gt.contiguous(memory_format=torch.channels_last)
            mask = [True, True, b is not None]
            row["conv_bwd"] = best(lambda: convlayer.conv2d_backward(gy, x, k, **o))
            row["torch_bwd"] = min(best(lambda: cb(gg, a, wt, [L["k"]] if b is not None else None, L["strides"], L["padding"],
                                                   L["dilation"], False, [0, 0], g, mask)) for gg, a in ((gt, xt), (gl, xl)))
        times[f"{batch}:{i}"] = row
        print(batch, i, {kk: round(v * 1e3, 3) for kk, v in row.items()}, flush=True)
report = {"times": times, "models": {}}
for m in MODELS:
    for batch in (1, 8):
        for p in passes:
            c = sum(n * times[f"{batch}:{i}"][f"conv_{p}"] for i, n in data["models"][m])
            t = sum(n * times[f"{batch}:{i}"][f"torch_{p}"] for i, n in data["models"][m])
            worst = max((times[f"{batch}:{i}"][f"conv_{p}"] / times[f"{batch}:{i}"][f"torch_{p}"], i) for i, _ in data["models"][m])
            report["models"][f"{m} b{batch} {p}"] = dict(ratio=c / t, conv_ms=c * 1e3, torch_ms=t * 1e3, worst_layer=worst)
            print(f"{m:<20} b{batch} {p}: convlayer/torch {c / t:.2f} (worst layer {worst[0]:.2f}, #{worst[1]})")
json.dump(report, open(sys.argv[1], "w"), indent=1)
