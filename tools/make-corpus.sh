#!/usr/bin/env bash
# Derives the default corpus: the King James Bible (public domain; translated
# 1611) from Debian's bible-kjv package, one verse per line, with the book and
# chapter headings and the verse numbers stripped. About 4.1 MB of ASCII.
# Usage: tools/make-corpus.sh OUT_FILE
set -euo pipefail
out=${1:?usage: tools/make-corpus.sh OUT_FILE}
[ -s "$out" ] && exit 0
command -v bible >/dev/null || { echo "slm: the 'bible' command is missing (apt-get install bible-kjv)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
bible -l 100000 gen1:1-rev22:21 2>/dev/null | awk '/^ +[0-9]+ /{sub(/^ +[0-9]+ /,""); print}' > "$tmp"
[ "$(wc -l < "$tmp")" -eq 31102 ] || { echo "slm: unexpected output from bible-kjv" >&2; rm -f "$tmp"; exit 1; }
mv "$tmp" "$out"
