#!/usr/bin/env bash
# Issue 23 end to end, for a machine that can afford it (an H200: ~2 min per student, long_time took 112 s
# there; the 2 shared CPU cores: ~16 min per student uncontended, plus ~30 min for the teacher's soft targets).
#   1. the greedy ensemble's soft targets for every labelled record (cached under $ECGNET_CACHE, once);
#   2. six students of long_time's size and recipe: α ∈ {0.5, 0.8} × T ∈ {1, 2} on window targets,
#      α = 0.5, T = 1 on record targets, and α = 0.5, T = 1 on a longer schedule (80 epochs, patience 30) —
#      fold 9 chooses among them (reports/distill/choose.py);
#   3. the side-by-side benchmark (teacher, students, long_time) into benchmarks/results/bench_distill.json.
# Usage: ECGNET_DATA=... ECGNET_CACHE=... bash reports/distill/run_grid.sh [--parallel]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
ECGNET=${ECGNET:-.venv/bin/ecgnet}
TEACHER=runs/ensemble_greedy
declare -A GRID=(
  [distill_long_time]="--set training.distill_weight=0.5 --set training.distill_temperature=1"
  [distill_long_time_a08]="--set training.distill_weight=0.8 --set training.distill_temperature=1"
  [distill_long_time_t2]="--set training.distill_weight=0.5 --set training.distill_temperature=2"
  [distill_long_time_a08_t2]="--set training.distill_weight=0.8 --set training.distill_temperature=2"
  [distill_long_time_record]="--set training.distill_target=record"
  [distill_long_time_e80]="--set training.epochs=80 --set training.patience=30"
)
mkdir -p logs
# soft targets first (one process), so the students share the cache instead of each computing it
$PY -c "from pathlib import Path; from ecgnet.distill.run import soft_targets; from ecgnet.data.ptbxl import data_root; \
print(soft_targets(Path('$TEACHER'), 'superdiagnostic', data_root()))"
for name in "${!GRID[@]}"; do
  cmd="$ECGNET distill --teacher $TEACHER --student configs/distill_long_time.yaml --set name=$name ${GRID[$name]} --no-progress"
  if [[ "${1:-}" == "--parallel" ]]; then $cmd > "logs/$name.log" 2>&1 & else $cmd > "logs/$name.log" 2>&1; fi
done
wait
$PY -m reports.distill.choose
