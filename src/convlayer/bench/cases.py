"""The shapes of the performance suite and the layers of the networks suite, and their data."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Case(NamedTuple):
    """One shape of the suite: ``n x h x w x c -> k``, an ``f x f`` kernel."""

    n: int
    h: int
    w: int
    c: int
    k: int
    f: int
    strides: int = 1
    padding: str = "same"
    groups: int = 1

    @property
    def name(self) -> str:
        text = f"{self.n}x{self.h}x{self.w}x{self.c}->{self.k} {self.f}x{self.f}"
        text += f" s{self.strides}" if self.strides > 1 else ""
        text += f" {self.padding}" if self.padding != "same" else ""
        return text + (f" g{self.groups}" if self.groups > 1 else "")

    @property
    def options(self) -> dict:
        return dict(strides=self.strides, padding=self.padding, groups=self.groups)


SUITE = [
    Case(1, 512, 512, 3, 2, 3),  # the tutorial's demo
    Case(1, 1024, 1024, 1, 1, 3),
    Case(1, 256, 256, 1, 1, 31),
    Case(8, 56, 56, 64, 64, 3),
    Case(8, 28, 28, 128, 128, 3),
    Case(8, 14, 14, 256, 256, 3),
    Case(8, 56, 56, 256, 64, 1, padding="valid"),
    Case(8, 224, 224, 3, 64, 7, strides=2),
    Case(8, 112, 112, 32, 32, 3, groups=32),
    Case(64, 8, 8, 1, 16, 3),
]


def inputs(case: Case, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """float32 x (n, h, w, c) and kernel (f, f, c // groups, k)."""
    x = rng.standard_normal((case.n, case.h, case.w, case.c), dtype=np.float32)
    kernel = rng.standard_normal((case.f, case.f, case.c // case.groups, case.k), dtype=np.float32)
    return x, kernel


def loops_case(cases) -> Case:
    """The shape for the tutorial's loops: the demo shape if it is among ``cases``, else the smallest."""
    if SUITE[0] in cases:
        return SUITE[0]
    return min(cases, key=lambda case: case.n * case.h * case.w * case.c * case.k * case.f**2)


class Layer(NamedTuple):
    """One convolutional layer of a network, as PyTorch's ``Conv2d`` runs it, at any batch size.

    Pairs are (vertical, horizontal). ``padding`` is PyTorch's: ``p_h`` zero rows on top and
    on the bottom, ``p_w`` zero columns on the left and on the right.
    """

    h: int
    w: int
    c: int
    k: int
    f: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: bool = False

    @classmethod
    def from_record(cls, record: dict) -> "Layer":
        """A layer from its JSON record (``benchmarks/record_networks.py`` writes them)."""
        pairs = {key: tuple(record[key]) for key in ("f", "strides", "padding", "dilation")}
        return cls(record["h"], record["w"], record["c"], record["k"], groups=record["groups"],
                   bias=record["bias"], **pairs)

    @property
    def name(self) -> str:
        """``h x w x c -> k``, the kernel, then what differs from the defaults.

        >>> Layer(112, 112, 32, 32, (3, 3), padding=(1, 1), groups=32).name
        '112x112x32->32 3x3 p1 g32'
        >>> Layer(56, 56, 64, 128, (1, 7), strides=(2, 1), padding=(0, 3), bias=True).name
        '56x56x64->128 1x7 s2,1 p0,3 bias'
        """
        text = f"{self.h}x{self.w}x{self.c}->{self.k} {self.f[0]}x{self.f[1]}"
        text += _pair(" s", self.strides, 1) + _pair(" p", self.padding, 0) + _pair(" d", self.dilation, 1)
        text += f" g{self.groups}" if self.groups > 1 else ""
        return text + (" bias" if self.bias else "")

    @property
    def options(self) -> dict:
        """conv2d's keywords, the padding as ``((top, bottom), (left, right))``."""
        p_h, p_w = self.padding
        return dict(strides=self.strides, padding=((p_h, p_h), (p_w, p_w)), dilation=self.dilation,
                    groups=self.groups)


def _pair(prefix: str, pair: tuple[int, int], default: int) -> str:
    if pair == (default, default):
        return ""
    return f"{prefix}{pair[0]}" if pair[0] == pair[1] else f"{prefix}{pair[0]},{pair[1]}"


def layer_inputs(layer: Layer, n: int, rng: np.random.Generator):
    """float32 x (n, h, w, c), kernel (fh, fw, c // groups, k) and bias (k,) or None."""
    x = rng.standard_normal((n, layer.h, layer.w, layer.c), dtype=np.float32)
    kernel = rng.standard_normal(layer.f + (layer.c // layer.groups, layer.k), dtype=np.float32)
    bias = rng.standard_normal(layer.k, dtype=np.float32) if layer.bias else None
    return x, kernel, bias
