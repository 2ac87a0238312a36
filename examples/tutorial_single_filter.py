"""The tutorial's first program, on convlayer: one 3x3 filter over the three RGB channels.

A convolutional layer with a single output channel: one (3, 3, 3) filter slides over the
(H, W, 3) image, multiplies each 3x3x3 window by its weights, sums the 27 products, adds the
bias, and writes one number per position; the result is a 2-D map. Here the filter is the
edge detector (8 in the middle, -1 around it) on every channel, followed by ReLU.

What the original program got wrong, and how this version fixes it:
- It computed how much 'same' padding it needed but never built the padded image, so the
  windows at the border read outside the picture. conv2d pads for you, with TensorFlow's
  rule (the odd extra zero goes to the bottom/right); see `convlayer shape`.
- It summed uint8 pixels, and uint8 arithmetic wraps around (200 + 200 = 144). conv2d
  computes in float32 for a uint8 photo with a float32 filter.
- It ran one Python iteration per pixel, channel and tap. conv2d gathers every window into
  one matrix and does a single matrix product: orders of magnitude faster.

Usage: python examples/tutorial_single_filter.py [IMAGE] [OUTPUT.png]
(without IMAGE it uses scikit-image's astronaut photo, which ships with the package).
"""

import sys

import numpy as np

import convlayer
from convlayer import images, kernels
from convlayer.explain import plot


def main(image_path=None, output="tutorial-single-filter.png"):
    if image_path is None:
        from skimage import data

        image = data.astronaut()
    else:
        image, _ = images.read(image_path)
        image, _ = images.prepare(image, "rgb")
    edge_filter = kernels.stack(["edge"], channels=3)[..., 0]  # (3, 3, 3): one filter, 3 channels
    feature_map = convlayer.relu(convlayer.conv2d(image, edge_filter, bias=0.0, padding="same"))
    print(f"input {image.shape} {image.dtype} -> feature map {feature_map.shape} {feature_map.dtype}")
    figure = plot.layer_figure(plot.for_display(image), feature_map[..., None], ["edge filter, ReLU"],
                               suptitle="one 3x3x3 filter -> one feature map")
    figure.savefig(output, dpi=100)
    print(f"wrote {output}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
