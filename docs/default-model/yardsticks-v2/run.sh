#!/bin/bash
# v2 baselines on issue #16's yardsticks (2026-12-06 session)
set -x
cd /work/runs/yard
export OPENBLAS_NUM_THREADS=1
T0=$SECONDS
KW=yes,no,up,down,left,right,on,off,stop,go
[ -f data/synth_report.json ] || kws data synth --out data --engines espeak-ng,mbrola,flite,festival,pico,rhvoice,kokoro --words $KW --per-word 120 --unknown-per-word 20 --noise-seconds 30 --jobs 2 --seed 16 --no-progress > synth.log 2>&1
echo "synth $((SECONDS-T0)) s" >> times.txt
[ -f speech.flac ] || kws data stream --out speech.flac --kind speech --minutes 20 --engines espeak-ng,mbrola,festival,kokoro --seed 16 > stream_speech.log 2>&1
echo "speech stream $((SECONDS-T0)) s" >> times.txt
[ -f music.flac ] || kws data stream --out music.flac --kind music --minutes 30 --seed 16 > stream_music.log 2>&1
[ -f babble.flac ] || kws data stream --out babble.flac --kind babble --minutes 15 --engines espeak-ng,mbrola,festival --seed 16 > stream_babble.log 2>&1
echo "streams $((SECONDS-T0)) s" >> times.txt
kws eval --data data --json --stream-ops all --negative-stream speech.flac --negative-stream music.flac --noise-dbfs -50 > eval_quiet.json 2> eval_quiet.err
echo "eval quiet $((SECONDS-T0)) s" >> times.txt
kws eval --data data --json --stream-ops all --stream-noise babble.flac --stream-snr 10 > eval_babble10.json 2> eval_babble10.err
kws eval --data data --json --stream-ops all --stream-noise music.flac --stream-snr 10 > eval_music10.json 2> eval_music10.err
echo "all $((SECONDS-T0)) s" >> times.txt
