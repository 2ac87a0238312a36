"""Squeeze-and-excitation blocks run as one node.

A squeeze-excite block (EfficientNet, MobileNetV3, RegNetY, ...) is four ONNX nodes on
the way to one per-channel scale::

    g = GlobalAveragePool(x)          # (n, c, 1, 1)
    h = Conv(g, W1, B1) + activation  # 1x1: a dense layer on the means
    s = Conv(h, W2, B2) + activation  # 1x1, usually a Sigmoid or HardSigmoid
    y = Mul(x, s)                     # every channel of x times its scale

Run node by node, the two convolutions and the small arrays between them cost far more
than their arithmetic: each node passes the runner, the convolution's checks and its
routing, on caches just emptied by the layer before (efficientnet_b0 at batch 1: 75 us a
1x1 convolution of a 1x1 image, 100 us the pooling, 80 us the Mul, 16 blocks).
:func:`fuse` makes each such chain one node of domain :data:`DOMAIN`, run by :func:`run`:
the means, two matrix products with their bias and activation (the same NumPy products
and activation passes as the Conv nodes', so the same values), and one multiply, written
over x where no later node reads it. The original nodes stay in the node's ``_parts``:
a traced run (``model.summary()``) runs them one by one, so the table shows every layer.

Where x is the output of a Conv with a Sigmoid, Swish, HardSigmoid or HardSwish (the
depthwise layer before every block of efficientnet_b0, most of mobilenet_v3_large's) and
only the block reads it, the node takes that Conv in too: the Conv's activation pass
writes each output row's channel sums as it goes (:func:`.spatial.conv_and_means`), so
the means need no pass of their own over x. The pooling had cost 1.4 ms of
efficientnet_b0's batch-1 run of about 21 (its 16 blocks). Where the block's output is read
only by a 1x1 Conv (the projection after every block of efficientnet_b0 and
mobilenet_v3_large), the node takes that Conv in as well, and the scale goes into each
image's weights instead of over x where that is the smaller multiply (:func:`_project`).
"""

from __future__ import annotations

import numpy as np

from .. import pooling
from ..algorithms import compiled, layout
from .elementwise import CLAMPS, compiled_parameters
from .spatial import conv as conv_node
from .spatial import conv_and_means, summing

DOMAIN = "convlayer"
OP = "SqueezeExcite"


def fuse(graph, readers: dict) -> None:
    """Make each GlobalAveragePool -> Conv -> Conv -> Mul chain of ``graph`` (nodes in run
    order, kernels laid out) whose intermediate values only the next node reads one node;
    with the Conv before it (the block's x) where only the block reads x and that Conv's
    activation pass can sum its output (:func:`.spatial.summing`), and with the 1x1 Conv
    after it where only that Conv reads the block's output (:func:`_projection`)."""
    producer = {out: node for node in graph.nodes for out in node.outputs}
    consumer = {name: node for node in graph.nodes for name in node.inputs}
    outputs = {t.name for t in graph.outputs}
    fused = set()
    for index, node in enumerate(graph.nodes):
        chain = _chain(node, producer, readers, outputs) if node.op == "Mul" and len(node.inputs) == 2 else None
        if chain is None:
            continue
        x, y = chain[0].inputs[0], node.outputs[0]
        before, after = producer.get(x), consumer.get(y)
        summed = before is not None and readers.get(x) == 2 and x not in outputs and summing(before)
        projected = readers.get(y) == 1 and y not in outputs and _projection(after)
        chain = [before] * summed + chain + [after] * projected
        attrs = {"_parts": chain, "_summed": summed, "_projected": projected}
        inputs = list(before.inputs) if summed else [x]
        fused_node = type(node)(node.name, OP, inputs, list(chain[-1].outputs), attrs, DOMAIN)
        graph.nodes[graph.nodes.index(after) if projected else index] = fused_node
        fused.update(id(part) for part in chain if part is not (after if projected else node))
    graph.nodes = [node for node in graph.nodes if id(node) not in fused]


