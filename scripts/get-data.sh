#!/usr/bin/env bash
# `make data`: makes MNIST and Fashion-MNIST available to papernets (the tests and the demo train on both).
# For each data set, the first of these that works:
#   1. already found where papernets looks (--data-dir, $PAPERNETS_DATA, /usr/share/datasets, the cache);
#   2. Fashion-MNIST: Debian's package `dataset-fashion-mnist` (apt-get, as root);
#      MNIST: $FETCH_MNIST (default ../shared/tools/fetch-mnist) where that tool exists — on machines that reach
#      only package registries it installs the byte-exact official files (MD5-checked) in /usr/share/datasets/mnist;
#   3. `papernets data download NAME`: the official mirrors, into the cache, verified against published MD5s.
# Usage: scripts/get-data.sh PAPERNETS_COMMAND [DATASET ...]   (default: mnist fashion-mnist)
set -uo pipefail
papernets=$1; shift
datasets=("$@")
[ $# -eq 0 ] && datasets=(mnist fashion-mnist)
fetch_mnist=${FETCH_MNIST:-../shared/tools/fetch-mnist}

# Where papernets finds the data set ("" when nowhere): `papernets data list` checks that every file is there.
where() {
  "$papernets" data list --json 2>/dev/null |
    python3 -c 'import json, sys; print(next((row["found"] or "") for row in json.load(sys.stdin) if row["name"] == sys.argv[1]))' "$1"
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }

install_fashion_mnist_from_debian() {
  command -v apt-get >/dev/null || return 1
  export DEBIAN_FRONTEND=noninteractive
  # --reinstall: the package may be recorded as installed while its files were removed.
  as_root apt-get install -y -qq --reinstall dataset-fashion-mnist >/dev/null 2>&1 ||
    { as_root apt-get update -qq >/dev/null 2>&1 && as_root apt-get install -y -qq --reinstall dataset-fashion-mnist >/dev/null; }
}

install_mnist_with_fetch_tool() {
  [ -x "$fetch_mnist" ] || return 1
  as_root "$fetch_mnist"
}

failed=0
for name in "${datasets[@]}"; do
  folder=$(where "$name")
  if [ -n "$folder" ]; then
    echo "$name: found in $folder"
    continue
  fi
  case $name in
    fashion-mnist) install_fashion_mnist_from_debian ;;
    mnist) install_mnist_with_fetch_tool ;;
  esac
  folder=$(where "$name")
  if [ -n "$folder" ] || download_error=$("$papernets" data download "$name" 2>&1 >/dev/null); then
    echo "$name: installed in ${folder:-$(where "$name")}"
  else
    reason=${download_error#error: }
    echo "make data: $name could not be installed here (no Debian package or fetch tool, and ${reason,})" >&2
    failed=1
  fi
done
exit $failed
