# Two commands on a fresh machine (see README): `make report` and `make test`.
# Both create .venv if it is missing and install the project into it first.
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.ganrepro-installed
CORES   ?= 1
# Empty = Snakemake's default target, the furthest stage that exists so far.
TARGET  ?=
SNAKEMAKE_ARGS ?=
PYTEST_ARGS ?=

export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install report test bench constraints clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e '.[test]'
	touch $@

report: install
	$(BIN)/snakemake --cores $(CORES) $(SNAKEMAKE_ARGS) $(TARGET)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/ganrepro bench data

# Refresh the pinned versions after changing dependencies in pyproject.toml.
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/python -m pip install -e '.[test]'
	{ echo "# Tested versions for 'pip install -c constraints.txt -e .[test]' (Python 3.11, Linux x86-64)."; \
	  echo "# Regenerate with: make constraints"; \
	  .venv-constraints/bin/python -m pip freeze --exclude-editable | grep -v '^ganrepro'; } > constraints.txt
	rm -rf .venv-constraints

clean:
	rm -rf results .snakemake
