# Two commands on a fresh clone:  make ask Q="..."  and  make test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
Q ?= Which river flows through Vienna?

.PHONY: setup ask search test bench clean

$(BIN)/webqa: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build; a bare "torch" requirement could pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[policy,build,test]"
	touch $(BIN)/webqa

setup: $(BIN)/webqa

# Answer a question by browsing the embedded encyclopedia (converts the base model on first use).
ask: setup
	$(BIN)/webqa ask "$(Q)"

# Search the embedded encyclopedia and open the best page.
search: setup
	$(BIN)/webqa search "$(Q)"
	$(BIN)/webqa open "$$($(BIN)/webqa search --json "$(Q)" | $(BIN)/python -c 'import json,sys; print(json.load(sys.stdin)[0]["url"])')" --lines 30

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/env.py
	$(BIN)/python bench/policy.py

clean:
	rm -rf $(VENV) .pytest_cache
