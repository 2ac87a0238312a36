"""Shared test helpers."""

from typing import NamedTuple

import numpy as np
import pytest

from convlayer import bench


def _work_memory(call):
    """Run ``call()``; return (peak bytes traced beyond the arrays it returns, its result).

    NumPy reports its allocations to tracemalloc, so this is the work memory the call used
    (:func:`convlayer.bench.work_memory`, which also gives back the kept work buffer first).
    ``call`` runs once untraced before, so lazy imports (SciPy's FFT) and thread pools are
    not counted.
    """
    call()
    return bench.work_memory(call)


@pytest.fixture
def work_memory():
    """``used, result = work_memory(call)``: see :func:`_work_memory`."""
    return _work_memory


# ----------------------------------------------------------------------------- float32 forward bound

U32 = 2.0**-24  # unit roundoff of float32


def _terms(layer) -> int:
    """How many rounded terms each output value of ``layer`` sums (0: exact in float32)."""
    from convlayer import nn

    if isinstance(layer, nn.Conv2D):  # every kind of sharing: one kernel's taps per output
        fh, fw = layer.kernel_size
        return fh * fw * layer.in_channels // layer.options["groups"] + layer.bias
    if isinstance(layer, nn.Conv2DTranspose):  # at most every tap of every input channel per output
        fh, fw = layer.kernel_size
        return fh * fw * layer.in_channels // layer.transpose_options["groups"] + layer.bias
    if isinstance(layer, nn.Dense):
        return layer.in_features + layer.bias
    if isinstance(layer, nn.AvgPool2D):  # the window's sum, then one division
        fh, fw = (layer.pool_size, layer.pool_size) if isinstance(layer.pool_size, int) else layer.pool_size
        return fh * fw + 1
    if isinstance(layer, nn.LPPool2D):  # float64 throughout, rounded once
        return 1
    if isinstance(layer, (nn.ReLU, nn.MaxPool2D, nn.Flatten, nn.Dropout, nn.AdaptiveMaxPool2D, nn.GlobalMaxPool2D,
                          nn.MaxUnpool2D)):
        return 0  # picks, copies or (at inference) the identity: no rounding
    raise TypeError(f"no float32 error count for {layer!r}; add one to tests/conftest.py")


def _float64_forward(model, x, absolute=False):
    """``model.forward(x)`` in float64 on a copy; with ``absolute``, on |x|, |W| and |b|."""
    import copy

    wide = copy.deepcopy(model)
    for layer in wide.layers:
        layer.params = {name: (np.abs(p) if absolute else p).astype(np.float64)
                        for name, p in layer.params.items()}
    x = np.asarray(x, np.float64)
    return wide.forward(np.abs(x) if absolute else x)


class ExactForward(NamedTuple):
    """The float64 forward pass and, per value, how far a float32 one may stray from it."""

    exact: np.ndarray
    bound: np.ndarray

    def check(self, got, label="") -> None:
        """Assert ``|got - exact| <= bound`` everywhere; name the worst value if not."""
        assert got.shape == self.exact.shape, (label, got.shape, self.exact.shape)
        error = np.abs(np.asarray(got, np.float64) - self.exact)
        worst = np.unravel_index(np.argmax(error - self.bound), error.shape)
        assert error[worst] <= self.bound[worst], (
            f"{label} at {worst}: |{got[worst]} - {self.exact[worst]}| = {error[worst]:.3g} exceeds "
            f"the float32 bound {self.bound[worst]:.3g}")


def _exact_forward(model, x) -> ExactForward:
    """The float64 forward pass and how far a float32 one may stray from it, per value.

    Each layer's float32 sum of n products errs by at most gamma_n = n u / (1 - n u) times
    the sum of |terms| (Higham, Accuracy and Stability, 3.1). ReLU and max-pool are monotone
    and 1-Lipschitz, the linear layers carry an error through |W|, so to first order the
    output errs by at most (sum over layers of n_l) * u times the same network run in float64
    on |x|, |W| and |b|: the bound is elementwise. It holds for any summation order, block
    plan or batch size (not for FFT or Winograd, whose error spreads over the whole output).
    The factor 2 covers 1 / (1 - n u) and the second-order terms (both below 1e-3 of the
    bound for n < 10**4) and the float64 reference's own rounding (2**-29 of it). A wrong tap,
    a lost bias or dropout left on moves a value by O(1) of its |terms| and still fails.
    """
    terms = sum(_terms(layer) for layer in model.layers)
    bound = 2 * terms * U32 * _float64_forward(model, x, absolute=True)
    return ExactForward(_float64_forward(model, x), bound)


@pytest.fixture
def exact_forward():
    """``exact_forward(model, x).check(got)``: see :func:`_exact_forward`."""
    return _exact_forward


# ----------------------------------------------------------------------------- Hypothesis profiles

try:
    from hypothesis import settings as _hypothesis_settings
except ImportError:  # pragma: no cover - hypothesis is a test extra; only test_properties.py needs it
    pass
else:
    import os as _os

    # "ci" (the default): the same examples on every run, few enough that tests/test_properties.py
    # takes about a minute on 2 cores. "fuzz" (HYPOTHESIS_PROFILE=fuzz, `make fuzz`): fresh
    # random examples each run, many more of them.
    _hypothesis_settings.register_profile("ci", derandomize=True, max_examples=100, deadline=None,
                                          print_blob=True)
    _hypothesis_settings.register_profile("fuzz", max_examples=2000, deadline=None, print_blob=True)
    _hypothesis_settings.load_profile(_os.environ.get("HYPOTHESIS_PROFILE", "ci"))
