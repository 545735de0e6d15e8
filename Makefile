# Two commands on a fresh machine: `make demo` (train and report on Fashion-MNIST) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install data clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# MNIST and Fashion-MNIST, found or installed (Debian's package, the fetch tool beside this checkout, or the
# official mirrors): see scripts/get-data.sh. The demo and the tests need both.
data: install
	bash scripts/get-data.sh $(BIN)/papernets mnist fashion-mnist

demo: install
	bash scripts/get-data.sh $(BIN)/papernets fashion-mnist
	$(BIN)/papernets train --dataset fashion-mnist --recipe fast-fashion-mnist --output runs/demo --html

test: install data
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