def _projection(node) -> bool:
    """Whether ``node`` is a 1x1 Conv the block's scale can go into (:func:`_project`): a
    dense layer (:func:`_dense`) at stride 1 with no activation of its own."""
    return (_dense(node) and tuple(node.attrs.get("strides", (1, 1))) == (1, 1) and "_activation" not in node.attrs
            and node.attrs.get("auto_pad", "NOTSET") in ("NOTSET", "VALID"))


def _chain(mul, producer, readers, outputs):
    """``[pool, first, second, mul]`` where ``mul`` ends a squeeze-excite block, else None."""
    for position in (0, 1):
        second = producer.get(mul.inputs[position])
        first = producer.get(second.inputs[0]) if _dense(second) else None
        pool = producer.get(first.inputs[0]) if _dense(first) else None
        if (pool is None or pool.op != "GlobalAveragePool" or pool.inputs[0] != mul.inputs[1 - position]
                or any(readers.get(n.outputs[0]) != 1 or n.outputs[0] in outputs for n in (pool, first, second))):
            continue
        return [pool, first, second, mul]
    return None


def _dense(node) -> bool:
    """Whether ``node`` is a Conv that is a dense layer on a 1x1 image: a laid-out 1x1
    kernel, one group, no padding."""
    if node is None or node.op != "Conv" or "_kernel" not in node.attrs or node.attrs.get("group", 1) != 1:
        return False
    pads = node.attrs.get("pads", (0, 0, 0, 0))
    bias = node.inputs[2] if len(node.inputs) > 2 else ""
    return (node.attrs["_kernel"].shape[:2] == (1, 1) and not any(pads)
            and (not bias or "_bias" in node.attrs))


def run(node, x: np.ndarray, owned: bool, *constants) -> np.ndarray:
    """The block's output for ``x`` (n, h, w, c), channels-last; written over x if ``owned``.
    A block that begins with its Conv takes that Conv's input as x and its weights (and
    bias) as ``constants``; the Conv's output, its own new array, is written over. A block
    that ends with a 1x1 Conv returns that Conv's output (:func:`_project`)."""
    parts, summed = node.attrs["_parts"], node.attrs["_summed"]
    if summed:
        x, means = conv_and_means(parts[0], x, *constants)
        owned = True
    else:
        means = pooling.global_avg_pool2d(x)
    _, first, second, _ = parts[summed : summed + 4]
    scale = _dense_layer(second, _dense_layer(first, means))
    if node.attrs["_projected"]:
        return _project(parts[-1], x, scale, owned)
    return _scaled(x, scale, owned)


def _scaled(x, scale, owned: bool) -> np.ndarray:
    """x times its images' channel scales ``(n, c)``, written over x if ``owned``."""
    scale = scale.reshape(scale.shape[0], 1, 1, scale.shape[1])
    if owned and np.result_type(x, scale) == x.dtype:
        return np.multiply(x, scale, out=x)
    return x * scale


