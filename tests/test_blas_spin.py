"""convlayer._blas: OpenBLAS's idle threads spin 2**20 cycles, not 2**28, unless the user chose.

Each case runs in a fresh interpreter (the setting is made once, at import) and asks OpenBLAS
itself, through threadpoolctl's handle on the loaded library, what timeout it read.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import convlayer

_SOURCE = str(Path(convlayer.__file__).resolve().parents[1])
_REPORT = """
import json, numpy as np, threadpoolctl
from convlayer import _blas
spins = [c.dynlib.openblas_thread_timeout() for c in threadpoolctl.ThreadpoolController().lib_controllers
         if c.internal_api == "openblas"]
a = np.arange(300 * 300, dtype=np.float64).reshape(300, 300) % 7
print(json.dumps(dict(done=_blas.status["done"], spins=spins, product=float((a @ a).sum()))))
"""


def _run(code: str, **env) -> dict:
    environment = {key: value for key, value in os.environ.items() if key != "OPENBLAS_THREAD_TIMEOUT"}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [_SOURCE, os.environ.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", code + _REPORT], capture_output=True, text=True,
                            env={**environment, **env}, check=True)
    return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def openblas():
    import threadpoolctl

    if not any(c.internal_api == "openblas" for c in threadpoolctl.ThreadpoolController().lib_controllers):
        pytest.skip("NumPy's BLAS here is not OpenBLAS: there is no spin to set")


def _exact_product() -> float:
    a = [[(300 * i + j) % 7 for j in range(300)] for i in range(300)]
    column_sums = [sum(a[i][j] for i in range(300)) for j in range(300)]
    return float(sum(column_sums[k] * sum(a[k]) for k in range(300)))  # sum of a @ a, in integers


def test_convlayer_imported_first_sets_the_variable_before_openblas_loads(openblas):
    report = _run("import convlayer\n")
    assert report["done"] == "OPENBLAS_THREAD_TIMEOUT=20 set before NumPy loaded OpenBLAS"
    assert report["spins"] and set(report["spins"]) == {20}
    assert report["product"] == _exact_product()


def test_an_openblas_already_running_threads_rereads_it_and_still_multiplies(openblas):
    # NumPy imported and its threads started by a product, then convlayer: applied to the loaded library
    report = _run("import numpy as np\nb = np.ones((400, 400)); b @ b\nimport convlayer\n")
    assert report["done"] == "OPENBLAS_THREAD_TIMEOUT=20 set and applied to the loaded OpenBLAS"
    assert report["spins"] and set(report["spins"]) == {20}
    assert report["product"] == _exact_product()  # the restarted threads compute as before


def test_a_loaded_openblas_is_left_alone_while_other_threads_run(openblas):
    # a thread that may be inside OpenBLAS: its threads are not stopped under it
    code = ("import threading, numpy as np\nstop = threading.Event()\n"
            "worker = threading.Thread(target=stop.wait, daemon=True); worker.start()\n"
            "b = np.ones((400, 400)); b @ b\nimport convlayer\nstop.set(); worker.join()\n")
    report = _run(code)
    assert report["done"].startswith("OPENBLAS_THREAD_TIMEOUT=20 set for OpenBLAS loaded from now on (the loaded one")
    assert 20 not in report["spins"]  # the loaded library never re-read its environment
    assert report["product"] == _exact_product()


def test_a_value_the_user_set_is_left_alone(openblas):
    report = _run("import numpy\nimport convlayer\n", OPENBLAS_THREAD_TIMEOUT="25")
    assert report["done"] == "left as set in the environment (OPENBLAS_THREAD_TIMEOUT=25)"
    assert set(report["spins"]) == {25}


def test_the_loaded_libraries_are_read_from_the_memory_map_whole_paths_and_all():
    from convlayer import _blas

    lines = [
        "7f00-7f10 r--p 00000000 08:01 123   /opt/my env/numpy.libs/libscipy_openblas64_-32a4.so\n",
        "7f10-7f20 r-xp 00010000 08:01 123   /opt/my env/numpy.libs/libscipy_openblas64_-32a4.so\n",
        "7f20-7f30 r--p 00000000 08:01 124   /usr/lib/libopenblas.so.0\n",
        "7f30-7f40 rw-p 00000000 00:00 0 \n",  # anonymous
        "7f40-7f50 r--p 00000000 08:01 125   /data/openblas_notes/liblapack.so\n",  # openblas only in a folder
        "7f50-7f60 r--p 00000000 00:00 0     [heap]\n",
    ]
    assert _blas.openblas_paths(lines) == ["/opt/my env/numpy.libs/libscipy_openblas64_-32a4.so",
                                           "/usr/lib/libopenblas.so.0"]
