# dealerdocs: `make demo` and `make test` work on a fresh Debian-like machine (root installs the
# system packages; otherwise the exact apt-get command is printed).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

UNO_VENV := .venv-uno
UNO_STAMP := $(UNO_VENV)/.installed

.PHONY: setup system venv uno demo test bench clean-demo

setup: system venv uno

system:
	@bash tools/setup-system.sh

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "dealerdocs needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# unoserver runs under LibreOffice's own Python (Debian's python3-uno), so it gets a venv of
# /usr/bin/python3 that sees the system's uno module (engine/warm.py).
uno: $(UNO_STAMP)

$(UNO_STAMP):
	/usr/bin/python3 -m venv --system-site-packages $(UNO_VENV)
	$(UNO_VENV)/bin/python -m pip install --quiet unoserver==3.7
	$(UNO_VENV)/bin/python -c 'import uno, unoserver'
	@touch $(UNO_STAMP)

demo: setup
	$(PY) examples/demo.py --config config.toml

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/bench_documents.py
	$(PY) benchmarks/bench_speed.py
	$(PY) benchmarks/bench_showroom.py
	$(PY) benchmarks/bench_group.py

clean-demo:
	rm -rf store outbox/20*
