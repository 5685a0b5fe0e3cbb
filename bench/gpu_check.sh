#!/usr/bin/env bash
# The GPU check: on a machine with one NVIDIA GPU, within about 8 minutes, the Fashion-MNIST study end
# to end, then the benchmark, with every result, log and the benchmark JSON written under OUTDIR.
#
#   bash bench/gpu_check.sh OUTDIR              # one GPU: the `check` size below
#   bash bench/gpu_check.sh OUTDIR --size full  # config/fashion_mnist.yaml unchanged (well over 8 minutes)
#   bash bench/gpu_check.sh OUTDIR --cpu-tiny   # the CPU rehearsal CI runs (tests/test_gpu_check.py):
#                                               #   a tiny study and `benchmark.py --quick`, ~3-4 min on 2 cores
#   ... --config-only                           # only write (and validate) the study's OUTDIR/config.yaml
#
# Prerequisites: the Python wheels the project's install pulls (README, "GPU check", says how to carry
# them to an offline machine), git, and the Fashion-MNIST files (the four .gz files of
# /usr/share/datasets/fashion-mnist, Debian's dataset-fashion-mnist; another folder through
# MUDIFF_FASHION_MNIST). Other settings: PYTHON (the interpreter; default python3), MUDIFF_CHECK_MODELS=1
# (copy the model files too; by default they stay out of OUTDIR, which keeps it small: MLflow records
# each by path and sha256), MUDIFF_CHECK_KEEP=1 (keep the scratch copy), TMPDIR (where it is made).
#
# Sizes (the study's config is written to OUTDIR/config.yaml; everything else is config/fashion_mnist.yaml):
#   check  a bank of 64 models (of 256; 12 epochs, 70% of the 60,000 images); 5 of the 10 forget sets
#          (random, memorization_low, _high and _mix, risk_ranked: 3,000 images each) and 19 of the 120 unlearn
#          jobs: every method on memorization_mix, retrain on all 5, finetune on the first 4, rsu:finetune on
#          risk_ranked (55 jobs in all). Target (30 epochs) and all 13 scores as the config has them.
#          Runs with `--resources gpu=1` and `device: cuda` (a job that sees no GPU fails, never falls back).
#          Its cost on one H100, estimated from an independent implementation's figures there (not yet
#          measured by this project): the bank 64 x 12 x 42k = 32M images at 474k images/s, ~70 s (the
#          full bank of 256: 272 s there); the target, the unlearn jobs and the scores about 22M images of
#          one small CNN at an assumed 100k images/s, ~220 s; ~60 job start-ups (CUDA's included) ~60 s;
#          the benchmark ~100 s. About 7-8 minutes in all. The full study (120 unlearn jobs, 1 GPU job at
#          a time) would take about 25.
#   tiny   (--cpu-tiny; CPU) a 1,000-image subset, the small CNN for 2 epochs, a bank of 8 models of 2 epochs,
#          3 scores, one random forget set of 50, retrain and finetune; the benchmark's --quick sizes.
set -euo pipefail

usage() {
    sed -n '2,9p' "$0" >&2
    exit 2
}

OUTDIR=""
SIZE=check
CONFIG_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
    --cpu-tiny) SIZE=tiny ;;
    --config-only) CONFIG_ONLY=1 ;;
    --size)
        [ $# -ge 2 ] || usage
        SIZE="$2"
        shift
        ;;
    -h | --help) usage ;;
    -*) usage ;;
    *)
        [ -z "$OUTDIR" ] || usage
        OUTDIR="$1"
        ;;
    esac
    shift
done
[ -n "$OUTDIR" ] || usage
case "$SIZE" in check | full | tiny) ;; *) usage ;; esac

REPO="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$OUTDIR"
OUT="$(cd "$OUTDIR" && pwd)"
PY_EXE="$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)')"
DATA="${MUDIFF_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
DATA="$(cd "$DATA" 2>/dev/null && pwd || echo "$DATA")"
START=$SECONDS
PHASES="$OUT/phases.tsv"
printf 'phase\tstatus\tseconds\n' >"$PHASES"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1

say() { echo "gpu_check: $*"; }
die() {
    say "ERROR: $*"
    exit 1
}

# A phase runs to its end whatever its status; the script fails at the end if any phase failed.
FAILED=0
phase() {
    local name="$1" t0=$SECONDS status=ok
    shift
    say "--- $name"
    "$@" || status="failed (exit $?)"
    printf '%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - t0))" >>"$PHASES"
    if [ "$status" != ok ]; then
        FAILED=1
        say "$name: $status"
    fi
}

