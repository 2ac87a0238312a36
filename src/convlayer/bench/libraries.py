"""The peer libraries the suite times conv2d against, each behind one interface.

A peer's ``forward(case, x, kernel)`` and ``backward(case, x, kernel, grad)`` take the
suite's channels-last float32 arrays and return ``{name: call}``: zero-argument callables,
timed as they are, that compute on the peer's own copies of the data (layout changes,
padding and transfers to the device happen here, before the timing). A peer that cannot
compute a shape returns ``{}``.

- PyTorch: ``torch.nn.functional.conv2d`` with ``TORCH_THREADS`` threads, NCHW and
  channels_last (the suite keeps the better); the backward pass is
  ``torch.ops.aten.convolution_backward``, PyTorch's own gradient kernel. For the networks
  suite, ``layer_forward`` and ``layer_backward`` take a :class:`~.cases.Layer` and NCHW
  arrays and call PyTorch as the model does (its own padding argument, dilation, bias).
- JAX: ``jax.lax.conv_general_dilated``, jitted, NHWC and HWIO; the backward pass is
  ``jax.vjp`` of it, jitted. Inputs are put on the device beforehand and each call ends in
  ``block_until_ready()``, so its time is the computation, not its dispatch.
- SciPy: ``scipy.signal.correlate`` on the single-channel shapes (it picks direct or FFT).

Each peer gets the same padding numbers convlayer uses, from :mod:`convlayer.shapes`
(TensorFlow's 'same': the odd zero at the bottom/right), never a padding word of its own:
applied before the timed call for PyTorch, passed as ``(low, high)`` pairs to JAX.

Threads: PyTorch is held to 2 threads; JAX is left as a user gets it (holding it would take
``XLA_FLAGS`` set before JAX starts). XLA's CPU client starts its own threads (15 in a
JAX-only process on a 2-core machine) and, measured with JAX 0.10.2 over the suite, keeps
both cores busy on some shapes and one on others: CPU time / wall time between 0.9 and 2.0,
shape by shape. Before importing JAX, :func:`peers` sets ``JAX_PLATFORMS=cpu`` in
``os.environ`` when that variable is not already set, so that JAX stays on the CPU and does
not probe for accelerators (a probe that warns on a machine with a GPU and a CPU-only
jaxlib); it sets nothing else.

:func:`peers` imports the libraries when it is called; importing this module imports none.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Callable

from .. import shapes
from .cases import Case, Layer

TORCH_THREADS = 2


def tf_pads(case: Case) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) for the case, as convlayer resolves its padding."""
    return shapes.resolve_padding((case.h, case.w), (case.f, case.f), case.strides, case.padding)


class _Torch:
    """PyTorch's forward and backward on the same data, NCHW and channels_last."""

    def __init__(self, torch):
        self.torch = torch
        torch.set_num_threads(TORCH_THREADS)

    def _tensors(self, case: Case, x, kernel, channels_last: bool):
        torch = self.torch
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        (top, bottom), (left, right) = tf_pads(case)
        xt = torch.from_numpy(x).permute(0, 3, 1, 2)
        xt = torch.nn.functional.pad(xt, (left, right, top, bottom))
        wt = torch.from_numpy(kernel).permute(3, 2, 0, 1)
        return xt.contiguous(memory_format=fmt), wt.contiguous(memory_format=fmt)

    def forward(self, case: Case, x, kernel) -> dict:
        """TF padding applied beforehand (torch's 'same' refuses strides), so not timed."""
        calls = {}
        for name, channels_last in (("torch_nchw", False), ("torch_cl", True)):
            xt, wt = self._tensors(case, x, kernel, channels_last)
            calls[name] = self._forward_call(xt, wt, case)
        return calls

    def _forward_call(self, xt, wt, case: Case):
        conv = self.torch.nn.functional.conv2d
        return lambda: conv(xt, wt, stride=case.strides, groups=case.groups)

    def backward(self, case: Case, x, kernel, grad) -> dict:
        calls = {}
        for name, channels_last in (("torch_nchw", False), ("torch_cl", True)):
            xt, wt = self._tensors(case, x, kernel, channels_last)
            fmt = self.torch.channels_last if channels_last else self.torch.contiguous_format
            gt = self.torch.from_numpy(grad).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
            calls[name] = self._backward_call(gt, xt, wt, case)
        return calls

    def _backward_call(self, gt, xt, wt, case: Case):
        op = self.torch.ops.aten.convolution_backward
        stride = [case.strides] * 2
        return lambda: op(gt, xt, wt, None, stride, [0, 0], [1, 1], False, [0, 0], case.groups,
                          [True, True, False])

    def layer_forward(self, layer: Layer, x_nchw, kernel_oihw, bias) -> dict:
        """The network layer as its model calls it: NCHW arrays in, PyTorch's own padding."""
        conv, torch = self.torch.nn.functional.conv2d, self.torch
        bt = None if bias is None else torch.from_numpy(bias)
        calls = {}
        for name, fmt in (("torch_nchw", torch.contiguous_format), ("torch_cl", torch.channels_last)):
            xt, wt = (torch.from_numpy(a).contiguous(memory_format=fmt) for a in (x_nchw, kernel_oihw))
            calls[name] = (lambda xt=xt, wt=wt: conv(xt, wt, bt, layer.strides, layer.padding, layer.dilation,
                                                      layer.groups))
        return calls

    def layer_backward(self, layer: Layer, x_nchw, kernel_oihw, grad_nchw) -> dict:
        """Input and kernel gradients, and the bias's when the layer has one."""
        op, torch = self.torch.ops.aten.convolution_backward, self.torch
        bias_sizes = [layer.k] if layer.bias else None
        steps = [list(layer.strides), list(layer.padding), list(layer.dilation)]
        calls = {}
        for name, fmt in (("torch_nchw", torch.contiguous_format), ("torch_cl", torch.channels_last)):
            gt, xt, wt = (torch.from_numpy(a).contiguous(memory_format=fmt)
                          for a in (grad_nchw, x_nchw, kernel_oihw))
            calls[name] = (lambda gt=gt, xt=xt, wt=wt: op(gt, xt, wt, bias_sizes, *steps, False, [0, 0],
                                                           layer.groups, [True, True, layer.bias]))
        return calls


