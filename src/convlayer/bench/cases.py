"""The shapes of the performance suite, and the data each one runs on."""

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
