#!/usr/bin/env bash
# The diffs between the committed reports: each torch release against the one before it, and the first
# against the last; and eager torch against torch.compile of the same release wherever reports/ has both.
# Usage: reports/diffs.sh [VERSION ...] (default: the versions in reports/, oldest first).
# Writes reports/diffs/torch-OLD..torch-NEW.{md,json} (and torch-V..torch-V-compile); prints each verdict.
# Exit status 1 when a diff between consecutive versions shows a regression, as `loss-conformance diff` does.
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
compare() {  # compare OLD NEW [SUFFIX]: reports/torch-OLD-cpu against reports/torch-NEW-cpuSUFFIX
    local old="$1" new="$2" suffix="${3:-}" name="torch-$1..torch-$2${3:-}" code=0
    "$cli" diff "reports/torch-$old-cpu/results.json" "reports/torch-$new-cpu$suffix/results.json" --quiet \
        --markdown "reports/diffs/$name.md" --json "reports/diffs/$name.json" || code=$?
    echo "$name: $(sed -n 3p "reports/diffs/$name.md")"
    return "$code"
}
for ((i = 1; i < ${#versions[@]}; i++)); do
    compare "${versions[i-1]}" "${versions[i]}" || status=1
done
if [[ ${#versions[@]} -gt 2 ]]; then compare "${versions[0]}" "${versions[-1]}" || true; fi
for version in "${versions[@]}"; do
    if [[ -e "reports/torch-$version-cpu-compile/results.json" ]]; then
        compare "$version" "$version" -compile || true  # a compiler's own differences, not a regression
    fi
done
exit "$status"
