# Two commands do all set-up on a fresh Debian machine with Python 3.11:
#   make demo   - runs salesproc on the built-in sample data
#   make test   - runs every test (lint, layers, types, unit, integration, browser, notebooks);
#                 installs what it needs first: the Debian packages (tools/system-packages.sh) and .venv
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-notebooks system-packages lint typecheck bench bench-render screenshots clean workshop workshop-app

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name salesproc --display-name "Python (salesproc)" >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/salesproc demo

lint: $(STAMP)
	$(BIN)/ruff check salesproc tests benchmarks tools scripts
	$(BIN)/lint-imports

# Debian's chromium, poppler-utils, postgresql, fonts and pango, each only when missing
system-packages:
	bash tools/system-packages.sh

typecheck: $(STAMP)
	$(BIN)/mypy

test: system-packages $(STAMP) lint typecheck
	$(BIN)/python -m pytest -n 2 -q
	$(MAKE) --no-print-directory test-notebooks

# Every workshop notebook, top to bottom on the sample data, under nbval (cells marked
# NBVAL_CHECK_OUTPUT are compared with their stored output). They run on a fresh copy in a temporary
# folder, as a facilitator's first run would, so nothing is written into the checkout.
NBVAL := --nbval-lax --nbval-current-env --nbval-sanitize-with nbval_sanitize.cfg -p no:cacheprovider
test-notebooks: $(STAMP)
	$(BIN)/python tools/notebooks.py check
	@d=$$(mktemp -d) && cp notebooks/*.ipynb notebooks/nbval_sanitize.cfg "$$d" && start=$$(date +%s) && \
	  (cd "$$d" && $(CURDIR)/$(BIN)/python -m pytest -q -n 2 --dist loadfile $(NBVAL) .); rc=$$?; \
	  echo "notebook suite: $$(( $$(date +%s) - start )) s"; rm -rf "$$d"; exit $$rc

# The workshop: JupyterLab on 127.0.0.1 with the notebooks (the facilitator projects this).
# (--allow-root only where make runs as root, e.g. in a container.)
workshop: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

# The template editor as a clickable app (Voila), for facilitators who do not want to see code.
workshop-app: $(STAMP)
	cd notebooks && $(CURDIR)/$(BIN)/voila --Voila.ip=127.0.0.1 template-editor-app.ipynb

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# 1,000+ deal reviews with a chart each, batch-rendered (target: <= 30 s on 2 cores)
bench-render: $(STAMP)
	$(BIN)/python benchmarks/bench_render.py

# The README's two screenshots (docs/img/), from the sample deals, in headless Chromium
screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
