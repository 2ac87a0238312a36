"""convlayer._malloc: with glibc, freed memory stays in the heap for the next call instead of
going back to the OS (and coming back as page faults), unless the user set glibc's variables.

Each case runs in a fresh interpreter (the setting is made once, at import) and counts the
page faults (the kernel's count, ``ru_minflt``) of a loop that glibc's own thresholds make
fault on every round: two 6 MB arrays filled and freed. After the first round glibc's mmap
threshold is 6 MB and its trim threshold 12 MB, and the two freed arrays (12 MB at the
heap's top) pass it: the heap is trimmed, and the next round touches fresh pages.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import convlayer
from convlayer import _malloc

_SOURCE = str(Path(convlayer.__file__).resolve().parents[1])
_CHURN = """
import json, resource, sys, numpy as np
from convlayer import _malloc
SIZE = int(sys.argv[1])
def round_():
    a, b = np.ones(SIZE, np.float32), np.ones(SIZE, np.float32)  # every page touched
    del a, b
round_(); round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    round_()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps(dict(done=_malloc.status["done"], faults=faults)))
"""
SMALL, LARGE = 1_500_000, 10_000_000  # items: 6 MB arrays, and 40 MB ones (above glibc's 32 MiB mmap ceiling)
PAGES = 2 * 6_000_000 // 4096  # what one round of the 6 MB arrays touches: about 2,900 pages

glibc = pytest.mark.skipif(_malloc._glibc_mallopt() is None, reason="the thresholds are glibc's malloc's")


def _run(items: int = SMALL, **env) -> dict:
    environment = {key: value for key, value in os.environ.items()
                   if key not in _malloc.VARIABLES and key != _malloc.OPT_OUT}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [_SOURCE, os.environ.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", "import convlayer\n" + _CHURN, str(items)], capture_output=True,
                            text=True, env={**environment, **env}, check=True)
    return json.loads(result.stdout.splitlines()[-1])


@glibc
@pytest.mark.parametrize("items", [SMALL, LARGE], ids=["6MB", "40MB"])
def test_freed_arrays_come_back_without_page_faults(items):
    # 40 MB arrays are above the largest mmap threshold glibc takes: without mmap turned
    # off they came from the OS and went back to it, faulting every page of every round
    report = _run(items)
    assert report["done"] == "trim threshold 256 MiB, every block from the heap (no mmap)"
    assert report["faults"] < PAGES // 4  # 8 rounds: none of them refaults its pages (measured: 0)


@glibc
def test_glibc_s_own_thresholds_fault_every_round_on_large_arrays():
    report = _run(LARGE, CONVLAYER_MALLOC="glibc")
    # 8 rounds of 19,500 pages each, fewer faults where NumPy's huge pages come through:
    # measured 9,088 (and as many with convlayer before it turned mmap off)
    assert report["faults"] > PAGES


@glibc
def test_glibc_s_own_thresholds_on_request_fault_every_round():
    # the opt-out: glibc's moving thresholds, which this loop makes trim the heap every round
    report = _run(CONVLAYER_MALLOC="glibc")
    assert report["done"] == "left to glibc (CONVLAYER_MALLOC=glibc)"
    # measured: 6,832 faults in 8 rounds (fewer than their pages: NumPy asks for huge pages from 4 MB)
    assert report["faults"] > PAGES


@glibc
def test_a_threshold_the_user_set_is_left_alone():
    # glibc's default trim threshold, set by name (which also fixes the mmap threshold at
    # 128 KiB: every array comes from the OS): convlayer leaves it, and every round faults
    report = _run(MALLOC_TRIM_THRESHOLD_="131072")
    assert report["done"] == "left as set in the environment (MALLOC_TRIM_THRESHOLD_)"
    assert report["faults"] > PAGES  # measured: 7,088 in 8 rounds