# ----------------------------------------------------------------------------- prerequisites
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    [ -f "$DATA/$f" ] || die "no $DATA/$f: install Debian's dataset-fashion-mnist or set MUDIFF_FASHION_MNIST"
done
command -v git >/dev/null || die "git is needed (the study's copy is a git repository: jobs tag their runs with its commit)"
"$PY_EXE" -c 'import torch, snakemake, mlflow, dvc, yaml' 2>/dev/null ||
    die "$PY_EXE lacks the project's packages (torch, snakemake, mlflow, dvc): pip install the project (README, GPU check)"

# ----------------------------------------------------------------------------- the study's config
write_config() {
    (cd "$REPO" && "$PY_EXE" - "$SIZE" "$DATA" "$OUT/config.yaml") <<'EOF'
import sys
from pathlib import Path

import yaml

sys.path.insert(0, "workflow")
from mudiff.config import validate  # noqa: E402

size, data, out = sys.argv[1:]
cfg = yaml.safe_load(Path("config/fashion_mnist.yaml").read_text())
cfg["data"]["source"] = data
if size == "check":
    cfg.update(name="fashion_mnist_check", device="cuda")
    cfg["bank"]["models"] = 64
    # 5 of the 10 forget sets (retrain runs on every one the study builds)
    cfg["forget_sets"].update(by_score={"memorization": ["low", "high", "mix"]}, entanglement=False, class_id=None)
    for method, block in cfg["unlearn"].items():
        if method == "finetune":
            block["forget_sets"] = ["random", "memorization_low", "memorization_high", "memorization_mix"]
        elif method.startswith("rsu:"):
            block["forget_sets"] = ["risk_ranked"]
        elif method != "retrain":
            block["forget_sets"] = ["memorization_mix"]
elif size == "tiny":
    cfg["name"] = "fashion_mnist_tiny"
    cfg["data"].update(train_size=1000, subset_seed=0)
    cfg["train"].update(epochs=2, checkpoints=1)
    cfg["bank"].update(models=8, epochs=2)
    cfg["scores"]["names"] = ["memorization", "confidence", "centroid_distance"]
    cfg["forget_sets"] = {"size": 50, "seed": 0, "random": True, "by_score": {}, "entanglement": False,
                          "risk_ranked": False, "class_id": None}
    cfg["unlearn"] = {"retrain": {}, "finetune": {"lr": 0.01, "epochs": 1}}
validate(cfg)  # the Snakefile validates it again; here a bad override fails before anything runs
text = f"# bench/gpu_check.sh, size {size}: config/fashion_mnist.yaml with the check's overrides\n"
text += yaml.safe_dump(cfg, sort_keys=False)
Path(out).write_text(text)
print(cfg["name"])
print(f"bank {cfg['bank']['models']} models x {cfg['bank']['epochs']} epochs; target {cfg['train']['epochs']} epochs; "
      f"{len(cfg['scores']['names'])} scores; methods {', '.join(cfg['unlearn'])}", file=sys.stderr)
EOF
}
STUDY="$(write_config)" || die "the study's config did not validate"
say "study $STUDY: config $OUT/config.yaml"
[ "$CONFIG_ONLY" = 0 ] || exit 0

if [ "$SIZE" = tiny ]; then
    BENCH_ARGS=(--quick --device cpu)
else
    "$PY_EXE" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' ||
        die "no CUDA device visible to torch; for the CPU rehearsal run: bash $0 OUTDIR --cpu-tiny"
    BENCH_ARGS=(--device cuda)
fi
say "size $SIZE; output $OUT; python $PY_EXE; data $DATA"

# ----------------------------------------------------------------------------- the machine
record_machine() {
    mkdir -p "$OUT/env"
    {
        echo "source: $REPO"
        git -C "$REPO" rev-parse HEAD 2>/dev/null || echo "(not a git checkout)"
        git -C "$REPO" status --short 2>/dev/null | sed 's/^/  changed: /' || true
        echo "host: $(hostname); $(uname -srm); $(nproc) CPUs; date $(date -Is)"
    } >"$OUT/env/source.txt"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi >"$OUT/env/nvidia-smi.txt" 2>&1 || true
        nvidia-smi -q >"$OUT/env/nvidia-smi-q.txt" 2>&1 || true
    else
        echo "nvidia-smi: not found" >"$OUT/env/nvidia-smi.txt"
    fi
    "$PY_EXE" -m pip freeze >"$OUT/env/pip-freeze.txt" 2>&1 || true
    "$PY_EXE" - "$OUT/env/torch.json" <<'EOF'
import json, os, sys
import torch
info = {
    "torch": torch.__version__,
    "cuda": torch.version.cuda,
    "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    "cuda_available": torch.cuda.is_available(),
    "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
    "threads": torch.get_num_threads(),
    "devices": [],
}
for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
    p = torch.cuda.get_device_properties(i)
    info["devices"].append(
        {"index": i, "name": p.name, "uuid": str(getattr(p, "uuid", "")), "capability": f"{p.major}.{p.minor}",
         "memory_gib": round(p.total_memory / 2**30, 1), "multiprocessors": p.multi_processor_count}
    )
open(sys.argv[1], "w").write(json.dumps(info, indent=2) + "\n")
print(json.dumps(info))
EOF
}
phase machine record_machine

