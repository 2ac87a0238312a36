"""The compiled loops that are made per activation or per kernel size (closures) load from
Numba's disk cache in a new process instead of compiling again.

Numba keys a closure's cache entry by its cells pickled: a cell holding a compiled function
pickles differently in every process, so such a loop compiled afresh in each (0.2 s or more)
and grew the cache's index by an entry each time. Two processes share one empty cache
directory here: the first compiles, the second must only load.
"""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("numba")

SCRIPT = """
import json
import numpy as np
import convlayer
from convlayer.algorithms import _activation_loops, _depthwise_loops, depthwise
from convlayer.shapes import conv_geometry

flat, tile = np.ones(24, np.float32), np.zeros(4, np.float32)
loops = {}
for name in _activation_loops.ACTIVATIONS:
    loops[name] = _activation_loops.bias_activation(name)
    loops[name](flat, tile, 4, np.float32(-1), np.float32(1), 0, 6)
    loops[name + " sums"] = _activation_loops.activation_sums(name)
    loops[name + " sums"](flat, tile, 8, np.float32(-1), np.float32(1), np.empty((3, 4), np.float32), 0, 3)
x, w = np.ones((1, 6, 6, 16), np.float32), np.ones((3, 3, 1, 16), np.float32)
convlayer.conv2d(x, w, groups=16)  # the depthwise loop compiled for 3x3 at stride 1
block = depthwise.pixel_block(conv_geometry(x.shape, w.shape, 1, "same", 1, groups=16))
loops["depthwise_fixed"] = _depthwise_loops.depthwise_fixed(3, 3, 1, 1, block)
print(json.dumps({name: [sum(f.stats.cache_hits.values()), sum(f.stats.cache_misses.values())]
                  for name, f in loops.items()}))
"""


def _counts(cache_dir) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_closure_loops_load_from_the_cache_in_a_new_process(tmp_path):
    first = _counts(tmp_path)
    assert all(misses >= 1 for _, misses in first.values()), first  # an empty cache: each compiled
    second = _counts(tmp_path)
    assert second == {name: [1, 0] for name in first}, second  # each loaded, none compiled
