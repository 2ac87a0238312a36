"""The layer a ``convlayer filter`` run applies: kernels from names and files, bias, options.

Everything is checked here, before any image is read or any file written.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import _validate, kernels, shapes
from .._args import as_pair, padding_2d
from . import _parse

KERNEL_DTYPE = np.float32  # what the layer computes with: every kernel is cast to it


@dataclass
class LayerSpec:
    """A convolutional layer over ``c`` channels with one named output channel per filter.

    ``flat`` holds the 2-D filters when every filter is 2-D (named ones, 2-D kernel files):
    such a layer fits an image of any channel count (:meth:`for_channels`). With
    ``per_channel`` each filter is applied to every channel on its own (a depthwise layer,
    ``groups=c``): output channel ``j * k + i`` is filter ``i`` on channel ``j``.
    """

    kernel: np.ndarray  # (fh, fw, c, k), or (fh, fw, 1, c * k) per channel
    names: list  # one per filter; used in file names
    bias: "np.ndarray | None"
    options: dict = field(default_factory=dict)  # keyword arguments of conv2d
    relu: bool = False
    flat: "list | None" = None  # the 2-D filters, when the layer is made of them only
    per_channel: bool = False

    @property
    def fixed_channels(self) -> "int | None":
        """The input channels a kernel file fixes (None: the layer fits any image)."""
        return None if self.flat is not None else self.kernel.shape[2]

    def for_channels(self, c: int) -> "LayerSpec":
        """This layer over an image of ``c`` channels (the named filters repeated, or per channel)."""
        if self.flat is None or (self.channels == c):
            return self
        if self.per_channel:
            kernel = kernels.depthwise(self.flat, c, dtype=KERNEL_DTYPE)
            return replace(self, kernel=kernel, options={**self.options, "groups": c})
        return replace(self, kernel=kernels.stack(self.flat, c, dtype=KERNEL_DTYPE))

    @property
    def channels(self) -> int:
        """The input channels this layer's kernel is built for."""
        return self.options.get("groups", 1) if self.per_channel else self.kernel.shape[2]

    @property
    def conv_bias(self) -> "np.ndarray | None":
        """The bias conv2d adds: one per filter, or per filter and channel when per channel."""
        if self.bias is None or not self.per_channel:
            return self.bias
        return np.tile(self.bias, self.channels)

    def filter_maps(self, maps: np.ndarray, index: int) -> np.ndarray:
        """Filter ``index``'s result: one map, or (h', w', c) per channel."""
        return maps[..., index :: len(self.names)] if self.per_channel else maps[..., index]

    def titles(self) -> list[str]:
        """One panel title per output channel: its name, bias and ReLU."""
        biases = self.bias if self.bias is not None else np.zeros(len(self.names))
        return [f"{name} (bias {b:g}){', ReLU' if self.relu else ''}" for name, b in zip(self.names, biases)]

    def describe(self) -> dict:
        """The layer as JSON-ready values."""
        return {
            "kernel_shape": list(self.kernel.shape),
            "channels": self.names,
            **({"per_channel": "output channel j * k + i is filter i on input channel j alone"}
               if self.per_channel else {}),
            "bias": None if self.bias is None else self.bias.tolist(),
            "relu": self.relu,
            **{key: _jsonable(value) for key, value in self.options.items()},
            "parameters": self.num_params(),
        }

    def num_params(self) -> int:
        fh, fw, c_per_group, k = self.kernel.shape
        groups = self.options.get("groups", 1)
        return shapes.num_params((fh, fw), c_per_group * groups, k, bias=self.bias is not None, groups=groups)


def _jsonable(value):
    return [_jsonable(v) for v in value] if isinstance(value, tuple) else value