# ----------------------------------------------------------------------------- a scratch copy of the repo
# The study runs in a copy, a git repository of its own, so it writes nothing into the checkout.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mudiff-gpu-check.XXXXXX")"
SAMPLER=""
cleanup() {
    [ -z "$SAMPLER" ] || kill "$SAMPLER" 2>/dev/null || true
    if [ "${MUDIFF_CHECK_KEEP:-0}" = 1 ]; then say "scratch copy kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
mkdir -p "$WORK/repo" "$WORK/bin"
REPO_COPY="$WORK/repo"
# Jobs run `python -m mudiff`: `python` is this interpreter, whatever else is on the PATH.
printf '#!/bin/sh\nexec "%s" "$@"\n' "$PY_EXE" >"$WORK/bin/python"
chmod +x "$WORK/bin/python"
export PATH="$WORK/bin:$PATH"
unset MLFLOW_TRACKING_URI # the study's own store, in the copy (copied to OUTDIR at the end)
export PYTHONUNBUFFERED=1
export MLFLOW_DISABLE_TELEMETRY=true # an offline machine: no usage reports attempted by every job

copy_repo() {
    local skip=(results logs benchmarks data downloads .snakemake mlflow.db mlartifacts .git .pytest_cache
        .ruff_cache build .whl .fmnist bench_out .data.dvc.lock .dvc/cache .dvc/tmp)
    local excludes=(--exclude=__pycache__ --exclude='*.egg-info')
    local s
    for s in "${skip[@]}"; do excludes+=("--exclude=./$s"); done
    case "$OUT/" in "$REPO"/*) excludes+=("--exclude=./${OUT#"$REPO"/}") ;; esac # OUTDIR inside the checkout
    # (a phase's commands run without errexit, as the right side of `||`: each step is chained)
    # What git tracks or would track (so no wheels/, venv or other ignored bulk); every file where the
    # checkout is no git repository.
    if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$REPO" ls-files -z -co --exclude-standard |
            tar -C "$REPO" "${excludes[@]}" --null -T - -cf - | tar -C "$REPO_COPY" -xf -
    else
        tar -C "$REPO" "${excludes[@]}" -cf - . | tar -C "$REPO_COPY" -xf -
    fi &&
        cp "$OUT/config.yaml" "$REPO_COPY/config/$STUDY.yaml" &&
        git -C "$REPO_COPY" init -q &&
        git -C "$REPO_COPY" add -A &&
        git -C "$REPO_COPY" -c user.email=gpu-check@mudiff -c user.name=gpu-check commit -qm "gpu check: a copy of $REPO"
}
phase copy copy_repo

# ----------------------------------------------------------------------------- sample the GPU meanwhile
if [ "$SIZE" != tiny ] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,index,utilization.gpu,memory.used,power.draw,clocks.sm \
        --format=csv -l 5 >"$OUT/env/nvidia-smi-during.csv" 2>&1 &
    SAMPLER=$!
fi

# ----------------------------------------------------------------------------- the study, end to end
run_study() {
    (cd "$REPO_COPY" && python -m snakemake --cores all --resources gpu=1 --configfile "config/$STUDY.yaml") \
        > >(tee "$OUT/snakemake.log") 2>&1
}
phase study run_study
# Every output against its MLflow run, commit, code and data (python -m mudiff audit).
run_audit() {
    local status=0
    (cd "$REPO_COPY" && PYTHONPATH="$REPO_COPY/workflow${PYTHONPATH:+:$PYTHONPATH}" python -m mudiff audit "results/$STUDY") \
        >"$OUT/audit.log" 2>&1 || status=$?
    tail -3 "$OUT/audit.log"
    return "$status"
}
phase audit run_audit

# ----------------------------------------------------------------------------- the benchmark
run_benchmark() {
    (cd "$REPO_COPY" && python bench/benchmark.py "${BENCH_ARGS[@]}" --study "$STUDY" --out "$OUT/benchmark.json") \
        > >(tee "$OUT/benchmark.log") 2>&1
}
phase benchmark run_benchmark
[ -z "$SAMPLER" ] || kill "$SAMPLER" 2>/dev/null || true
SAMPLER=""

# ----------------------------------------------------------------------------- everything into OUTDIR
collect() {
    local excludes=()
    [ "${MUDIFF_CHECK_MODELS:-0}" = 1 ] || excludes=(--exclude='*.pt')
    local have=() d
    for d in results logs benchmarks data.dvc; do [ ! -e "$REPO_COPY/$d" ] || have+=("$d"); done
    mkdir -p "$OUT/study" "$OUT/mlflow" &&
        (cd "$REPO_COPY" && tar "${excludes[@]}" -cf - "${have[@]}") | tar -C "$OUT/study" -xf - &&
        if [ -d "$REPO_COPY/.snakemake/log" ]; then cp -r "$REPO_COPY/.snakemake/log" "$OUT/study/snakemake-logs"; fi &&
        cp "$REPO_COPY/mlflow.db" "$OUT/mlflow/" &&
        if [ -d "$REPO_COPY/mlartifacts" ]; then cp -r "$REPO_COPY/mlartifacts" "$OUT/mlflow/"; fi &&
        { find "$REPO_COPY/results" -name '*.pt' -exec ls -l {} + >"$OUT/study/model-files.txt" 2>/dev/null || true; }
}
phase collect collect

# ----------------------------------------------------------------------------- the summary
"$PY_EXE" - "$OUT" "$STUDY" "$SIZE" "$((SECONDS - START))" <<'EOF' | tee "$OUT/summary.txt" || FAILED=1
import csv, json, sys
from pathlib import Path

out, study, size, elapsed = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
ok = True
print(f"\n=== gpu_check summary: size {size}, study {study}, {elapsed} s in all ({elapsed / 60:.1f} min) ===")
if size == "check":
    print("    " + ("within" if elapsed <= 480 else "OVER") + " the 8-minute target")
print("\nphase        status                seconds")
for row in csv.DictReader(open(out / "phases.tsv"), delimiter="\t"):
    print(f"{row['phase']:<12} {row['status']:<21} {row['seconds']:>7}")

bench_file = out / "benchmark.json"
if bench_file.is_file():
    bench = json.loads(bench_file.read_text())
    stages = bench.get("stages", {}).get(study) or {}
    if stages:
        print(f"\nstage (rule)     jobs   wall s  (sum over jobs, from benchmarks/{study}/)")
        for rule, s in sorted(stages.items(), key=lambda kv: -kv[1].get("seconds", 0.0)):
            print(f"{rule:<16} {s.get('jobs', 0):>4} {s.get('seconds', 0.0):>8.1f}")
    else:
        ok = False
        print(f"\nno stage times for {study} in {bench_file}")
    reference = {"bank_smallcnn_28_vs_tight_loop": "474k (256 models, 12 epochs)",
                 "resnet18_32_bf16_cl_vs_fp32": "52.7k vs 19.8k", "resnet18_32_tf32_vs_fp32": "-"}
    print(f"\nbenchmark ({bench['device']})                ours img/s  baseline img/s   ratio  reference (one H100)")
    for key, r in {**bench.get("ratios", {}), **bench.get("reference", {})}.items():
        print(f"{key:<40} {r['ours_images_per_s']:>10.0f} {r['baseline_images_per_s']:>15.0f} {r['ratio']:>6.2f}x"
              f"  {reference.get(key, '')}")
else:
    ok = False
    print(f"\nno {bench_file}")

report = out / "study" / "results" / study / "report.md"
print(f"\nreport: {report}" + ("" if report.is_file() else "  MISSING"))
ok &= report.is_file()
try:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow' / 'mlflow.db'}")
    exp = client.get_experiment_by_name(study)
    runs = client.search_runs([exp.experiment_id], max_results=5000) if exp else []
    where = {}
    for run in runs:
        t = run.data.tags
        key = (t.get("mudiff.device", "-"), t.get("mudiff.gpu_id", "-"),
               ", ".join(f"{k.removeprefix('mudiff.cuda.')}={v}" for k, v in sorted(t.items()) if k.startswith("mudiff.cuda.")))
        where[key] = where.get(key, 0) + 1
    status = {}
    for run in runs:
        status[run.info.status] = status.get(run.info.status, 0) + 1
    print(f"MLflow: {out / 'mlflow' / 'mlflow.db'}, experiment {study}: {len(runs)} runs {status}")
    for (device, gpu, cuda), n in sorted(where.items()):
        if device == "-":
            print(f"  {n:>4} runs of jobs that use no device (tables, figures, data)")
            continue
        print(f"  {n:>4} runs on {device}" + (f", GPU {gpu}" if gpu != "-" else "") + (f"; {cuda}" if cuda else ""))
    ok &= bool(runs) and set(status) == {"FINISHED"}
except Exception as err:  # noqa: BLE001 - the summary says what it could not read
    ok = False
    print(f"MLflow: could not read the store ({type(err).__name__}: {err})")
print(f"\neverything is under {out}")
sys.exit(0 if ok else 1)
EOF

if [ "$FAILED" != 0 ]; then
    say "FAILED: see $PHASES and the logs under $OUT"
    exit 1
fi
say "done in $((SECONDS - START)) s"