class _Jax:
    """JAX's forward and backward on the same data: NHWC and HWIO, jitted, on the CPU."""

    def __init__(self, jax):
        self.jax = jax
        self.device = jax.devices("cpu")[0]

    def conv(self, case: Case) -> Callable:
        """``lax.conv_general_dilated`` for the case, TF's 'same' as explicit (low, high) pads."""
        conv_general_dilated, pads = self.jax.lax.conv_general_dilated, tf_pads(case)
        return lambda x, kernel: conv_general_dilated(
            x, kernel, (case.strides, case.strides), pads,
            dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=case.groups)

    def forward(self, case: Case, x, kernel) -> dict:
        """Compiled by the first (warm-up) call; the arrays are on the device beforehand."""
        conv = self.jax.jit(self.conv(case))
        xj, kernelj = self.jax.device_put((x, kernel), self.device)
        return {"jax": lambda: conv(xj, kernelj).block_until_ready()}

    def backward(self, case: Case, x, kernel, grad) -> dict:
        """``jax.vjp`` of the jitted convolution with respect to (x, kernel), itself jitted."""
        jax = self.jax
        conv = jax.jit(self.conv(case))
        grads = jax.jit(lambda x, kernel, grad: jax.vjp(conv, x, kernel)[1](grad))
        xj, kernelj, gradj = jax.device_put((x, kernel, grad), self.device)
        return {"jax": lambda: jax.block_until_ready(grads(xj, kernelj, gradj))}


class _Scipy:
    """``scipy.signal.correlate`` on the single-channel shapes (it picks direct or FFT itself)."""

    def __init__(self, signal):
        self.signal = signal

    def forward(self, case: Case, x, kernel) -> dict:
        # scipy's 'same' centres an even kernel the other way from TensorFlow's
        if not case.n == case.c == case.k == case.strides == case.f % 2 == 1 or case.padding != "same":
            return {}
        image, filt = x[0, :, :, 0], kernel[:, :, 0, 0]
        return {"scipy": lambda: self.signal.correlate(image, filt, mode="same")}

    def backward(self, case: Case, x, kernel, grad) -> dict:
        return {}


def torch_peer() -> "_Torch | None":
    """The PyTorch peer (holding PyTorch to ``TORCH_THREADS`` threads), or None without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    return _Torch(torch)


def peers() -> dict:
    """The peers that can be imported here, by name: 'torch', 'jax', 'scipy'.

    Sets ``JAX_PLATFORMS=cpu`` in ``os.environ`` before importing JAX, unless it is set.
    """
    found: dict = {}
    torch = torch_peer()
    if torch is not None:
        found["torch"] = torch
    if importlib.util.find_spec("jax") is not None:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")  # the CPU, without probing for accelerators
        try:
            import jax
        except ImportError:
            pass
        else:
            found["jax"] = _Jax(jax)
    try:
        from scipy import signal
    except ImportError:
        pass
    else:
        found["scipy"] = _Scipy(signal)
    return found
