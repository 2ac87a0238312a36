"""The weight-sharing spectrum on digits: the same small network, four kinds of sharing.

The first layer is a 3x3 layer with 16 output channels over the 8x8 digit images, and
only its weight sharing changes:

- shared: one kernel for all 64 output pixels (a convolution);
- tiled (2x2): pixels two apart share, so 4 kernels (Le et al., 2010);
- regions (2x2): one kernel per quarter of the image, 4 kernels (as in DeepID);
- unshared: every pixel its own kernel, 64 kernels (a locally-connected layer, as in DeepFace).

The rest is fixed: ReLU, 2x2 max pooling, a dense layer to the 10 classes. The table shows
the tutorial's point: the fewer the weights are shared, the more parameters the layer has,
and on a small data set (1,347 training images) more parameters fit the training set
better than they generalise.

Usage: python examples/sharing_on_digits.py [--epochs 20] [--seed 0]
"""

import argparse
import time

import numpy as np

from convlayer import data, nn

KINDS = {
    "shared": lambda: nn.Conv2D(1, 16, 3),
    "tiled 2x2": lambda: nn.TiledConv2D(1, 16, 3, tiles=(2, 2)),
    "regions 2x2": lambda: nn.RegionConv2D(1, 16, 3, regions=(2, 2)),
    "unshared": lambda: nn.LocallyConnected2D(1, 16, 3, input_size=(8, 8), padding="same"),
}


def build(first_layer, seed: int):
    layers = [first_layer, nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(), nn.Dense(4 * 4 * 16, 10)]
    return nn.Sequential(layers, input_shape=(8, 8, 1), seed=seed)


def main(epochs: int = 20, seed: int = 0, train_size: int = 0) -> list:
    split = data.digits(seed=seed)
    if train_size:  # a smaller training set makes over-fitting easier to see
        split = split._replace(x_train=split.x_train[:train_size], y_train=split.y_train[:train_size])
    rows = []
    for name, make in KINDS.items():
        model = build(make(), seed)
        start = time.perf_counter()
        model.fit(split.x_train, split.y_train, epochs=epochs, optimizer=nn.Adam(2e-3), seed=seed,
                  progress=False)
        per_epoch = (time.perf_counter() - start) / epochs
        _, train_accuracy = model.evaluate(split.x_train, split.y_train)
        _, test_accuracy = model.evaluate(split.x_test, split.y_test)
        rows.append((name, model.layers[0].num_params, model.num_params, train_accuracy, test_accuracy,
                     per_epoch))
    print(f"digits, {len(split.x_train)} training and {len(split.x_test)} test images, {epochs} epochs, "
          f"seed {seed}: first layer 3x3x1 -> 16, then ReLU, max pool 2, dense 10")
    print()
    print("| sharing | first-layer parameters | all parameters | training accuracy | test accuracy | time per epoch |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, first, total, train, test, per_epoch in rows:
        print(f"| {name} | {first:,} | {total:,} | {train:.2%} | {test:.2%} | {per_epoch * 1000:.0f} ms |")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-size", type=int, default=0, help="use only the first N training images")
    arguments = parser.parse_args()
    main(arguments.epochs, arguments.seed, arguments.train_size)
