# Two commands on a fresh machine (see README): `make report` and `make test`.
# Both create .venv if it is missing and install the project into it first.
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.ganrepro-installed
CORES   ?= all
# Empty = the Snakefile's default target, rule `report` (the reproducibility report). It goes
# first on the command line: a --configfile in SNAKEMAKE_ARGS takes every word after it.
TARGET  ?=
SNAKEMAKE_ARGS ?=
PYTEST_ARGS ?=

export PATH := $(abspath $(BIN)):$(PATH)

# Debian's TeX packages for the PDF (about 30 s, no recommends). Installed by `make report`
# when latexmk is missing and this is root on Debian/Ubuntu; otherwise report.tex is still
# made and the log says how to get the PDF.
TEX_PACKAGES := latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended lmodern

.PHONY: install tex report test bench constraints clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e '.[test]'
	touch $@

tex:
	@if command -v latexmk >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing TeX for the report PDF: $(TEX_PACKAGES)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEX_PACKAGES); \
	else \
	  echo "latexmk not found: the report will stop at results/report/report.tex;" \
	       "for the PDF install TeX (Debian/Ubuntu: sudo apt-get install $(TEX_PACKAGES))"; \
	fi

report: install tex
	$(BIN)/snakemake $(TARGET) --cores $(CORES) $(SNAKEMAKE_ARGS)

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