def build_layer(args) -> LayerSpec:
    """The layer described by the command line's -k, --kernel-file, --bias and options.

    Built for the channels of ``--mode`` (3 or 1); :meth:`LayerSpec.for_channels` fits it
    to each image.
    """
    channels = 3 if args.mode == "rgb" else 1
    parts = [_named(value, channels) if kind == "name" else load_kernel_file(Path(value), channels)
             for kind, value in args.filters]
    if not parts:
        raise ValueError("give at least one filter: -k NAME (e.g. -k edge) or --kernel-file F")
    sizes = {part.shape[:2] for part, _, _ in parts}
    if len(sizes) > 1:
        raise ValueError(f"all kernels must have one size (Fh, Fw) to form one layer; got {sorted(sizes)}")
    kernel = np.concatenate([part.astype(KERNEL_DTYPE) for part, _, _ in parts], axis=3)
    names = _unique([name for _, part_names, _ in parts for name in part_names])
    flat = [f for _, _, f in parts] if all(f is not None for _, _, f in parts) else None
    layer = LayerSpec(kernel, names, _bias(args.bias, len(names)), _options(args), bool(args.relu), flat)
    if getattr(args, "per_channel", False):
        mixing = [value for (_, value), (_, _, f) in zip(args.filters, parts) if f is None]
        layer = _per_channel(layer, channels, mixing)
    return layer


def _per_channel(layer: LayerSpec, channels: int, mixing: list) -> LayerSpec:
    """The depthwise form of a layer of 2-D filters (refused for kernel files of channels)."""
    if mixing:
        raise ValueError(f"--per-channel applies 2-D filters to each channel on its own; --kernel-file "
                         f"{', '.join(mixing)} has input channels (shape (Fh, Fw, C) or (Fh, Fw, C, K))")
    layer = replace(layer, per_channel=True, options={**layer.options, "groups": channels})
    return replace(layer, kernel=kernels.depthwise(layer.flat, channels, dtype=KERNEL_DTYPE))


def _named(name: str, channels: int) -> tuple[np.ndarray, list, np.ndarray]:
    """-k NAME: the named 2-D filter repeated over the channels, its name, the 2-D filter."""
    if name.lower() not in kernels.names():
        raise ValueError(f"-k {name!r}: unknown kernel; choose from {', '.join(kernels.names())}")
    return kernels.stack([name], channels), [name.lower()], kernels.get(name, KERNEL_DTYPE)


def _unique(names: list) -> list:
    """'edge', 'edge' -> 'edge', 'edge-2': every channel gets its own file."""
    seen, result = {}, []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        result.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return result


def _bias(values, count: int) -> "np.ndarray | None":
    if values is None:
        return None
    if len(values) != count:
        raise ValueError(f"--bias needs one value per output channel ({count}); got {len(values)}: {values}")
    bias = np.array(values, np.float32)
    if not np.isfinite(bias).all():
        raise ValueError(f"--bias must be finite numbers; got {values}")
    return bias


def _options(args) -> dict:
    """conv2d's keyword arguments, each checked now rather than at the first image."""
    options = {
        "strides": as_pair("strides", _parse.pair("strides", args.strides)),
        "padding": _parse.padding(args.padding),
        "dilation": as_pair("dilation", _parse.pair("dilation", args.dilation)),
        "pad_mode": _validate.pad_mode_name(_pad_mode(args)),  # PyTorch's names accepted too
        "flip": bool(args.flip),
    }
    padding_2d(options["padding"])
    return options


def _pad_mode(args) -> str:
    """--pad-mode, by default zeros, or the edge pixels repeated for --per-channel (an image editor's)."""
    if args.pad_mode is not None:
        return args.pad_mode
    return "edge" if getattr(args, "per_channel", False) else "constant"


