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

# Fashion-MNIST from Debian's package when apt is available and the data is not found yet.
data:
	@test -d /usr/share/datasets/fashion-mnist || \
	  (command -v apt-get >/dev/null && (apt-get install -y -qq dataset-fashion-mnist || \
	   (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist))) || \
	  echo "Fashion-MNIST not installed from Debian; papernets will look in --data-dir, PAPERNETS_DATA and its cache."

demo: install data
	$(BIN)/papernets train --dataset fashion-mnist --recipe fast-fashion-mnist --output runs/demo --html

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
