#!/usr/bin/env python3
"""Random-weight checkpoints in llama2.c's run.c format (the July-2023 layout
that tools/build-llama2c.sh builds: a 7-int Config header, then float32
weights with the RoPE freq_cis tables, classifier tied to the embedding) and
a tokenizer.bin of placeholder tokens, for stories15M and stories110M dims.
Decoding speed depends only on the dims, not on the values.

    llama2c_model.py --model 15m|110m --out DIR   # writes DIR/model.bin, DIR/tokenizer.bin
"""
import argparse
import os
import struct

import numpy as np

# dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len (llama2.c's README)
DIMS = {"15m": (288, 768, 6, 6, 6, 32000, 256), "110m": (768, 2048, 12, 12, 12, 32000, 1024)}


def write_model(path, dims, seed=0):
    dim, hidden, L, H, _, V, T = dims
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)

    head = dim // H
    freqs = 1.0 / (10000.0 ** (np.arange(0, head, 2, dtype=np.float32) / head))
    angles = np.outer(np.arange(T, dtype=np.float32), freqs)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("7i", *dims))
        for block in (normal(V, dim), np.ones((L, dim), np.float32),
                      normal(L, dim, dim), normal(L, dim, dim), normal(L, dim, dim),
                      normal(L, dim, dim), np.ones((L, dim), np.float32),
                      normal(L, hidden, dim), normal(L, dim, hidden), normal(L, hidden, dim),
                      np.ones(dim, np.float32), np.cos(angles), np.sin(angles)):
            f.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
    os.replace(tmp, path)


def write_tokenizer(path, V):
    toks = [b"<unk>", b"<s>", b"</s>"] + [b" t%d" % i for i in range(3, V)]
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("i", max(len(t) for t in toks)))
        for i, t in enumerate(toks):
            f.write(struct.pack("fi", -float(i), len(t)) + t)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(DIMS), required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    write_model(os.path.join(a.out, "model.bin"), DIMS[a.model])
    write_tokenizer(os.path.join(a.out, "tokenizer.bin"), DIMS[a.model][5])


if __name__ == "__main__":
    main()
