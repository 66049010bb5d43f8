#!/usr/bin/env bash
# Valgrind memcheck over the CLI's main paths: a short `slm train` (2 threads),
# --resume, generate, eval, info, tokenize/detokenize with the GPT-2 BPE, and a
# few refused inputs (their error paths must free everything too). Exits 9 if
# memcheck reports an error or a leak (definite, indirect or possible; see
# tools/valgrind.supp for the thread-pool allocations that are not ours).
#
#   tools/valgrind.sh            (about a minute on 2 cores)
#
# Builds build/valgrind with PORTABLE=1: valgrind 3.19 cannot decode AVX-512,
# which -march=native uses on this machine.
set -u
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    echo "slm: installing valgrind" >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        valgrind >/dev/null || exit 1
fi
make --no-print-directory -j2 BUILD=build/valgrind PORTABLE=1 build/valgrind/slm >/dev/null || exit 1
slm=build/valgrind/slm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=2
for i in $(seq 60); do
    echo "It was the best of times, it was the worst of times, line $i of the tale."
done >"$tmp/data.txt"

passed=0 failed=0
vg() { # expected-exit-status name args...
    local want=$1 name=$2
    shift 2
    valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
        --suppressions=tools/valgrind.supp --log-file="$tmp/vg.log" "$slm" "$@" \
        >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ "$rc" -eq "$want" ] && [ ! -s "$tmp/vg.log" ]; then
        echo "ok $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name: exit $rc (want $want)"
        sed 's/^/    /' "$tmp/vg.log" "$tmp/err" | head -40
        failed=$((failed + 1))
    fi
}

m=$tmp/model
tiny=(--layers 2 --heads 2 --dim 32 --context 16 --batch 2 --eval-every 2 --eval-batches 1
      --threads 2)
vg 0 train "train" --data "$tmp/data.txt" --out "$m" --steps 3 "${tiny[@]}"
vg 0 resume "train" --resume "$m" --steps 4 --threads 2
vg 0 generate "generate" -m "$m" -p "It was" -n 24 --seed 1 --top-k 20 --top-p 0.9
vg 0 generate-greedy "generate" -m "$m" -n 8 --temperature 0 --ids
vg 0 eval "eval" -m "$m" --data "$tmp/data.txt"
vg 0 info "info" -m "$m"

g=$tmp/gpt2
mkdir -p "$g"
cp data/gpt2/vocab.json data/gpt2/merges.txt "$g/"
sed -e 's/"slm_tokenizer": *"byte"/"slm_tokenizer": "gpt2"/' \
    -e 's/"vocab_size": *[0-9]*/"vocab_size": 50257/' "$m/config.json" >"$g/config.json"
vg 0 tokenize-gpt2 "tokenize" -m "$g" "Hello, wörld! It's   2024 🙂"
vg 0 detokenize-gpt2 "detokenize" -m "$g" 15496 11 995 0

b=$tmp/bad
mkdir -p "$b"
cp "$m/config.json" "$b/"
head -c 3000 "$m/model.safetensors" >"$b/model.safetensors"
vg 1 refuse-truncated-model "generate" -m "$b" -n 4
echo "too short" >"$tmp/short.txt"
vg 1 refuse-short-data "train" --data "$tmp/short.txt" --out "$tmp/never" "${tiny[@]}"
vg 2 refuse-bad-flag "generate" -m "$m" --top-p 2

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] || exit 9
