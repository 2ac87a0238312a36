"""The documentation site builds with no warning, executes the tutorial and shows what it should.

One Sphinx build (``python -m sphinx -W --keep-going -b html docs OUT``, as ``make docs``
runs it) for the whole module: about 10 seconds for the pages and the API reference, plus
the tutorial notebook, which myst-nb executes and which fails the build if a cell raises.
"""

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import convlayer

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text()

# The modules of the API reference (docs/api/*.rst) whose __all__ must all be documented.
DOCUMENTED = ["convlayer", "convlayer.shapes", "convlayer.kernels", "convlayer.reference", "convlayer.nn",
              "convlayer.data", "convlayer.onnx", "convlayer.dask", "convlayer.explain"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site once; return the folder of its HTML pages."""
    out = tmp_path_factory.mktemp("site")
    package_root = str(Path(convlayer.__file__).resolve().parent.parent)  # the tree under test
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
               JUPYTER_RUNTIME_DIR=str(tmp_path_factory.mktemp("jupyter")))  # the kernel's connection file
    result = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                             str(DOCS), str(out)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    warnings = [line for line in result.stderr.splitlines() if "WARNING:" in line]  # Sphinx's, not the kernel's
    assert not warnings, "\n".join(warnings)
    return out


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


def _headings(page: Path, level: int) -> list:
    found = re.findall(rf"<h{level}>(.*?)<a class=\"headerlink\"", page.read_text(), re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", heading)).strip() for heading in found]


def _public_names(module) -> list:
    """``__all__``, or else the public functions and classes the module defines itself."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [name for name, value in vars(module).items()
            if not name.startswith("_") and callable(value) and getattr(value, "__module__", None) == module.__name__]


def test_every_public_name_is_in_the_api_reference(site):
    import importlib

    anchors = set()
    for page in (site / "api").glob("*.html"):
        anchors.update(re.findall(r'<dt class="[^"]*" id="([\w.]+)"', page.read_text()))
    missing = []
    for module_name in DOCUMENTED:
        module = importlib.import_module(module_name)
        for name in _public_names(module):
            if type(getattr(module, name)).__name__ == "module":
                continue  # kernels, reference, shapes: pages of their own
            if f"{module_name}.{name}" not in anchors:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"not in the API reference (add them to docs/api/*.rst): {missing}"


def test_numpydoc_sections_are_rendered(site):
    page = (site / "api" / "convlayer.html").read_text()
    section = page[page.index('id="convlayer.conv2d"'):page.index('id="convlayer.conv2d_backward"')]
    for heading in ("Parameters", "Returns", "Raises", "Examples"):
        assert f">{heading}" in section, heading
    assert "padding" in _text(site / "api" / "convlayer.html")


def test_every_readme_section_is_a_page_section(site):
    """Every README section but 'Documentation' (how to build this) is in the site, once."""
    sections = [line[3:].replace("`", "") for line in README.splitlines() if line.startswith("## ")]
    built = []
    for page in site.glob("*.html"):
        if page.name != "performance.html":  # docs/performance.md, a page of its own
            built += _headings(page, 2)
    missing = [section for section in sections if section != "Documentation" and built.count(section) != 1]
    assert not missing, f"README sections not (or twice) in the site: {missing}"
    assert "Documentation" not in built


def test_images_resolve_and_the_gallery_shows_every_picture(site):
    for page in site.rglob("*.html"):
        for source in re.findall(r'<img [^>]*src="([^"]+)"', page.read_text()):
            if "://" not in source and not source.startswith("data:"):
                assert (page.parent / source).exists(), f"{page.name}: {source}"
    gallery = (site / "gallery.html").read_text()
    for picture in sorted((DOCS / "gallery").iterdir()):
        assert f'src="_images/{picture.name}"' in gallery, picture.name


def test_the_front_page_is_the_readme_introduction(site):
    text = _text(site / "index.html")
    intro = README.split("\n## ")[0].split("\n\n")[1]  # the paragraph under the title
    words = re.sub(r"[*_`]", "", intro).split()[:8]  # as rendered: no Markdown emphasis or code marks
    assert " ".join(words) in " ".join(text.split())


def test_the_tutorial_ran_and_its_outputs_are_in_the_page(site):
    page = (site / "tutorial.html").read_text()
    assert page.count('class="cell_output') >= 8, "the notebook's outputs are missing"
    text = _text(site / "tutorial.html")
    accuracy = re.search(r"test accuracy (\d+\.\d+)% \(\d+ of 450 digits\)", text)  # the last cell's line
    assert accuracy and float(accuracy.group(1)) > 85.0, "the tutorial's CNN did not learn the digits"
    assert "Traceback" not in text


def test_the_committed_notebook_has_no_outputs():
    notebook = json.loads((DOCS / "tutorial.ipynb").read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)


def test_the_porting_page_shows_the_tested_example(site):
    text = " ".join(_text(site / "porting.html").split())
    example = (ROOT / "examples" / "port_from_pytorch.py").read_text()
    first_def = re.search(r"^def .*$", example, re.M).group(0)
    assert " ".join(first_def.split()) in text  # included, not copied


def test_links_between_pages_resolve(site):
    """Every relative link of the site reaches a file, and every #fragment an id on its page."""
    broken = []
    for page in site.rglob("*.html"):
        for href in re.findall(r'href="([^"]+)"', page.read_text()):
            if "://" in href or href.startswith("mailto:"):
                continue
            target, _, fragment = href.partition("#")
            file = page.parent / target.split("?")[0] if target else page
            if not file.exists() or (fragment and file.suffix == ".html" and f'id="{fragment}"' not in file.read_text()):
                broken.append(f"{page.relative_to(site)}: {href}")
    assert not broken, broken


def test_links_that_leave_docs_become_downloads_pages_or_text(monkeypatch):
    """docs/conf.py's rewrite of the README's links to files of the repository (no build needed)."""
    monkeypatch.syspath_prepend(str(ROOT / "src"))  # conf.py adds src to both: undone after the test
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    import runpy

    site_links = runpy.run_path(str(DOCS / "conf.py"))["_site_links"]
    readme = ("[ex](examples/port_from_pytorch.py) [b](benchmarks/) [p](docs/porting.md#layouts) "
              "[r](README.md#errors) [w](https://example.org/a.md) ![i](docs/gallery/valid.png) [m](missing.py)")
    assert site_links(readme, ROOT) == (
        "[ex](path:../examples/port_from_pytorch.py) b [p](docs/porting.md#layouts) [r](index.md) "
        "[w](https://example.org/a.md) ![i](docs/gallery/valid.png) [m](missing.py)")
    performance = "[README](../README.md) and [the benchmarks](../benchmarks/README.md)"
    assert site_links(performance, DOCS) == "[README](index.md) and [the benchmarks](path:../benchmarks/README.md)"
