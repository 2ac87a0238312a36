"""The performance suite behind ``convlayer bench``: conv2d and its gradients against peers.

Imports flow one way, each module from the ones above it:

- :mod:`.cases`: the suite's shapes (:class:`Case`, :data:`SUITE`), a network's layer
  (:class:`Layer`) and their data;
- :mod:`.libraries`: the peers (PyTorch, JAX, SciPy), imported when :func:`peers` is called;
- :mod:`.timing`: :func:`time_calls` and :func:`work_memory` (the tests measure with it);
- :mod:`.suite`: a row per shape, :func:`run_suite` and its table;
- :mod:`.networks`: the layers of torchvision's models (``networks.json``), :func:`run_networks`.

The timing constants are read here too; to change them, set them on :mod:`.timing`.
"""

from .cases import SUITE, Case, Layer, inputs, layer_inputs, loops_case
from .libraries import TORCH_THREADS, peers, tf_pads, torch_peer
from .networks import model_totals, recorded, run_networks, select, summarise
from .suite import (
    auto_choice,
    backward_row,
    environment,
    environment_line,
    forward_row,
    geometric_mean,
    reference_row,
    run_suite,
    write_json,
)
from .timing import MAX_ROUNDS, MIN_ROUNDS, RUN, RUN_SECONDS, SETTLE, WARM_SECONDS, time_calls, work_memory

__all__ = [
    "Case", "Layer", "MAX_ROUNDS", "MIN_ROUNDS", "RUN", "RUN_SECONDS", "SETTLE", "SUITE", "TORCH_THREADS",
    "WARM_SECONDS", "auto_choice", "backward_row", "environment", "environment_line", "forward_row",
    "geometric_mean", "inputs", "layer_inputs", "loops_case", "model_totals", "peers", "recorded",
    "reference_row", "run_networks", "run_suite", "select", "summarise", "tf_pads", "time_calls",
    "torch_peer", "work_memory", "write_json",
]
