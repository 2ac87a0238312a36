"""Sphinx configuration for convlayer's documentation site.

Build it with ``make docs``, or as ``make test`` does (tests/test_docs.py):

    python -m sphinx -W --keep-going -b html docs OUTPUT_DIR

Pages are Markdown (MyST); most of them include sections of the README between its
``<!-- docs: NAME -->`` markers, so the text lives in one place. The API reference is autodoc
with numpydoc, the tutorial (tutorial.ipynb) is executed by myst-nb on every build.
"""

import os
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
# Document (and run the tutorial on) the convlayer beside these pages, not another one that
# happens to be installed; the notebook's kernel is a child process and inherits PYTHONPATH.
sys.path.insert(0, str(SRC))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))

import convlayer  # noqa: E402  (after the path above)

project = "convlayer"
author = "the convlayer authors"
copyright = "convlayer authors, MIT licence"
release = version = convlayer.__version__

extensions = [
    "myst_nb",  # Markdown pages (it brings myst-parser) and the executed tutorial notebook
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",  # the docstrings are NumPy style
]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
suppress_warnings = []

# MyST: `#section` anchors for headings down to ### (the README links to them), and
# $...$ maths in the notebook.
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

# The tutorial runs on every build, in a temporary folder, and a failing cell (an assert
# that catches the library computing something wrong) fails the build.
nb_execution_mode = "force"
nb_execution_in_temp = True
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 300

# autodoc + numpydoc: members in each module's __all__, in source order; the class-member
# tables of numpydoc are left out (they need autosummary stub pages, and autodoc already
# lists every documented member below its class).
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # the docstrings' type lines say it (shapes included)
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

html_theme = "alabaster"  # Sphinx's own: no theme package to install
# Wide enough for the README's 100-column code blocks beside the sidebar.
html_theme_options = {"page_width": "1240px", "sidebar_width": "230px"}
html_title = f"convlayer {release}"
html_static_path = []


def _links_out_of_the_site(app, docname, source):
    """Point performance.md's links to Markdown files outside docs/ at what the site has.

    The page is written for reading on its own beside the README: ``../README.md`` is the
    site's front page here, and other Markdown files outside ``docs/`` (benchmarks/README.md)
    are not pages of the site, so they are linked as files (MyST's ``path:``).
    """
    if docname == "performance":
        text = source[0].replace("](../README.md)", "](index.md)")
        source[0] = re.sub(r"\]\((\.\./[^)#\s]+\.md)\)", r"](path:\1)", text)


def setup(app):
    app.connect("source-read", _links_out_of_the_site)
