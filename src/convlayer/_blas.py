"""OpenBLAS's idle threads, kept from spinning on the cores convlayer's own threads need.

After each product on several threads, OpenBLAS's worker threads keep spinning, waiting for
the next one, for ``2**OPENBLAS_THREAD_TIMEOUT`` CPU cycles: 2**28 by default, about 0.1 s.
Inside a network that is almost always: between two products convlayer runs its own loops
(patch fills, Winograd transforms, depthwise rows, element-wise passes), on its own threads
or on BLAS held to one thread, and a spinning OpenBLAS thread holds the core they need. So
:func:`shorten_spin` sets ``OPENBLAS_THREAD_TIMEOUT`` to :data:`SPIN` (2**20 cycles, about
0.4 ms), unless the user set it:

- before NumPy is imported (``import convlayer`` first, and every ``convlayer`` command), by
  the environment variable, which OpenBLAS reads when it loads;
- after, also in the loaded OpenBLAS (Linux, where ``/proc/self/maps`` names it): it
  re-reads its environment (``openblas_read_env``) and stops its threads
  (``blas_thread_shutdown_``, what OpenBLAS itself runs before a ``fork``), and the next
  product on several threads starts them again with the new timeout. That is done once, at
  import, and only while the importing thread is the process's only one: a product running
  in another thread at that moment would be cut short, as by a ``fork``.

The variable stays set, so child processes and an OpenBLAS loaded later (SciPy's own) read
it too. To keep OpenBLAS's default, set ``OPENBLAS_THREAD_TIMEOUT=28`` before starting
Python; any value set there is left alone. Results do not change, only who waits: a product
that starts more than 0.4 ms after the last one wakes sleeping threads (tens of
microseconds).

``convlayer bench model.onnx --batch 1,8`` (224x224, 2 cores), the code before and after,
alternating, two runs each: resnet18 32.0-35.8 -> 27.2-30.2 ms at batch 1 and 216-225 ->
158-161 at batch 8, efficientnet_b0 177 -> 142-144 at batch 8, mobilenet_v2 79-99 -> 79-82
at batch 8; mobilenet_v2 and efficientnet_b0 at batch 1 within the noise (13.4-14.0 -> 14.2,
30.1-30.8 -> 31.4-32.9). Shorter spins lose at batch 1 (2**18: mobilenet_v2 15 -> 18.7 ms,
each 1x1 layer's product waking threads that had just gone to sleep); longer ones at batch 8
(2**24: resnet18 165 ms, 2**26: 203).
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

VARIABLE = "OPENBLAS_THREAD_TIMEOUT"
SPIN = "20"

# What shorten_spin did, for convlayer bench's report.
status = {"done": "not yet"}


def shorten_spin() -> str:
    """Set OpenBLAS's spin to 2**:data:`SPIN` cycles where the user has not chosen one; return
    (and keep in :data:`status`) what was done, in words."""
    if os.environ.get(VARIABLE):
        return _say(f"left as set in the environment ({VARIABLE}={os.environ[VARIABLE]})")
    os.environ[VARIABLE] = SPIN
    if "numpy" not in sys.modules:
        return _say(f"{VARIABLE}={SPIN} set before NumPy loaded OpenBLAS")
    if threading.active_count() > 1:  # one of them may be inside OpenBLAS: leave its threads alone
        return _say(f"{VARIABLE}={SPIN} set for OpenBLAS loaded from now on (the loaded one left as it is: "
                    f"other threads are running)")
    applied = [path for path in _loaded_openblas() if _apply(path)]
    if applied:
        return _say(f"{VARIABLE}={SPIN} set and applied to the loaded OpenBLAS")
    return _say(f"{VARIABLE}={SPIN} set for OpenBLAS loaded from now on (none loaded could take it)")


def _say(done: str) -> str:
    status["done"] = done
    return done


def _loaded_openblas() -> list[str]:
    """The files of the OpenBLAS libraries this process has loaded (Linux; elsewhere none)."""
    try:
        with open("/proc/self/maps") as maps:
            return [path for path in openblas_paths(maps) if os.path.isfile(path)]
    except OSError:
        return []


def openblas_paths(lines) -> list[str]:
    """The OpenBLAS shared libraries named in lines of ``/proc/<pid>/maps`` (address,
    permissions, offset, device, inode, then the path, which may hold spaces), each once."""
    paths = set()
    for line in lines:
        fields = line.split(maxsplit=5)
        name = fields[5].strip() if len(fields) == 6 else ""
        if "openblas" in name.rsplit("/", 1)[-1].lower() and ".so" in name:
            paths.add(name)
    return sorted(paths)


def _apply(path: str) -> bool:
    """Make the OpenBLAS at ``path`` (loaded already) re-read its environment and restart its
    threads on their next use; whether it could."""
    try:
        library = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0) | getattr(os, "RTLD_LAZY", 1))
        read_env, shutdown = library.openblas_read_env, library.blas_thread_shutdown_
    except (OSError, AttributeError):  # not loaded after all, or a build without these
        return False
    read_env()
    shutdown()
    return True
