#!/usr/bin/env bash
# The diffs between the committed reports: each torch release against the one before it, and the first
# against the last. Usage: reports/diffs.sh [VERSION ...] (default: the versions in reports/, oldest first).
# Writes reports/diffs/torch-OLD..torch-NEW.{md,json}; prints each verdict. Exit status 1 when a diff
# between consecutive versions shows a regression, as `loss-conformance diff` does.
set -euo pipefail
cd "$(dirname "$0")/.."
cli="${LOSS_CONFORMANCE:-loss-conformance}"
if [[ $# -gt 0 ]]; then
    versions=("$@")
else
    mapfile -t versions < <(ls -d reports/torch-*-cpu | sed -E 's|reports/torch-(.*)-cpu|\1|' | sort -V)
fi
mkdir -p reports/diffs
status=0
compare() {
    local old="$1" new="$2" name="torch-$1..torch-$2" code=0
    "$cli" diff "reports/torch-$old-cpu/results.json" "reports/torch-$new-cpu/results.json" --quiet \
        --markdown "reports/diffs/$name.md" --json "reports/diffs/$name.json" || code=$?
    echo "$name: $(sed -n 3p "reports/diffs/$name.md")"
    return "$code"
}
for ((i = 1; i < ${#versions[@]}; i++)); do
    compare "${versions[i-1]}" "${versions[i]}" || status=1
done
if [[ ${#versions[@]} -gt 2 ]]; then compare "${versions[0]}" "${versions[-1]}" || true; fi
exit "$status"
