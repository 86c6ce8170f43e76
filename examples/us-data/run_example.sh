#!/usr/bin/env bash
# End-to-end check of the example pipeline.
#
#   examples/us-data/run_example.sh [--once] [WORK_DIR]
#
# Runs the whole chain (db -> datasets -> package -> regional + national fit
# -> area catalogue -> worker for all 489 areas in LPT batches -> manifest)
# in WORK_DIR/run1 (default: a fresh mktemp dir), checks the outputs, then
# (unless --once) runs it again in WORK_DIR/run2 and requires every output
# file to be byte-identical, and that a killed + resumed fit equals an
# uninterrupted one. The data build runs as the real one does, in this
# tree's policyengine_us_data/storage/ (its results are copied to the run dir).
#
# Environment: PYTHON (default /tmp/exvenv/bin/python, else python3),
# HOUSEHOLDS=2000 SEED=1 N_CLONES=3 EPOCHS=200 NATIONAL_EPOCHS=200 NUM_WORKERS=4.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

ONCE=0
if [[ "${1:-}" == "--once" ]]; then ONCE=1; shift; fi
WORK="${1:-$(mktemp -d -t us-data-example.XXXXXX)}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x /tmp/exvenv/bin/python ]]; then PYTHON=/tmp/exvenv/bin/python; else PYTHON=python3; fi
fi
HOUSEHOLDS="${HOUSEHOLDS:-2000}"
SEED="${SEED:-1}"
N_CLONES="${N_CLONES:-3}"
EPOCHS="${EPOCHS:-200}"
NATIONAL_EPOCHS="${NATIONAL_EPOCHS:-200}"
NUM_WORKERS="${NUM_WORKERS:-4}"
YEAR=2024
CONFIG=calibration/target_config.yaml

"$PYTHON" -c "import numpy, h5py" 2>/dev/null || {
  echo "error: $PYTHON lacks numpy/h5py; python3 -m venv /tmp/exvenv && /tmp/exvenv/bin/pip install -r $HERE/requirements.txt" >&2
  exit 2
}

# Byte-compile once: with PYTHONDONTWRITEBYTECODE set, every one of the ~489
# worker processes would otherwise recompile the example's modules.
"$PYTHON" -m compileall -q policyengine_us_data modal_app >/dev/null

now() { date +%s.%N; }
TIMINGS=""
stage() { # stage NAME cmd...
  local name="$1"; shift
  local t0 t1
  t0=$(now)
  "$@"
  t1=$(now)
  local dt
  dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
  TIMINGS+="$(printf '  %-28s %8ss' "$name" "$dt")"$'\n'
  echo "[stage] $name: ${dt}s" >&2
}
fail() { echo "FAIL: $*" >&2; exit 1; }
py() { "$PYTHON" "$@"; }

fit_flags_regional=(--device cpu --target-config "$CONFIG" --beta 0.65 --lambda-l0 1e-7 --lambda-l2 1e-8
  --learning-rate 0.15 --log-freq 100 --seed 42)
fit_flags_national=(--device cpu --target-config "$CONFIG" --beta 0.65 --lambda-l0 2e-2 --lambda-l2 1e-12
  --learning-rate 0.15 --log-freq 100 --seed 42 --national)

