#!/usr/bin/env bash
# Time a study at two commits, one right after the other on this machine (these VMs differ in
# speed by 2x and drift within minutes: compare versions side by side, never against a figure from
# another day), and print each one's wall time and per-stage table (bench/benchmark.py --stages-only).
#
#   bash bench/side_by_side.sh OLD_COMMIT [NEW_COMMIT] [-- snakemake arguments]
#
# NEW_COMMIT defaults to HEAD; the snakemake arguments to `--cores all` (add e.g.
# `--configfile config/smoke.yaml`, whose study name then goes in STUDY=smoke). Each commit runs in a
# fresh scratch copy (`git archive`, committed so that its runs carry a commit) under
# ${SIDE_BY_SIDE_DIR:-/tmp/mudiff-side-by-side}; the installed environment is this one's.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
old=${1:?usage: bash bench/side_by_side.sh OLD_COMMIT [NEW_COMMIT] [-- snakemake arguments]}
shift
new=HEAD
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    new=$1
    shift
fi
[ "${1:-}" = "--" ] && shift
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--cores all)
study=${STUDY:-default}
root=${SIDE_BY_SIDE_DIR:-/tmp/mudiff-side-by-side}
rm -rf "$root"
mkdir -p "$root"

for label in old new; do
    rev=$old
    [ "$label" = new ] && rev=$new
    dir="$root/$label"
    mkdir -p "$dir"
    git -C "$repo" archive "$rev" | tar xf - -C "$dir"
    (cd "$dir" && git init -q && git add -A && git -c user.email=bench@mudiff -c user.name=bench commit -qm "$rev")
    echo "== $label: $(git -C "$repo" rev-parse --short "$rev"), snakemake ${args[*]} (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    start=$(date +%s.%N)
    (cd "$dir" && snakemake "${args[@]}" >snakemake.out 2>&1) || {
        tail -20 "$dir/snakemake.out"
        exit 1
    }
    end=$(date +%s.%N)
    python -c "import sys; print(f'{sys.argv[1]}: {float(sys.argv[3]) - float(sys.argv[2]):.1f} s wall')" \
        "$label" "$start" "$end" | tee "$dir/wall.txt"
done

for label in old new; do
    echo
    echo "== $label ($(cat "$root/$label/wall.txt"))"
    (cd "$root/$label" && python "$repo/bench/benchmark.py" --stages-only --study "$study" --out "$root/$label/stages.json") |
        sed -n '/^study /,/^$/p'
done
