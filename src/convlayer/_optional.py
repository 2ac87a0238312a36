"""Optional dependencies: which extra brings each one, and a one-line account of an import
that failed, telling "not installed" (what to install) from "installed but broken" (the
error and the versions found, which is what a user needs to see a version clash).

Only the standard library is imported here: the packages themselves are imported by the
functions that need them.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util

# top-level module -> (the extra that installs it, the distributions of that extra to report).
# Numba and threadpoolctl are dependencies of convlayer; 'fast' is kept as an alias that
# installs them again, so its hint is still a command that works.
_IMAGES = ("images", ("matplotlib", "scikit-image", "pillow", "tifffile", "tqdm"))
_DASK = ("dask", ("dask", "distributed", "zarr", "numcodecs", "tifffile"))
_FAST = ("fast", ("numba", "llvmlite", "threadpoolctl"))
EXTRAS = {
    "matplotlib": _IMAGES, "skimage": _IMAGES, "PIL": _IMAGES, "tqdm": _IMAGES, "tifffile": _IMAGES,
    "sklearn": ("train", ("scikit-learn", "scipy")),
    "dask": _DASK, "distributed": _DASK, "zarr": _DASK, "numcodecs": _DASK,
    "onnx": ("onnx", ("onnx", "protobuf")), "onnxruntime": ("bench", ("onnxruntime",)),
    "numba": _FAST, "llvmlite": _FAST, "threadpoolctl": _FAST,
}


class MissingDependency(ModuleNotFoundError):
    """An optional package that is not installed, or installed but broken; ``str()`` is the one
    line to show (what needed it, and what to install or what was found)."""


def require(module: str, purpose: str):
    """Import and return ``module``, or raise :class:`MissingDependency` with one line that says
    what needed it and what to do, instead of a bare ``No module named ...``.

    >>> require("numpy.linalg", "the example").__name__
    'numpy.linalg'
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependency(f"{purpose} {describe(error)}", name=error.name) from None


def describe(error: ImportError) -> str:
    """One line on why an optional dependency could not be imported.

    >>> print(describe(ModuleNotFoundError("No module named 'no_such_package'", name="no_such_package")))
    needs the package 'no_such_package'
    """
    if isinstance(error, MissingDependency):  # described already, with what needed it
        return str(error)
    top = (error.name or "").split(".")[0]
    extra, distributions = EXTRAS.get(top, (None, ()))
    if not top:
        return f"an optional package does not import: {error}"
    if importlib.util.find_spec(top) is None:
        hint = f": pip install 'convlayer[{extra}]'" if extra else ""
        return f"needs the package {top!r}{hint}"
    found = ", ".join(f"{name} {version}" for name, version in versions(distributions or (top,)))
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return (f"the package {top!r} is installed but does not import: {reason} (found {found}; "
            f"'pip check' names any version clash)")


def versions(distributions) -> list[tuple[str, str]]:
    """``(name, version)`` of each installed distribution among ``distributions``."""
    found = []
    for name in distributions:
        try:
            found.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            continue
    return found