run_workers() { # OUT_DIR LOG_DIR
  local d="$1" out="$1/local_area" logs="$1/logs"
  mkdir -p "$logs"
  py -m policyengine_us_data.calibration.partitioning --areas "$d/areas.json" \
    --num-workers "$NUM_WORKERS" --output "$logs/chunks.json"
  local n
  n=$(py -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$logs/chunks.json")
  local pids=()
  for ((i = 0; i < n; i++)); do
    local items
    items=$(py -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1]))[int(sys.argv[2])]))" "$logs/chunks.json" "$i")
    py -m modal_app.worker_script --work-items "$items" \
      --weights-path "$d/calibration_weights.npy" --geography-path "$d/geography_assignment.npz" \
      --dataset-path "$d/source_imputed_stratified_extended_cps_2024.h5" --db-path "$d/policy_data.db" \
      --output-dir "$out" --n-clones "$N_CLONES" --seed 42 \
      >"$logs/worker_$i.json" 2>"$logs/worker_$i.err" &
    pids+=($!)
  done
  local rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  py -m modal_app.worker_script --work-items '[{"type":"national","id":"US"}]' \
    --weights-path "$d/national_calibration_weights.npy" --geography-path "$d/national_geography_assignment.npz" \
    --dataset-path "$d/source_imputed_stratified_extended_cps_2024.h5" --db-path "$d/policy_data.db" \
    --output-dir "$out" --n-clones "$N_CLONES" --seed 42 \
    >"$logs/worker_national.json" 2>"$logs/worker_national.err" || rc=1
  [[ $rc == 0 ]] || { cat "$logs"/*.err >&2; fail "a worker failed"; }
}

STORAGE=policyengine_us_data/storage
DB_MODULES=(create_database_tables "create_initial_strata --year $YEAR" "etl_national_targets --year $YEAR"
  "etl_age --year $YEAR" "etl_medicaid --year $YEAR" "etl_snap --year $YEAR" "etl_tanf --year $YEAR"
  "etl_state_income_tax --year $YEAR" "etl_irs_soi --year $YEAR" "etl_aca_agi_state_targets --year $YEAR"
  "etl_aca_marketplace --year $YEAR" "etl_pregnancy --year $YEAR" validate_database)
DATA_MODULES=(datasets.acs.acs datasets.puf.irs_puf datasets.cps.cps datasets.puf.puf datasets.cps.extended_cps
  datasets.cps.enhanced_cps calibration.create_stratified_cps calibration.create_source_imputed_cps
  datasets.cps.small_enhanced_cps "storage.upload_completed_datasets --validate-only")

run_data() { # DIR: the real-contract data build in STORAGE (fixed paths), its results copied to DIR
  local d="$1" m
  git clean -qfdX "$STORAGE" 2>/dev/null || rm -f "$STORAGE"/*.h5 "$STORAGE"/*.csv "$STORAGE/calibration/policy_data.db"
  py -m policyengine_us_data.storage.download_private_prerequisites >/dev/null
  for m in "${DB_MODULES[@]}"; do py -m policyengine_us_data.db.$m >/dev/null; done
  for m in "${DATA_MODULES[@]}"; do EXAMPLE_HOUSEHOLDS="$HOUSEHOLDS" EXAMPLE_SEED="$SEED" py -m policyengine_us_data.$m >/dev/null; done
  cp "$STORAGE/calibration/policy_data.db" "$d/"
  cp "$STORAGE"/*.h5 "$STORAGE"/uprating_factors.csv "$d/"
}

run_chain() { # DIR
  local d="$1"
  rm -rf "$d"; mkdir -p "$d"
  TIMINGS=""
  stage "data (make download database data-legacy)" run_data "$d"
  stage "build package" py -m policyengine_us_data.calibration.unified_calibration --device cpu --epochs 0 --build-only \
    --db-path "$d/policy_data.db" --dataset "$d/source_imputed_stratified_extended_cps_2024.h5" \
    --package-output "$d/calibration_package.pkl" --n-clones "$N_CLONES" --target-config "$CONFIG" --seed 42 >/dev/null
  stage "fit regional" py -m policyengine_us_data.calibration.unified_calibration "${fit_flags_regional[@]}" \
    --epochs "$EPOCHS" --package-path "$d/calibration_package.pkl" --output-dir "$d" \
    --checkpoint-output "$d/calibration_weights.checkpoint.npz" >"$d/fit_regional.log"
  stage "fit national" py -m policyengine_us_data.calibration.unified_calibration "${fit_flags_national[@]}" \
    --epochs "$NATIONAL_EPOCHS" --package-path "$d/calibration_package.pkl" --output-dir "$d" \
    --checkpoint-output "$d/national_calibration_weights.checkpoint.npz" >"$d/fit_national.log"
  stage "area_catalog" py -m policyengine_us_data.calibration.area_catalog --db-path "$d/policy_data.db" --output "$d/areas.json" >/dev/null
  stage "workers (489 areas)" run_workers "$d"
  stage "manifest" py -m policyengine_us_data.utils.manifest --h5-dir "$d/local_area" --run-id example-run --version "$(py -c 'import tomllib;print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')" --output "$d/local_area/manifest.json" >/dev/null
  printf '%s' "$TIMINGS" >"$d/logs/timings.txt"
}

check_chain() { # DIR
  local d="$1"
  grep -q '^OUTPUT_PATH:' "$d/fit_regional.log" || fail "no OUTPUT_PATH marker"
  for m in OUTPUT_PATH GEOGRAPHY_PATH LOG_PATH CAL_LOG_PATH CONFIG_PATH CHECKPOINT_PATH; do
    grep -q "^$m:" "$d/fit_national.log" || fail "national fit lacks $m"
  done
  py - "$d" <<'PY'
import json, os, sys
d = sys.argv[1]
def fail(msg):
    sys.exit("FAIL: " + msg)
areas = json.load(open(os.path.join(d, "areas.json")))
kinds = {}
for a in areas:
    kinds[a["type"]] = kinds.get(a["type"], 0) + 1
if len(areas) != 489 or kinds != {"state": 51, "district": 436, "city": 1, "national": 1}:
    fail("area catalogue counts %s" % kinds)
m = json.load(open(os.path.join(d, "local_area", "manifest.json")))
t = m["totals"]
if (t["states"], t["districts"], t["cities"], t["national"]) != (51, 436, 1, 1):
    fail("manifest totals %s" % t)
for a in areas:
    if a["path"] not in m["files"]:
        fail("missing %s" % a["path"])
logs = os.path.join(d, "logs")
done = []
for name in sorted(os.listdir(logs)):
    if name.startswith("worker_") and name.endswith(".json"):
        line = open(os.path.join(logs, name)).read().strip().splitlines()[-1]
        r = json.loads(line)
        if r["failed"] or r["errors"]:
            fail("%s: %s" % (name, r["errors"]))
        done += r["completed"]
if len(done) != 489 or len(set(done)) != 489:
    fail("workers completed %d items" % len(done))
for prefix in ("", "national_"):
    cfg = json.load(open(os.path.join(d, prefix + "unified_run_config.json")))
    # tiny runs (fewer columns than districts) cannot reach most district targets
    factor = 0.5 if cfg["n_records"] * cfg["n_clones"] >= 2000 else 1.0
    if not cfg["mean_error_pct"] < factor * cfg["initial_mean_error_pct"]:
        fail("%sfit did not improve enough: %s -> %s" % (prefix, cfg["initial_mean_error_pct"], cfg["mean_error_pct"]))
    print("  %-9s fit: mean rel error %.2f%% -> %.2f%% (%d/%d nonzero weights)" % (
        prefix.rstrip("_") or "regional", cfg["initial_mean_error_pct"], cfg["mean_error_pct"],
        cfg["weight_nonzero"], cfg["n_records"] * cfg["n_clones"]))
print("  outputs OK: 489 areas, manifest %d files, %d bytes" % (len(m["files"]), t["total_size_bytes"]))
PY
  py -m policyengine_us_data.utils.manifest --h5-dir "$d/local_area" --verify "$d/local_area/manifest.json" >/dev/null \
    || fail "manifest verification"
}

hash_tree() { # DIR -> "sha  relpath" lines (logs excluded: they hold timings)
  (cd "$1" && find . -type f ! -path './logs/*' ! -name '*.log' -print0 | sort -z | xargs -0 sha256sum)
}

time_single_worker() { # DIR
  local d="$1" tmp="$WORK/single"
  local ts=()
  for id in AL-01 CA-12 TX-07 NY-10 WY-01; do
    rm -rf "$tmp"
    local t0 t1
    t0=$(now)
    py -m modal_app.worker_script --work-items "[{\"type\":\"district\",\"id\":\"$id\"}]" \
      --weights-path "$d/calibration_weights.npy" --geography-path "$d/geography_assignment.npz" \
      --dataset-path "$d/source_imputed_stratified_extended_cps_2024.h5" --db-path "$d/policy_data.db" \
      --output-dir "$tmp" --n-clones "$N_CLONES" --seed 42 >/dev/null 2>&1
    t1=$(now)
    ts+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')")
    cmp -s "$tmp/districts/$id.h5" "$d/local_area/districts/$id.h5" || fail "single-area rebuild of $id differs"
  done
  rm -rf "$tmp"
  echo "  single-area worker invocations (s): ${ts[*]}"
}

T0=$(now)
echo "== run1 in $WORK/run1 (HOUSEHOLDS=$HOUSEHOLDS SEED=$SEED N_CLONES=$N_CLONES EPOCHS=$EPOCHS)"
run_chain "$WORK/run1"
check_chain "$WORK/run1"
echo "-- stage timings (run1):"; cat "$WORK/run1/logs/timings.txt"
time_single_worker "$WORK/run1"

if [[ $ONCE == 1 ]]; then
  echo "OK (single run) in $(awk -v a="$T0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')s"
  exit 0
fi

echo "== run2 (determinism)"
run_chain "$WORK/run2"
check_chain "$WORK/run2"
hash_tree "$WORK/run1" >"$WORK/run1.sha256"
hash_tree "$WORK/run2" >"$WORK/run2.sha256"
if ! diff -u "$WORK/run1.sha256" "$WORK/run2.sha256" >"$WORK/determinism.diff"; then
  cat "$WORK/determinism.diff" >&2
  fail "run1 and run2 differ"
fi
echo "  determinism OK: $(wc -l <"$WORK/run1.sha256") files byte-identical across two runs"

echo "== fit resume equivalence"
R="$WORK/resume"; rm -rf "$R"; mkdir -p "$R/a" "$R/b"
HALF=$((EPOCHS / 2))
py -m policyengine_us_data.calibration.unified_calibration "${fit_flags_regional[@]}" --epochs "$HALF" \
  --package-path "$WORK/run1/calibration_package.pkl" --output-dir "$R/a" --checkpoint-output "$R/a/ckpt.npz" >/dev/null
py -m policyengine_us_data.calibration.unified_calibration "${fit_flags_regional[@]}" --epochs "$EPOCHS" \
  --package-path "$WORK/run1/calibration_package.pkl" --output-dir "$R/a" --checkpoint-output "$R/a/ckpt.npz" \
  --resume-from "$R/a/ckpt.npz" >"$R/a.log"
grep -q "Resuming from .* at epoch $HALF of $EPOCHS" "$R/a.log" || fail "resume did not pick up the checkpoint"
# kill -9 a slowed-down fit after its first checkpoint, then resume
EXAMPLE_FIT_SLEEP_MS=15 "$PYTHON" -m policyengine_us_data.calibration.unified_calibration "${fit_flags_regional[@]}" \
  --epochs "$EPOCHS" --package-path "$WORK/run1/calibration_package.pkl" --output-dir "$R/b" \
  --checkpoint-output "$R/b/ckpt.npz" >"$R/b0.log" 2>&1 &
FIT_PID=$!
for _ in $(seq 1 300); do [[ -f "$R/b/ckpt.npz" ]] && break; sleep 0.05; done
kill -9 "$FIT_PID" 2>/dev/null || true
wait "$FIT_PID" 2>/dev/null || true
[[ -f "$R/b/ckpt.npz" ]] || fail "no checkpoint before kill"
[[ ! -f "$R/b/calibration_weights.npy" ]] || fail "fit finished before it was killed; raise EXAMPLE_FIT_SLEEP_MS"
py -m policyengine_us_data.calibration.unified_calibration "${fit_flags_regional[@]}" --epochs "$EPOCHS" \
  --package-path "$WORK/run1/calibration_package.pkl" --output-dir "$R/b" --checkpoint-output "$R/b/ckpt.npz" \
  --resume-from "$R/b/ckpt.npz" >"$R/b.log"
for f in calibration_weights.npy geography_assignment.npz unified_diagnostics.csv calibration_log.csv unified_run_config.json; do
  cmp "$R/a/$f" "$WORK/run1/$f" || fail "resumed ($HALF+rest) $f differs from uninterrupted run"
  cmp "$R/b/$f" "$WORK/run1/$f" || fail "killed+resumed $f differs from uninterrupted run"
done
cmp "$R/a/ckpt.npz" "$WORK/run1/calibration_weights.checkpoint.npz" || fail "final checkpoint differs"
echo "  resume OK: $(head -1 "$R/b.log")"
echo "OK: all checks passed in $(awk -v a="$T0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')s (work dir $WORK)"
