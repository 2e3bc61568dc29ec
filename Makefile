# The two set-up commands of the README: `make demo` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install demo test bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,ui,tensorboard,mlflow,executor,gpu]'
	touch $@

install: $(VENV)/.installed

demo: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash examples/demo.sh

test: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash ci/test.sh

bench: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m benchmarks.run_all
