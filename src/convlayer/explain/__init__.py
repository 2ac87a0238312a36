"""Pictures and text that explain a convolutional layer with the user's own numbers.

- :func:`sliding_figure`: the padded input, the kernel at a few output positions, the
  output grid and the output-size formula filled in; :func:`write_animation` as a GIF.
- :func:`channels_figure`: C input channels and K filters, summed plus bias into each
  output channel, with the parameter count.
- :func:`pixel_arithmetic` and :func:`pixel_figure`: the real numbers behind one output pixel.
- :func:`receptive_field_figure`: the fields of ``Sequential.receptive_field()``.
- :func:`annotations`: every number those figures write, from :mod:`convlayer.shapes`.

The package, one job per module: ``labels`` (what a figure writes), ``formulas`` (the
formula text, which ``convlayer shape`` prints too), ``figures`` (the figures above),
``draw`` and ``grids`` (placing it on matplotlib axes), ``pixel`` (one output pixel's
arithmetic) and ``plot`` (feature maps, filters and training curves). Importing it imports
NumPy only; matplotlib and Pillow load when something is drawn.
"""

from .figures import channels_figure, pixel_figure, receptive_field_figure, sliding_figure, write_animation
from .formulas import SIDES
from .labels import (
    Annotations,
    AxisLabels,
    animation_positions,
    annotations,
    bank_numbers,
    centre_unit,
    channel_lines,
    default_positions,
    field_label,
    formula_lines,
    shown_indices,
    title,
    window_origin,
)
from .pixel import PixelArithmetic, number, pixel_arithmetic, sum_line

__all__ = [
    "Annotations", "AxisLabels", "PixelArithmetic", "animation_positions", "annotations",
    "bank_numbers", "centre_unit", "channel_lines", "channels_figure", "default_positions",
    "field_label", "formula_lines", "number", "pixel_arithmetic", "pixel_figure", "receptive_field_figure",
    "shown_indices", "sliding_figure", "sum_line", "title", "window_origin", "write_animation",
]
