"""Layers, a Sequential model, losses and optimisers: training CNNs on convlayer's ops.

>>> from convlayer import nn
>>> model = nn.Sequential([nn.Conv2D(1, 8, 3), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(),
...                        nn.Dense(4 * 4 * 8, 10)], input_shape=(8, 8, 1), seed=0)
>>> model.num_params == (3 * 3 * 1 + 1) * 8 + (128 + 1) * 10
True
"""

from .conv import Conv2D, Conv2DTranspose, LocallyConnected2D, RegionConv2D, TiledConv2D
from .graph import Add, Concat, Input, Model
from .layers import Dense, Dropout, Flatten, Layer, ReLU
from .losses import softmax, softmax_cross_entropy
from .model import Sequential
from .normalization import BatchNorm2D
from .optim import SGD, Adam
from .pool import (AdaptiveAvgPool2D, AdaptiveMaxPool2D, AvgPool2D, GlobalAvgPool2D, GlobalMaxPool2D, LPPool2D,
                   MaxPool2D, MaxUnpool2D)

__all__ = [
    "Adam", "AdaptiveAvgPool2D", "AdaptiveMaxPool2D", "Add", "AvgPool2D", "BatchNorm2D", "Concat", "Conv2D",
    "Conv2DTranspose", "Dense", "Dropout", "Flatten", "GlobalAvgPool2D", "GlobalMaxPool2D", "Input", "LPPool2D",
    "Layer", "LocallyConnected2D", "MaxPool2D", "MaxUnpool2D", "Model", "ReLU", "RegionConv2D", "SGD", "Sequential",
    "TiledConv2D", "softmax", "softmax_cross_entropy",
]
