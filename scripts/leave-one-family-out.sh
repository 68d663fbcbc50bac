#!/usr/bin/env bash
# Leave-one-family-out (issue #16, 4d): train on every voice family but one (short schedule, the
# default model's recipe otherwise), then measure accuracy on the held-out family's testing clips:
# how well the model generalises to a kind of voice it has never heard. Resumes like train-default.sh.
#
#   DATA=runs/v3/data RUN=runs/v3 bash scripts/leave-one-family-out.sh     # families: neural donor
#   FAMILIES="neural donor formant" ... 
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/v3}
RUN=${RUN:-runs/v3}
NPROC=${NPROC:-2}
FAMILIES=${FAMILIES:-neural donor}
EPOCHS=${EPOCHS:-4}
REPORT=${REPORT:-docs/default-model}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
mkdir -p "$RUN" "$REPORT"
T0=$SECONDS
for FAM in $FAMILIES; do
  torchrun --standalone --nproc_per_node "$NPROC" -m kws train --data "$DATA" --task v1-12 \
      --out "$RUN/lofo-$FAM.kws" --workdir "$RUN/lofo-$FAM" --seed 0 \
      --teacher-epochs "$EPOCHS" --epochs "$EPOCHS" --optimizer adam --lr 3e-3 --student-lr 1e-3 \
      --acoustics realistic --noise-prob 0.5 --unknown-fraction 0.4 --spec-masks 2 \
      --student-plan center --inplace-kd 1 \
      --exclude-families "$FAM" --no-progress --resume
  kws eval --model "$RUN/lofo-$FAM.kws" --data "$DATA" --no-stream --json > "$REPORT/lofo-$FAM.json"
  echo "$(date -u +%FT%TZ) lofo $FAM: $((SECONDS - T0)) s" >> "$RUN/times.txt"
done
python - "$REPORT" $FAMILIES <<'PY'
import json, sys
rep, fams = sys.argv[1], sys.argv[2:]
for fam in fams:
    r = json.load(open(f"{rep}/lofo-{fam}.json"))
    acc = r["accuracy_by_source"]["family"][fam]["accuracy"]
    print(f"trained without {fam}: accuracy on {fam} " + ", ".join(f"{op} {a:.4f}" for op, a in acc.items()))
PY
