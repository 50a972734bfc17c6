# dealerdocs: `make demo` and `make test` work on a fresh Debian-like machine (root installs the
# system packages; otherwise the exact apt-get command is printed).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

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

# The warm pool's worker (engine/office.py) runs under the system Python with LibreOffice's
# uno module (Debian's python3-uno, installed by `make system`); it needs nothing from pip.
uno:
	@/usr/bin/python3 -c 'import uno' || (echo "the warm converter needs python3-uno for /usr/bin/python3" >&2; exit 1)

demo: setup
	$(PY) examples/demo.py --config config.toml

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/bench_peer.py
	$(PY) benchmarks/bench_documents.py
	$(PY) benchmarks/bench_speed.py
	$(PY) benchmarks/bench_showroom.py
	$(PY) benchmarks/bench_group.py

clean-demo:
	rm -rf store outbox/20*
