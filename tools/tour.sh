#!/usr/bin/env bash
# make tour: regenerates the pictures and outputs of docs/tour.md into
# docs/tour/. Trains its own tiny model first (build/tour-model: 2 layers,
# 4 heads, width 128, 600 steps of 16 × 64 bytes of the King James Bible;
# about a minute on 2 idle cores), so every picture comes from a real run.
#   tools/tour.sh [BUILD]     (TOUR_STEPS=N to change the training length)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
slm=$BUILD/slm
out=docs/tour
model=build/tour-model
corpus=build/data/kjv.txt
mkdir -p "$out"
tools/make-corpus.sh "$corpus"

echo "tour: the causal mask and the softmax of the seeds' example"
"$slm" mask 5 >"$out/mask.txt"
"$slm" mask 5 -o "$out/mask.svg"
"$slm" softmax --causal --row 2 1 1 1 8 >"$out/softmax-decoder.txt"
"$slm" softmax --causal --row 2 1 1 1 8 -o "$out/softmax-decoder.svg"
"$slm" softmax 1 1 1 8 >"$out/softmax-encoder.txt"
"$slm" softmax 1 1 1 8 -o "$out/softmax-encoder.svg"

echo "tour: training a tiny model ($model)"
rm -rf "$model"
# --threads 2: a run is byte-identical for the same thread count
"$slm" train --data "$corpus" --out "$model" --tokenizer byte --layers 2 --heads 4 --dim 128 \
    --context 64 --batch 16 --steps "${TOUR_STEPS:-600}" --lr 3e-3 --warmup 30 --eval-every 50 \
    --seed 1337 --threads 2 | tee "$out/train.txt"
"$slm" info -m "$model" >"$out/info.txt"

echo "tour: loss curves, attention heads, generation"
"$slm" plot "$model" -o "$out/loss.svg"
prompt="And God said, Let"
"$slm" attention -m "$model" -p "$prompt" --layer 1 -o "$out/heads.svg"
"$slm" attention -m "$model" -p "$prompt" --layer 1 --head 2 -o "$out/head.svg"
"$slm" attention -m "$model" -p "$prompt" --all -o "$out/all.png"
"$slm" ffn -m "$model" -p "$prompt" --layer 1 --units 40 -o "$out/ffn.svg"
"$slm" generate -m "$model" -p "And God said" -n 12 --temperature 0 --show-probs 5 \
    >"$out/show-probs.txt"
"$slm" generate -m "$model" -p "And God said" -n 200 --temperature 0.8 --seed 7 \
    >"$out/generate.txt"
echo "tour: pictures and outputs in $out/"
