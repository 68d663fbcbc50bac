#!/bin/bash
# Default model v2 on the v3 yardsticks (2026-12-06, Intel Xeon family 6 model 207), the same
# commands as scripts/train-default.sh step 5: the data set and streams of its steps 1-2
# (DATA=runs/v3/data RUN=runs/v3: testing split of the v3 data; test-speech.flac 60 min,
# test-music.flac 30 min, test-babble.flac 15 min, seed 17), the model as it shipped before v3.
set -e
cd runs/v3
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
M=v2.kws            # git show 984e956:kws/models/default.kws > runs/v3/v2.kws
OUT=../../docs/default-model/v2
kws eval --model $M --data data --stream-ops all --noise-dbfs -50 \
    --negative-stream test-speech.flac --negative-stream test-music.flac --json > $OUT/clean.json
kws eval --model $M --data data --stream-ops all --stream-noise test-babble.flac --stream-snr 10 --json > $OUT/babble10.json
kws eval --model $M --data data --stream-ops all --stream-noise test-music.flac --stream-snr 10 --json > $OUT/music10.json
python ../../scripts/yardsticks_table.py --model v2=$OUT/