def load_kernel_file(path: Path, channels: int) -> tuple[np.ndarray, list, "np.ndarray | None"]:
    """A kernel file as a (fh, fw, channels, k) layer kernel, its channel names, and the
    2-D filter when it is one (else None).

    ``.npy`` of shape (fh, fw) (one filter repeated over the channels, as ``-k`` does),
    (fh, fw, c) (one filter over c channels) or (fh, fw, c, k); any other file is read as
    a text matrix (spaces or commas) for one 2-D filter. The kernel is returned as
    :data:`KERNEL_DTYPE`; values that are not finite there (NaN, infinity, or finite values
    beyond its range, which the cast would turn into infinities) are refused.
    """
    array = _read_kernel_array(path)
    if array.ndim not in (2, 3, 4) or 0 in array.shape:
        raise ValueError(f"--kernel-file {path}: shape {array.shape} is not (Fh, Fw), (Fh, Fw, C) "
                         f"or (Fh, Fw, C, K)")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"--kernel-file {path}: dtype {array.dtype} is not a real number type")
    array = _as_kernel_dtype(array, path)
    flat = array if array.ndim == 2 else None
    if array.ndim == 2:
        array = kernels.stack([array], channels, dtype=KERNEL_DTYPE)
    elif array.ndim == 3:
        array = array[..., None]
    if array.shape[2] != channels:
        raise ValueError(f"--kernel-file {path}: shape {array.shape} has {array.shape[2]} input "
                         f"channels but the images have {channels} (--mode {'rgb' if channels == 3 else 'gray'})")
    k = array.shape[3]
    return array, [path.stem] if k == 1 else [f"{path.stem}{i}" for i in range(k)], flat


def _as_kernel_dtype(array: np.ndarray, path: Path) -> np.ndarray:
    """``array`` cast to :data:`KERNEL_DTYPE`, checked finite after the cast."""
    if not np.isfinite(array).all():
        raise ValueError(f"--kernel-file {path}: contains NaN or infinity")
    with np.errstate(over="ignore"):  # overflow is reported below, as one line
        cast = array.astype(KERNEL_DTYPE)
    if not np.isfinite(cast).all():
        largest = float(np.abs(array[~np.isfinite(cast)]).max())
        raise ValueError(f"--kernel-file {path}: values up to {largest:g} are beyond the range of "
                         f"{np.dtype(KERNEL_DTYPE).name}, the type the layer computes in "
                         f"(largest {np.finfo(KERNEL_DTYPE).max:.4g})")
    return cast


def _read_kernel_array(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ValueError(f"--kernel-file {path}: no such file")
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        text = path.read_text().replace(",", " ")
        with warnings.catch_warnings():  # "input contained no data": reported below, as one line
            warnings.simplefilter("ignore", UserWarning)
            array = np.loadtxt(io.StringIO(text), ndmin=2)
    except (OSError, ValueError, UnicodeDecodeError, EOFError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"--kernel-file {path}: not a readable kernel ({first})") from None
    if array.size == 0:
        raise ValueError(f"--kernel-file {path}: no numbers in the file (a text kernel is rows of "
                         f"numbers, separated by spaces or commas)")
    return array


def layer_title(layer: LayerSpec, in_shape, out_shape) -> str:
    """One line describing the layer for a figure title."""
    fh, fw, c, k = layer.kernel.shape
    options = layer.options
    strides = "x".join(map(str, options["strides"]))
    padding = options["padding"]
    kind = f"depthwise conv {fh}x{fw}, groups {layer.channels}," if layer.per_channel else f"conv {fh}x{fw}x{c}x{k}"
    text = (f"{'x'.join(map(str, in_shape))} -> {kind} "
            f"[{', '.join(layer.names)}], strides {strides}, padding {padding!r}")
    if options["dilation"] != (1, 1):
        text += f", dilation {'x'.join(map(str, options['dilation']))}"
    if options["pad_mode"] != "constant":
        text += f", pad mode {options['pad_mode']}"
    if options["flip"]:
        text += ", flipped"
    if layer.bias is not None:
        text += f", bias {[float(f'{b:g}') for b in layer.bias]}"
    if layer.relu:
        text += ", ReLU"
    return text + f" -> {'x'.join(map(str, out_shape))}, {layer.num_params():,} parameters"
