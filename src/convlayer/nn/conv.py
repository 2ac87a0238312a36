"""Convolution layers: ``Conv2D`` with any kind of weight sharing, its named forms, and
``Conv2DTranspose``.

``LocallyConnected2D``, ``RegionConv2D`` and ``TiledConv2D`` are ``Conv2D`` with
``sharing='unshared' | 'regions' | 'tiled'``: one class, because they are one idea (the same
patches, a different choice of kernel per output pixel), under the names readers know.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import shapes
from .. import sharing as sharing_ops
from ..transposed import conv_transpose2d, conv_transpose2d_backward
from .._args import as_int, as_pair
from . import init
from .init import as_generator
from .layers import Layer


class Conv2D(Layer):
    """A 2D convolution layer, with any kind of weight sharing.

    ``sharing='shared'`` (the default) is ``conv2d(x, kernel, bias, ...)`` with a learned
    kernel and bias; the other kinds are the layers of the weight-sharing spectrum, also
    available under their own names: :class:`TiledConv2D` ('tiled'), :class:`RegionConv2D`
    ('regions') and :class:`LocallyConnected2D` ('unshared'). One class, because they are one
    idea: the same patches, a different choice of kernel per output pixel.

    Parameters
    ----------
    in_channels, out_channels : int
        ``C`` and ``K``.
    kernel_size : int or (int, int)
    strides, padding, dilation, groups
        As for :func:`convlayer.conv2d` (dilation and groups only with shared weights).
    bias : bool
        Learn a bias per output channel (and per bank when weights are not shared).
    sharing : {'shared', 'tiled', 'regions', 'unshared'}
    banks : (int, int), optional
        The tile period ``(T_h, T_w)`` for 'tiled', the regions ``(R_h, R_w)`` for 'regions'.
    input_size : (int, int), optional
        ``(H, W)`` of the input, for 'unshared' (the output grid sets the kernel's size).
    init : {'auto', 'he', 'glorot'}
        Weight initialisation: He (normal, std ``sqrt(2 / fan_in)``) suits a layer followed by
        ReLU, Glorot (uniform) one that is not. 'auto' is He unless a ``Sequential`` finds no
        ReLU after the layer. Biases start at zero.
    seed : int or numpy.random.Generator, optional
        For the initial weights.

    Examples
    --------
    >>> layer = Conv2D(3, 8, kernel_size=3, strides=2, seed=0)
    >>> layer
    Conv2D(3, 8, kernel_size=3, strides=2)
    >>> layer.forward(np.zeros((2, 32, 32, 3), np.float32)).shape
    (2, 16, 16, 8)
    >>> layer.num_params == (3 * 3 * 3 + 1) * 8
    True
    """

    def __init__(self, in_channels, out_channels, kernel_size, strides=1, padding="same", dilation=1,
                 groups=1, bias=True, *, sharing="shared", banks=None, input_size=None, init="auto",
                 seed=None):
        super().__init__()
        self.in_channels = as_int("in_channels", in_channels, minimum=1)
        self.out_channels = as_int("out_channels", out_channels, minimum=1)
        self.kernel_size = as_pair("kernel_size", kernel_size)
        self.options = dict(strides=strides, padding=padding, dilation=dilation, groups=groups)
        shapes.num_params(self.kernel_size, self.in_channels, self.out_channels, groups=groups)  # checks
        self.sharing = sharing
        self.banks = self._resolve_banks(sharing, banks, input_size)
        self.input_size = None if input_size is None else as_pair("input_size", input_size)
        self.bias, self.init = bool(bias), init
        self._raw_kernel_size, self._x = kernel_size, None
        self.initialize(as_generator(seed), followed_by_relu=init != "glorot")

    def _resolve_banks(self, sharing, banks, input_size) -> "tuple[int, int] | None":
        """The grid of kernel banks (rows, cols): None for shared weights."""
        if shapes.check_sharing(sharing) == "shared":
            return None
        if self.options["dilation"] != 1 or self.options["groups"] != 1:
            raise ValueError(f"sharing={sharing!r} takes no dilation or groups; got dilation="
                             f"{self.options['dilation']!r}, groups={self.options['groups']!r}")
        if sharing != "unshared":
            keyword = shapes.BANK_GRIDS[sharing].keyword
            if banks is None:
                raise ValueError(f"sharing={sharing!r} needs {keyword}=(rows, cols); got None")
            return as_pair(keyword, banks)
        if input_size is None:
            raise ValueError("sharing='unshared' needs input_size=(H, W) to size its output grid; got None")
        h, w = as_pair("input_size", input_size)
        fh, fw = self.kernel_size
        grid = shapes.conv2d_output_shape((h, w, self.in_channels), (fh, fw, self.in_channels, 1),
                                          self.options["strides"], self.options["padding"])
        return grid[0], grid[1]

    def _kernel_shape(self) -> tuple:
        fh, fw = self.kernel_size
        shared = (fh, fw, self.in_channels // self.options["groups"], self.out_channels)
        return shared if self.banks is None else self.banks + shared

    def initialize(self, rng, followed_by_relu=True) -> None:
        fh, fw = self.kernel_size
        shape = self._kernel_shape()
        scheme = self.init if self.init != "auto" else ("he" if followed_by_relu else "glorot")
        groups = self.options["groups"]
        self.params = {"kernel": init.weights(rng, shape, scheme, fan_in=fh * fw * shape[-2],
                                              fan_out=fh * fw * self.out_channels // groups)}
        if self.bias:
            banks = () if self.banks is None else self.banks
            self.params["bias"] = np.zeros(banks + (self.out_channels,), np.float32)
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}

    def forward(self, x, training=False):
        self._x = x
        if self.banks is None:
            return F.conv2d(x, self.params["kernel"], self.params.get("bias"), **self.options)
        op = _SHARING_OPS[self.sharing][0]
        return op(x, self.params["kernel"], self.params.get("bias"), strides=self.options["strides"],
                  padding=self.options["padding"])

    def backward(self, grad):
        if self.banks is None:
            grads = F.conv2d_backward(grad, self._x, self.params["kernel"], **self.options)
        else:
            op = _SHARING_OPS[self.sharing][1]
            grads = op(grad, self._x, self.params["kernel"], strides=self.options["strides"],
                       padding=self.options["padding"])
        self.grads["kernel"] = grads.grad_kernel
        if self.bias:
            self.grads["bias"] = grads.grad_bias
        return grads.grad_x

    def output_shape(self, input_shape):
        if self.sharing == "unshared" and tuple(input_shape[:2]) != self.input_size:
            raise ValueError(f"{self!r} was built for inputs of size {self.input_size}; got input "
                             f"shape {tuple(input_shape)}")
        fh, fw = self.kernel_size
        kernel_shape = (fh, fw, self.in_channels // self.options["groups"], self.out_channels)
        return shapes.conv2d_output_shape(input_shape, kernel_shape, self.options["strides"],
                                          self.options["padding"], self.options["dilation"],
                                          groups=self.options["groups"])

    @property
    def num_params(self) -> int:
        extra = {} if self.banks is None else {shapes.BANK_GRIDS[self.sharing].keyword: self.banks}
        return shapes.num_params(self.kernel_size, self.in_channels, self.out_channels, bias=self.bias,
                                 groups=self.options["groups"], sharing=self.sharing, **extra)

    _defaults = dict(strides=1, padding="same", dilation=1, groups=1)

    def config(self):
        common = {"in_channels": self.in_channels, "out_channels": self.out_channels,
                  "kernel_size": self._raw_kernel_size}
        if type(self) is not Conv2D:  # the named forms: their bank keyword, no dilation or groups
            options = {k: self.options[k] for k in ("strides", "padding")}
            return {**common, **self._bank_arguments(), **options, "bias": self.bias, "init": self.init}
        banks = {"sharing": self.sharing, "banks": self.banks, "input_size": self.input_size}
        return {**common, **self.options, "bias": self.bias, **banks, "init": self.init}

    def _arguments(self):
        shown = {0: self.in_channels, 1: self.out_channels, "kernel_size": self._raw_kernel_size}
        shown.update(self._bank_arguments())
        shown.update({k: v for k, v in self.options.items() if v != self._defaults[k]})
        if not self.bias:
            shown["bias"] = False
        return shown

    def _bank_arguments(self) -> dict:
        if self.sharing == "shared":
            return {}
        bank = {"input_size": self.input_size} if self.sharing == "unshared" else {"banks": self.banks}
        return {"sharing": self.sharing, **bank}


class LocallyConnected2D(Conv2D):
    """No weight sharing: every output pixel has its own kernel and bias (as in DeepFace).

    ``Conv2D(..., sharing='unshared', input_size=...)`` under its usual name; the default
    padding is 'valid', as in Keras. The parameter count is a convolution's times the
    number of output pixels.

    >>> LocallyConnected2D(1, 4, 3, input_size=(8, 8)).num_params == (3 * 3 * 1 + 1) * 4 * 6 * 6
    True
    """

    _defaults = dict(strides=1, padding="valid", dilation=1, groups=1)

    def __init__(self, in_channels, out_channels, kernel_size, input_size, strides=1, padding="valid",
                 bias=True, *, init="auto", seed=None):
        super().__init__(in_channels, out_channels, kernel_size, strides, padding, bias=bias,
                         sharing="unshared", input_size=input_size, init=init, seed=seed)

    def _bank_arguments(self):
        return {"input_size": self.input_size}


class RegionConv2D(Conv2D):
    """One kernel bank per region of the output grid (as in DeepID): ``regions=(R_h, R_w)``.

    >>> RegionConv2D(1, 4, 3, regions=(2, 2)).num_params == (3 * 3 * 1 + 1) * 4 * 4
    True
    """

    def __init__(self, in_channels, out_channels, kernel_size, regions, strides=1, padding="same",
                 bias=True, *, init="auto", seed=None):
        super().__init__(in_channels, out_channels, kernel_size, strides, padding, bias=bias,
                         sharing="regions", banks=regions, init=init, seed=seed)

    def _bank_arguments(self):
        return {"regions": self.banks}


class TiledConv2D(Conv2D):
    """Tiled weight sharing (Le et al., 2010): pixels ``tiles=(T_h, T_w)`` apart share a kernel.

    >>> TiledConv2D(1, 4, 3, tiles=2).num_params == (3 * 3 * 1 + 1) * 4 * 4
    True
    """

    def __init__(self, in_channels, out_channels, kernel_size, tiles, strides=1, padding="same",
                 bias=True, *, init="auto", seed=None):
        super().__init__(in_channels, out_channels, kernel_size, strides, padding, bias=bias,
                         sharing="tiled", banks=tiles, init=init, seed=seed)

    def _bank_arguments(self):
        return {"tiles": self.banks}


_SHARING_OPS = {
    "tiled": (sharing_ops.tiled_conv2d, sharing_ops.tiled_conv2d_backward),
    "regions": (sharing_ops.region_conv2d, sharing_ops.region_conv2d_backward),
    "unshared": (sharing_ops.locally_connected2d, sharing_ops.locally_connected2d_backward),
}


class Conv2DTranspose(Layer):
    """A 2D transposed convolution layer (decoders, U-Nets, GANs): :func:`convlayer.conv_transpose2d`
    with a learned kernel and bias.

    Parameters
    ----------
    in_channels, out_channels : int
        ``C`` (the input's) and ``K`` (the output's).
    kernel_size : int or (int, int)
    strides, padding, output_padding, dilation, groups
        As for :func:`convlayer.conv_transpose2d`: 'same' multiplies the size by the
        stride; PyTorch's ``ConvTranspose2d(..., padding=1, output_padding=1)`` is
        ``padding=1, output_padding=1``.
    bias : bool
        Learn a bias per output channel.
    init : {'auto', 'he', 'glorot'}
        As for :class:`Conv2D`, with Keras's fans for the kernel ``(fh, fw, K/groups, C)``:
        ``fan_in = fh * fw * K / groups``, ``fan_out = fh * fw * C / groups``.
    seed : int or numpy.random.Generator, optional

    Examples
    --------
    >>> layer = Conv2DTranspose(8, 4, kernel_size=3, strides=2, seed=0)
    >>> layer
    Conv2DTranspose(8, 4, kernel_size=3, strides=2)
    >>> layer.forward(np.zeros((2, 16, 16, 8), np.float32)).shape
    (2, 32, 32, 4)
    >>> layer.params["kernel"].shape, layer.num_params == 3 * 3 * 4 * 8 + 4
    ((3, 3, 4, 8), True)
    """

    _defaults = dict(strides=1, padding="same", output_padding=None, dilation=1, groups=1)

    def __init__(self, in_channels, out_channels, kernel_size, strides=1, padding="same", output_padding=None,
                 dilation=1, groups=1, bias=True, *, init="auto", seed=None):
        super().__init__()
        self.in_channels = as_int("in_channels", in_channels, minimum=1)
        self.out_channels = as_int("out_channels", out_channels, minimum=1)
        self.kernel_size = as_pair("kernel_size", kernel_size)
        # Not ``options``: receptive_field reads that as a forward convolution's window.
        self.transpose_options = dict(strides=strides, padding=padding, output_padding=output_padding,
                                      dilation=dilation, groups=groups)
        shapes.num_params(self.kernel_size, self.in_channels, self.out_channels, groups=groups)  # checks
        self.bias, self.init = bool(bias), init
        self._raw_kernel_size, self._x = kernel_size, None
        self.initialize(as_generator(seed), followed_by_relu=init != "glorot")

    def initialize(self, rng, followed_by_relu=True) -> None:
        fh, fw = self.kernel_size
        groups = self.transpose_options["groups"]
        shape = (fh, fw, self.out_channels // groups, self.in_channels)
        scheme = self.init if self.init != "auto" else ("he" if followed_by_relu else "glorot")
        self.params = {"kernel": init.weights(rng, shape, scheme, fan_in=fh * fw * self.out_channels // groups,
                                              fan_out=fh * fw * self.in_channels // groups)}
        if self.bias:
            self.params["bias"] = np.zeros(self.out_channels, np.float32)
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}

    def forward(self, x, training=False):
        self._x = x
        return conv_transpose2d(x, self.params["kernel"], self.params.get("bias"), **self.transpose_options)

    def backward(self, grad):
        grads = conv_transpose2d_backward(grad, self._x, self.params["kernel"], **self.transpose_options)
        self.grads["kernel"] = grads.grad_kernel
        if self.bias:
            self.grads["bias"] = grads.grad_bias
        return grads.grad_x

    def output_shape(self, input_shape):
        fh, fw = self.kernel_size
        kernel_shape = (fh, fw, self.out_channels // self.transpose_options["groups"], self.in_channels)
        options = self.transpose_options
        return shapes.conv_transpose2d_output_shape(input_shape, kernel_shape, options["strides"], options["padding"],
                                                    options["output_padding"], None, options["dilation"],
                                                    groups=options["groups"])

    @property
    def num_params(self) -> int:
        """``fh * fw * (K / groups) * C`` weights and ``K`` biases: conv2d's count, ``(fh * fw *
        C / groups + 1) * K``, for the same kernel read the other way round."""
        return shapes.num_params(self.kernel_size, self.in_channels, self.out_channels, bias=self.bias,
                                 groups=self.transpose_options["groups"])

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self._raw_kernel_size, **self.transpose_options, "bias": self.bias,
                "init": self.init}

    def _arguments(self):
        shown = {0: self.in_channels, 1: self.out_channels, "kernel_size": self._raw_kernel_size}
        shown.update({k: v for k, v in self.transpose_options.items() if v != self._defaults[k]})
        if not self.bias:
            shown["bias"] = False
        return shown
