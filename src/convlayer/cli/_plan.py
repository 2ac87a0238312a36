"""Which files a ``convlayer filter`` run reads and writes, and whether it may write them.

Everything here runs before the first image is read: the inputs (files, folders, sample
photos), each input's output names, and the checks that refuse a run that would replace a
file without ``--overwrite``, write one file twice, or write over an input. With
``--skip-existing`` an input already done is kept, if its sidecar says it was made with the
same settings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .. import images
from ._layer import LayerSpec


def run_settings(args) -> dict:
    """What decides the outputs' values, as given: ``--skip-existing`` keeps only outputs made with these."""
    return {"filters": [list(f) for f in args.filters], "bias": args.bias, "strides": args.strides,
            "padding": args.padding, "pad_mode": args.pad_mode, "dilation": args.dilation,
            "flip": bool(args.flip), "relu": bool(args.relu), "mode": args.mode,
            "per_channel": bool(args.per_channel), "scale": args.scale}


def collect_inputs(arguments: "list[str]") -> list[Path]:
    """Image files named directly, the image files inside named folders (sorted), and
    sample photos (``sample:NAME``)."""
    found = []
    for argument in arguments:
        path = Path(argument)
        if images.is_sample(argument):
            if images.source_stem(argument) not in images.SAMPLES:
                raise ValueError(f"{argument}: no such sample photo; choose from "
                                 f"{', '.join(images.SAMPLE_PREFIX + n for n in images.SAMPLES)}")
            found.append(path)
        elif path.is_dir() and not images.is_zarr_store(path):
            inside = sorted(p for p in path.iterdir() if p.is_file() and images.is_image_path(p))
            if not inside:
                raise ValueError(f"{path}: the folder has no image files ({', '.join(images.IMAGE_SUFFIXES)})")
            found += inside
        elif path.exists():
            found.append(path)
        else:
            raise ValueError(f"{path}: no such file or folder")
    return found


def output_paths(path: Path, outdir: Path, layer: LayerSpec, args, lazy: bool = False) -> dict[str, Path]:
    """Where the outputs of one input go, keyed by what they hold (no PNGs when lazy).

    The sidecar comes last: it is written last, so its existence means the input is done.
    """
    stem = images.source_stem(path)
    tiff = layer.per_channel and path.suffix.lower() in (".tif", ".tiff")  # keeps any depth
    suffix = ".tif" if tiff else ".png"
    planned = {} if lazy else {f"channel:{name}": outdir / f"{stem}.{name}{suffix}" for name in layer.names}
    if args.save_raw:
        planned["raw"] = outdir / f"{stem}.npy"
    if args.figure:
        planned["figure"] = outdir / f"{stem}.figure.png"
    if args.save_zarr:
        planned["zarr"] = outdir / f"{stem}.zarr"
    if args.save_tiff:
        planned["tiff"] = outdir / f"{stem}.tif"
    planned["sidecar"] = outdir / f"{stem}.json"
    return planned


def check_outputs(plans: dict, outdir: Path, *, overwrite: bool, settings: "dict | None") -> set:
    """Refuse before writing anything: name clashes, existing files, an output that is a file.

    With ``settings`` (``--skip-existing``) an input whose outputs all exist is kept, and one
    with only some is done again (the sidecar is written last: without it the others are
    what an interrupted run left); either way an existing sidecar must state those settings.
    Returns the kept inputs.
    """
    _check_writable(outdir)
    owner, sources, kept = {}, {source.resolve() for source in plans}, set()
    for source, planned in plans.items():
        for target in planned.values():
            if target.resolve() in sources:
                raise ValueError(f"{target} is an input; choose another -o")
            if target in owner:
                raise ValueError(f"{owner[target]} and {source} would both write {target}; "
                                 f"filter them in separate runs")
            owner[target] = source
            if target.exists() and not overwrite and settings is None:
                raise ValueError(f"{target} exists; use --overwrite to replace it, or --skip-existing "
                                 f"to keep it")
        if settings is not None and planned["sidecar"].exists():
            _check_settings(planned["sidecar"], settings)
            if all(target.exists() for target in planned.values()):
                kept.add(source)
    return kept


def _check_settings(sidecar: Path, settings: dict) -> None:
    """An output kept by --skip-existing must have been made with this run's settings."""
    try:
        before = json.loads(sidecar.read_text()).get("settings")
    except (OSError, ValueError, AttributeError):
        before = None
    if before != settings:
        differ = sorted(key for key in settings if not isinstance(before, dict) or before.get(key) != settings[key])
        raise ValueError(f"{sidecar} was written with other settings ({', '.join(differ)}); use --overwrite "
                         f"to replace its outputs, or another -o")


def _check_writable(outdir: Path) -> None:
    """The output folder, or the nearest folder that would hold it, must be writable."""
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"-o {outdir}: exists and is not a folder")
    existing = outdir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"-o {outdir}: cannot be created, {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"-o {outdir}: {existing} is not writable")
