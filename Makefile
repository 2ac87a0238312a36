# Two commands on a fresh machine: `make demo` and `make test`. Each install step is followed
# by `pip check`, so a set of packages that does not work together fails loudly, in pip's words.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench clean docs

$(PY):
	$(PYTHON) -m venv $(VENV)

# The sample photo ships inside scikit-image: nothing is downloaded at run time. The images
# and train extras are what the README's walkthrough uses (figures, photos, the digits set);
# Numba, for its speeds, is a dependency. `convlayer` lands in .venv/bin: the last lines say
# how to put it on PATH.
demo: $(PY)
	$(PY) -m pip install --quiet -e '.[images,train]'
	$(PY) -m pip check
	$(VENV)/bin/convlayer demo --overwrite
	@echo
	@echo "convlayer is installed in $(VENV). To run it as 'convlayer', put $(VENV)/bin on PATH:"
	@echo "    source $(VENV)/bin/activate"
	@echo "    convlayer --help"
	@echo "(or, without activating: $(VENV)/bin/convlayer --help)"

# The test extra pins torch==2.13.0 (the reference oracle) and brings SciPy.
test: $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip check
	$(PY) -m pytest

# Property-based tests (tests/test_properties.py) with Hypothesis's "fuzz" profile: fresh random
# examples every run and many more of them than the quick, derandomized "ci" default.
.PHONY: fuzz
fuzz: $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest tests/test_properties.py

# The documentation site in docs/_build/html: the README's sections, the API reference, the
# executed tutorial notebook. Warnings are errors, as in `make test` (tests/test_docs.py).
docs: $(PY)
	$(PY) -m pip install --quiet -e '.[docs]'
	$(PY) -m pip check
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html
	@echo "convlayer docs: open docs/_build/html/index.html"

# The speed suite against PyTorch and JAX (docs/performance.md); about 1.5 minutes.
bench: $(PY)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m pip check
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(VENV)/bin/convlayer bench

clean:
	rm -rf $(VENV) build src/*.egg-info convlayer-demo.png docs/_build

# The README's pictures: docs/make_gallery.py runs `convlayer explain` once per picture.
.PHONY: gallery
gallery: $(PY)
	$(PY) -m pip install --quiet -e '.[images]'
	$(PY) docs/make_gallery.py