def _project(conv, x, scale, owned: bool) -> np.ndarray:
    """1x1 Conv node ``conv`` applied to x times ``scale`` (n, c).

    Where an image has at least as many pixels as the Conv has filters (and, for several
    images, at least :data:`PROJECT_MIN_PIXELS`), the scale goes into the weights instead
    of x: image ``i``'s product is ``x[i] @ (scale[i] * W)``, a ``(c, k)`` multiply in place
    of a pass over the image (float32, a C-contiguous x), and the bias is added after as by
    the Conv's own route. Otherwise x is scaled (:func:`_scaled`) and the Conv node runs on
    it. efficientnet_b0's 16 blocks, each from its Conv through the 1x1 Conv after it, on
    its own inputs (hot), alternating with the block and Conv apart: batch 1 12.8-13.1 ->
    11.4-12.1 ms, batch 8 52.1-55.4 -> 47.5-52.3 (the 112x112 block 6.2-6.9 -> 4.7-4.8 ms;
    at 14x14, 196 pixels, eight products of one image each took 1.1-1.2x the time of one
    product for the batch after the pass: hence the minimum).
    """
    n, h, w, c = x.shape
    kernel = conv.attrs["_kernel"]
    k, pixels = kernel.shape[3], h * w
    enough = pixels >= k and (n == 1 or pixels >= PROJECT_MIN_PIXELS)
    if not (x.dtype == scale.dtype == kernel.dtype == np.float32 and enough and x.flags.c_contiguous):
        return conv_node(conv, _scaled(x, scale, owned), None)
    matrix = kernel.reshape(c, k)
    out = np.empty((n, h, w, k), np.float32)
    for image in range(n):
        np.matmul(x[image].reshape(pixels, c), matrix * scale[image][:, None], out=out[image].reshape(pixels, k))
    bias = conv.attrs.get("_bias")
    if bias is not None:
        layout.add_per_channel(out, np.asarray(bias, np.float32))
    return out


# Pixels an image needs, in a batch of several, for :func:`_project` to scale the weights
# image by image rather than the images (one product for the batch).
PROJECT_MIN_PIXELS = 512


def _dense_layer(conv, values: np.ndarray) -> np.ndarray:
    """A 1x1 Conv node (its bias and absorbed activation) applied to ``values`` (n, c).

    float32 with the compiled loops: the product, then one call of the compiled loop that
    adds the bias and activates (or clamps: a Relu, a Clip, none), planned once per node
    (:func:`_plan`): the same loop and bias tile as the Conv node's own pass, or the same
    sums and clamp as its NumPy one, so the same values; 46 -> 16 us a layer inside
    efficientnet_b0 at batch 1, where every call runs on caches the layer before emptied.
    Otherwise the Conv node's own handler, on the values as a 1x1 image.
    """
    plan = conv.attrs.get("_plan") or conv.attrs.setdefault("_plan", _plan(conv))
    if plan is not False and values.dtype == np.float32:
        matrix, loop, tile, alpha, beta = plan
        out = values @ matrix
        loop(out.reshape(-1), tile, matrix.shape[1], alpha, beta, 0, out.shape[0])
        return out
    n, c = values.shape
    return conv_node(conv, values.reshape(n, 1, 1, c), None).reshape(n, -1)  # the Conv node itself


def _plan(conv):
    """``(matrix, loop, bias tile, alpha, beta)`` of a float32 1x1 Conv node for the compiled
    bias-and-activation loop (:func:`.._activation_loops.bias_activation`), or False where it has none:
    another dtype, no compiled loops, an activation without a compiled pass, a NaN bound."""
    kernel, activation = conv.attrs["_kernel"], conv.attrs.get("_activation")
    if kernel.dtype != np.float32 or not layout.activation_ready(kernel.dtype):
        return False
    if activation is None or activation.op in CLAMPS:
        name = "Clip"
        low, high = CLAMPS[activation.op](activation) if activation is not None else (None, None)
        alpha, beta = layout.bound(low, kernel.dtype, -np.inf), layout.bound(high, kernel.dtype, np.inf)
    else:
        name, parameters = activation.op, compiled_parameters(activation)
        if parameters is None:
            return False
        alpha, beta = (np.float32(value) for value in parameters)
    if alpha is None or beta is None:
        return False
    k = kernel.shape[3]
    bias = conv.attrs.get("_bias")
    bias = layout.no_bias(k, np.dtype(np.float32)) if bias is None else np.asarray(bias, np.float32)
    tile = layout.bias_tile(bias, k)  # as add_bias_activation and add_per_channel tile it
    matrix = np.ascontiguousarray(kernel.reshape(kernel.shape[2:]))
    return matrix, compiled.loop("bias_activation")(name), tile, alpha, beta
