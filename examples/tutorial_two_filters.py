"""The tutorial's second program, on convlayer: a layer with two filters and two biases.

Each output channel has its own multi-channel filter and its own bias: the edge detector
with bias 1 and the 3x3 box blur with bias 0, each repeated over the three RGB channels
(`kernels.stack` does what the tutorial did by hand with np.repeat), so the layer's kernel
is (3, 3, 3, 2) and it has (3 * 3 * 3 + 1) * 2 = 56 parameters. ReLU follows. The figure
shows the input, both output channels and the edge map equalised with CLAHE.

What the original program got wrong, and how this version fixes it:
- It never built the padded image it had computed the padding for (border windows read
  outside the picture); conv2d pads with TensorFlow's 'same' rule.
- It added uint8 pixels, which wrap around at 256; conv2d computes in float32.
- Its loops visited every pixel, filter, channel and tap in Python; conv2d does one matrix
  product for both filters at once.
- It equalised the raw edge map, whose few very strong edges left everything else black;
  here the map is scaled by its 99.5th percentile before CLAHE (`plot.equalised`).

Usage: python examples/tutorial_two_filters.py [OUTPUT.png]
"""

import sys

import numpy as np

import convlayer
from convlayer import kernels
from convlayer.explain import plot


def main(output="tutorial-two-filters.png"):
    from skimage import data

    image = data.astronaut()  # (512, 512, 3) uint8, ships with scikit-image
    layer = kernels.stack(["edge", "blur"], channels=3)  # (3, 3, 3, 2)
    bias = np.array([1.0, 0.0], np.float32)
    maps = convlayer.relu(convlayer.conv2d(image, layer, bias, padding="same"))
    params = convlayer.shapes.num_params(3, in_channels=3, out_channels=2)
    print(f"input {image.shape} -> output {maps.shape}, {params} parameters")
    figure = plot.layer_figure(
        image, maps, ["edge (bias 1), ReLU", "blur (bias 0), ReLU"],
        extra=(plot.equalised(maps[..., 0]), "edge map, CLAHE-equalised"),
        suptitle=f"two 3x3x3 filters with biases -> {maps.shape[-1]} feature maps ({params} parameters)",
    )
    figure.savefig(output, dpi=100)
    print(f"wrote {output}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
