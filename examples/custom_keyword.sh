#!/usr/bin/env bash
# custom_keyword.sh - train your own keyword end to end, offline:
#   1. kws data synth      render the keyword(s), unknown words and noise with offline TTS
#                          (only the allowed voices of ../shared/recipes/speech-data.md)
#   2. kws train           float teacher, then the binary student (every width/depth), exported
#                          to a .kws model (--task custom)
#   3. kws listen --file   detect the keyword in a test recording made from a held-out voice
#                          (a clip of the data set's testing split, between two stretches of noise)
#
#   bash examples/custom_keyword.sh                       # tiny: a toy model in a few minutes
#   WORDS="hey kiwi" PER_WORD=2000 ENGINES=all EPOCHS=30 BACKBONE=128 HIDDEN=256 BLOCKS=8 PROCS=2 \
#     OUT=runs/kiwi bash examples/custom_keyword.sh       # a real one (hours on 2 cores)
#
# Settings (environment variables; defaults are the tiny run):
#   WORDS            comma-separated keywords, phrases allowed        ("hey kiwi")
#   OUT              working folder: data/, model.kws, test.wav       (runs/custom-keyword)
#   PER_WORD         clips per keyword (unknown words get 60 % of all) (120)
#   ENGINES          TTS engines; "all" adds the Kokoro neural voices, ~1 s of CPU a clip, which a
#                    real model needs (espeak-ng,mbrola,flite,festival,pico,rhvoice)
#   NOISE_SECONDS    length of each background noise file             (20)
#   EPOCHS           student epochs; TEACHER_EPOCHS teacher epochs    (10; EPOCHS)
#   BACKBONE HIDDEN BLOCKS   network size (the default model: 128 256 8)  (64 64 4)
#   BATCH            global batch size                                (32)
#   PROCS            training processes (torchrun when > 1)           (1)
#   JOBS             parallel TTS renders (0: all CPUs)               (0)
#   THRESHOLD        detection threshold for step 3                   (0.5)
#   PYTHON           the interpreter with kws installed               (python3)
# Needs the TTS engines (bash scripts/install-tts.sh) and kws with its [train] extra
# (bash scripts/setup.sh). A rerun resumes the synthesis and reuses OUT/model.kws if it exists
# (delete it to train again). The tiny model is a toy: it shows the steps, not the accuracy.
set -euo pipefail
PY=${PYTHON:-python3}
WORDS=${WORDS:-hey kiwi}
OUT=${OUT:-runs/custom-keyword}
PER_WORD=${PER_WORD:-120}
ENGINES=${ENGINES:-espeak-ng,mbrola,flite,festival,pico,rhvoice}
[ "$ENGINES" = all ] && ENGINES=espeak-ng,mbrola,flite,festival,pico,rhvoice,kokoro
NOISE_SECONDS=${NOISE_SECONDS:-20}
EPOCHS=${EPOCHS:-10}
TEACHER_EPOCHS=${TEACHER_EPOCHS:-$EPOCHS}
BACKBONE=${BACKBONE:-64}
HIDDEN=${HIDDEN:-64}
BLOCKS=${BLOCKS:-4}
BATCH=${BATCH:-32}
PROCS=${PROCS:-1}
JOBS=${JOBS:-0}
THRESHOLD=${THRESHOLD:-0.5}
kws() { "$PY" -m kws "$@"; }
SECONDS=0
mkdir -p "$OUT"
DATA=$OUT/data
MODEL=$OUT/model.kws

echo "== 1/3 kws data synth: '$WORDS', $PER_WORD clips per keyword -> $DATA"
kws data synth --out "$DATA" --words "$WORDS" --per-word "$PER_WORD" --engines "$ENGINES" \
  --noise-seconds "$NOISE_SECONDS" --jobs "$JOBS" --no-progress

echo "== 2/3 kws train --task custom -> $MODEL  [${SECONDS} s so far]"
if [ -f "$MODEL" ]; then
  echo "   $MODEL exists: reusing it (delete it to train again)"
else
  train=(train --data "$DATA" --task custom --words "$WORDS" --out "$MODEL"
         --epochs "$EPOCHS" --teacher-epochs "$TEACHER_EPOCHS" --batch-size "$BATCH"
         --backbone "$BACKBONE" --hidden "$HIDDEN" --n-blocks "$BLOCKS" --seed 0 --no-progress)
  if [ "$PROCS" -gt 1 ]; then
    "$PY" -m torch.distributed.run --standalone --nproc_per_node "$PROCS" -m kws "${train[@]}"
  else
    kws "${train[@]}"
  fi
fi

echo "== 3/3 kws listen --file: a held-out voice saying the keyword, between noise  [${SECONDS} s so far]"
# the first keyword's first clip in the testing split (voices never trained on), else validation
folder=$("$PY" -c "from kws.data.tasks import parse_words; import sys; print(parse_words(sys.argv[1])[0])" "$WORDS")
clip=""
for list in testing_list.txt validation_list.txt; do
  clip=$(grep -m1 "^$folder/" "$DATA/$list" || true)
  [ -n "$clip" ] && break
done
[ -n "$clip" ] || { echo "no held-out clip of $folder in $DATA (raise PER_WORD)" >&2; exit 1; }
noise=$DATA/_background_noise_/pink_noise.wav
TEST=$OUT/test.wav
sox -q -v 0.3 "$noise" "$OUT/.lead.wav" trim 0 1.5          # noise at ~-30 dBFS
sox -q -v 0.3 "$noise" "$OUT/.tail.wav" trim 5 1.5
sox -q "$OUT/.lead.wav" "$DATA/$clip" "$OUT/.tail.wav" "$TEST"
rm -f "$OUT/.lead.wav" "$OUT/.tail.wav"
echo "   $TEST = 1.5 s noise + $clip (speech around 1.5-2.5 s) + 1.5 s noise"
for point in "1 $BLOCKS" "0.5 $((BLOCKS / 2))"; do
  read -r width blocks <<<"$point"
  echo "   operating point ${width}x${blocks}:"
  kws listen --model "$MODEL" --file "$TEST" --threshold "$THRESHOLD" --width "$width" --blocks "$blocks"
done
echo "custom_keyword.sh: done in ${SECONDS} s. On the microphone: $PY -m kws listen --model $MODEL"
