#!/usr/bin/env bash
# Produce the reports of one torch version in its own virtual environment:
#   reports/produce.sh TORCH_VERSION [DEVICE] [--compile] [-- EXTRA RUN OPTIONS]
# e.g. reports/produce.sh 2.5.1             -> reports/torch-2.5.1-cpu/{results.json,junit.xml,summary.md,html/}
#      reports/produce.sh 2.13.0 --compile  -> reports/torch-2.13.0-cpu-compile/ (torch.compile, inductor)
#
# The environment is kept under $LOSS_CONFORMANCE_VENVS (default ~/.cache/loss-conformance/venvs/torch-VERSION)
# and reused by later calls. Every package but torch (and sympy, which each torch release pins itself) is
# pinned by requirements/constraints.txt, so two versions' reports differ only by torch. A torch release that is
# not on this machine's disk comes from the registry with its CUDA libraries (about 5 GB, 1.5 minutes here); it
# runs on the CPU all the same. An interrupted run continues where it stopped when the script is run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -lt 1 || "$1" == -* ]]; then
    echo "usage: reports/produce.sh TORCH_VERSION [DEVICE] [--compile] [-- EXTRA RUN OPTIONS]" >&2
    exit 2
fi
version="$1"; shift
device="cpu"
if [[ $# -gt 0 && "$1" != "--" && "$1" != "--compile" ]]; then device="$1"; shift; fi
backend="torch"; suffix=""
if [[ $# -gt 0 && "$1" == "--compile" ]]; then backend="torch-compile"; suffix="-compile"; shift; fi
if [[ $# -gt 0 && "$1" == "--" ]]; then shift; fi

venv="${LOSS_CONFORMANCE_VENVS:-$HOME/.cache/loss-conformance/venvs}/torch-$version"
out="reports/torch-$version-${device//:/}$suffix"

if [[ ! -x "$venv/bin/loss-conformance" ]] || ! "$venv/bin/python" -c "import torch, matplotlib" 2>/dev/null; then
    python3 -m venv "$venv"
    grep -v -E '^(torch|sympy)==' requirements/constraints.txt > "$venv/constraints.txt"
    "$venv/bin/pip" install -q -c "$venv/constraints.txt" "torch==$version" -e ".[plots]"  # plots: the HTML report's
fi
installed=$("$venv/bin/python" -c "import torch; print(torch.__version__)")
echo "torch $installed in $venv -> $out" >&2

mkdir -p "$out"
resume=()
if [[ -e "$out/results.json.partial" ]]; then resume=(--resume); else rm -f "$out/results.json"; fi
status=0
"$venv/bin/loss-conformance" run --backend "$backend" --device "$device" --quiet --json "$out/results.json" --junit "$out/junit.xml" \
    --markdown "$out/summary.md" "${resume[@]}" "$@" || status=$?
if [[ ! -e "$out/results.json" ]]; then
    echo "run ended with status $status before writing results (configuration error or interruption)" >&2
    exit "$status"
fi
"$venv/bin/loss-conformance" report "$out/results.json" -o "$out/html"
echo "run status $status (0: conforming, 1: unexpected failures, 2: case or harness errors);" \
     "report in $out/html/index.html" >&2
exit "$status"
