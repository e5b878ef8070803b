# didcommd — the two commands that matter are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# The second, independent DIDComm implementation used by the interop tests
# (the `didcomm` PyPI package pins old attrs/typing-extensions that break
# libp2p, so it lives in its own venv and is driven as a subprocess).
IVENV  := .venv-interop
STAMP  := $(VENV)/.installed
ISTAMP := $(IVENV)/.installed

.PHONY: run test lint bench venv interop-venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

$(ISTAMP):
	$(PYTHON) -m venv $(IVENV)
	$(IVENV)/bin/python -m pip install -q --upgrade pip
	$(IVENV)/bin/python -m pip install -q 'didcomm==0.3.2'
	touch $@

venv: $(STAMP)
interop-venv: $(ISTAMP)

run: $(STAMP)
	$(VENV)/bin/didcommd run

test: $(STAMP) $(ISTAMP)
	DIDCOMMD_INTEROP_PYTHON=$(abspath $(IVENV))/bin/python $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check protocols daemon tests bench
	$(VENV)/bin/mypy --strict protocols

# Each script prints its figures next to a baseline measured in the same run;
# envelope and p2p also rewrite their own section of bench/RESULTS.md.
bench: $(STAMP) $(ISTAMP)
	DIDCOMMD_INTEROP_PYTHON=$(abspath $(IVENV))/bin/python $(PY) bench/envelope.py --markdown bench/RESULTS.md
	$(PY) bench/control.py
	$(PY) bench/store.py
	$(PY) bench/credentials.py
	$(PY) bench/sealing.py
	$(PY) bench/chat.py
	$(PY) bench/connections.py
	$(PY) bench/p2p_daemons.py --markdown bench/RESULTS.md   # runs bench/p2p.py too

clean:
	rm -rf $(VENV) $(IVENV) build *.egg-info .pytest_cache .mypy_cache .hypothesis
