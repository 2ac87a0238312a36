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

DOCS = Path(__file__).resolve().parent
REPOSITORY = DOCS.parent
SRC = REPOSITORY / "src"
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
    "numpydoc",  # the docstrings are NumPy style
]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# MyST: `#section` anchors for headings down to ### (the README links to performance.md's).
myst_heading_anchors = 3

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

_LINK = re.compile(r"(?<!!)\[([^\]\n]*)\]\(([^)\s#]+)(#[^)\s]*)?\)")  # [label](target#fragment), not images


def _site_links(text: str, folder: Path) -> str:
    """Point the links of a Markdown file in ``folder`` that leave docs/ at what the site has.

    The README and docs/performance.md are written to be read in the repository, beside the
    files they link to. In the site, the README is the front page (a link to it goes there),
    another file of the repository becomes a download link (MyST's ``path:``, relative to
    docs/) and a folder plain text. Links to pages in docs/ and images stay as they are
    (the include directive's relative-docs and relative-images options handle those).
    """

    def rewrite(match):
        label, target, fragment = match.groups()
        if ":" in target:  # https://..., mailto:, path:, project:
            return match.group(0)
        file = (folder / target).resolve()
        if file == REPOSITORY / "README.md":
            return f"[{label}](index.md)"  # its sections' anchors live on other pages now
        if file == DOCS or DOCS in file.parents or not file.exists():
            return match.group(0)  # a page of the site, or a broken link for Sphinx to report
        if file.is_dir():
            return label
        return f"[{label}](path:{os.path.relpath(file, DOCS)})"

    return _LINK.sub(rewrite, text)


def _include_read(app, relative_path, parent_docname, content):
    content[0] = _site_links(content[0], (DOCS / relative_path).resolve().parent)


def _source_read(app, docname, source):
    if app.env.doc2path(docname).suffix == ".md":
        source[0] = _site_links(source[0], (DOCS / docname).parent)


def setup(app):
    app.connect("include-read", _include_read)
    app.connect("source-read", _source_read)
