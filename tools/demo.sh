#!/usr/bin/env bash
# make demo: derive the default corpus (the King James Bible, public domain,
# from Debian's bible-kjv), train a small byte-level GPT on it with a progress
# bar, print the validation loss, then let it write.
#   tools/demo.sh [BUILD]      (DEMO_STEPS=N to shorten the run)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
corpus=build/data/kjv.txt
model=build/demo-model
tools/make-corpus.sh "$corpus"
steps=${DEMO_STEPS:-800}
echo "slm demo: training a 4-layer, 4-head, 256-wide byte-level GPT (3.2M parameters)"
echo "          on the King James Bible ($(wc -c <"$corpus") bytes), $steps steps of 32 x 128 bytes"
rm -rf "$model"
"$BUILD/slm" train --data "$corpus" --out "$model" --tokenizer byte \
    --layers 4 --heads 4 --dim 256 --context 128 --batch 32 \
    --steps "$steps" --lr 2e-3 --warmup 40 --eval-every 100 --save-every 200 --seed 1337 \
    --dtype bf16
echo
echo "slm demo: the model writes (slm generate -m $model -p 'And God said' -n 300):"
echo
printf 'And God said'
"$BUILD/slm" generate -m "$model" -p "And God said" -n 300 --temperature 0.8 --seed 7
echo
