#!/usr/bin/env bash
# Produce the reports of one framework adapter (jax, onnxruntime, paddle, mlx, liger) in its own virtual environment:
#   reports/produce-adapter.sh NAME [-- EXTRA RUN OPTIONS]
# e.g. reports/produce-adapter.sh jax   -> reports/jax-0.10.2-cpu/{results.json,junit.xml,summary.md,html/}
#
# The environment is $LOSS_CONFORMANCE_ADAPTER_VENV if set (one venv may hold every framework), else
# ~/.cache/loss-conformance/venvs/adapter-NAME, made on first use with `pip install -c requirements/constraints.txt
# -e ".[NAME]"`: the framework versions are those pinned there, and torch is not installed (no adapter needs it).
# The deviation file is cases/xfails/NAME.yaml (documented semantic differences only: defects stay failures).
# --timeout 30: paddle's nll_loss corrupts the heap and can leave a later call hanging in malloc; no adapter call
# of the default corpus takes more than a few seconds. Run one adapter at a time on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -lt 1 || "$1" == -* ]]; then
    echo "usage: reports/produce-adapter.sh NAME [-- EXTRA RUN OPTIONS]   (NAME: jax, onnxruntime, paddle, mlx, liger)" >&2
    exit 2
fi
name="$1"; shift
if [[ $# -gt 0 && "$1" == "--" ]]; then shift; fi

venv="${LOSS_CONFORMANCE_ADAPTER_VENV:-${LOSS_CONFORMANCE_VENVS:-$HOME/.cache/loss-conformance/venvs}/adapter-$name}"
if [[ ! -x "$venv/bin/loss-conformance" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -c requirements/constraints.txt -e ".[$name]"
fi
version=$("$venv/bin/python" -c "from conformance.backends import load_backend; print(load_backend('$name').describe()['version'])")
out="reports/$name-$version-cpu"
echo "$name $version in $venv -> $out" >&2

mkdir -p "$out"
resume=()
if [[ -e "$out/results.json.partial" ]]; then resume=(--resume); else rm -f "$out/results.json"; fi
status=0
"$venv/bin/loss-conformance" run --backend "$name" --jobs 2 --timeout 30 --quiet --json "$out/results.json" \
    --junit "$out/junit.xml" --markdown "$out/summary.md" "${resume[@]}" "$@" || status=$?
if [[ ! -e "$out/results.json" ]]; then
    echo "run ended with status $status before writing results (configuration error or interruption)" >&2
    exit "$status"
fi
"$venv/bin/loss-conformance" report "$out/results.json" -o "$out/html"
echo "run status $status (0: conforming, 1: unexpected failures, 2: case or harness errors);" \
     "report in $out/html/index.html" >&2
exit "$status"
