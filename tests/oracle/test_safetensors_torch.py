"""safetensors interop with PyTorch and the Python safetensors library:
files written by Python load in slm with identical values (F32, F16, BF16
including subnormals, inf and NaN), and files slm writes load in Python."""
import json
import os
import struct
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from harness import run  # noqa: E402
import io_ctypes as io  # noqa: E402

SPECIAL = [0.0, -0.0, 1.0, -2.5, 65504.0, 6.1e-5, 5.96e-8, 1e-6, float("inf"), float("-inf"),
           float("nan"), 3.0e38, 1e-40]


def tensors():
    g = torch.Generator().manual_seed(0)
    out = {}
    for name, dt in (("f32", torch.float32), ("f16", torch.float16), ("bf16", torch.bfloat16)):
        x = torch.randn(7, 5, generator=g).to(dt)
        out[f"{name}.rand"] = x
        out[f"{name}.special"] = torch.tensor(SPECIAL, dtype=torch.float32).to(dt)
        out[f"{name}.scalar"] = torch.tensor(1.5, dtype=dt)
        out[f"{name}.empty"] = torch.zeros(0, 3, dtype=dt)
    return out


def write_by_hand(path, ts):
    """The format is 8-byte LE header length + JSON + data."""
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
    header, blobs, at = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in ts.items():
        raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape),
                        "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-(8 + len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def check_same(got, ts):
    assert set(got) == set(ts), f"names {sorted(got)} != {sorted(ts)}"
    for name, t in ts.items():
        want = t.float().numpy()
        g = got[name]
        assert g.shape == want.shape, f"{name}: shape {g.shape} != {want.shape}"
        same = (g == want) | (np.isnan(g) & np.isnan(want))
        same &= np.signbit(g) == np.signbit(want)
        assert same.all(), f"{name}: {g[~same][:4]} != {want[~same][:4]}"


def test_python_written_file_loads_exactly():
    ts = tensors()
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x.safetensors")
        write_by_hand(p, ts)
        got, meta = io.st_read_all(p)
        check_same(got, ts)
        assert meta == {"format": "pt"}


def test_safetensors_library_file_loads_exactly():
    from safetensors.torch import save_file
    ts = tensors()
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x.safetensors")
        save_file(ts, p, metadata={"format": "pt"})
        got, _ = io.st_read_all(p)
        check_same(got, ts)


def test_slm_written_file_loads_in_python():
    from safetensors import safe_open
    from safetensors.numpy import load_file
    rng = np.random.default_rng(1)
    ts = {"w": rng.standard_normal((3, 4)).astype(np.float32),
          "step": np.array(7, dtype=np.int64),
          "rng": np.arange(250, 256, dtype=np.uint8),
          "v": np.array([np.inf, -0.0, np.nan], dtype=np.float32)}
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "s.safetensors")
        io.st_save(p, ts, {"format": "pt", "note": "é"})
        back = load_file(p)
        for k, v in ts.items():
            assert back[k].dtype == v.dtype and back[k].shape == v.shape, k
            np.testing.assert_array_equal(back[k], v)
        with safe_open(p, "np") as f:
            assert f.metadata() == {"format": "pt", "note": "é"}
        n = struct.unpack("<Q", open(p, "rb").read(8))[0]
        assert (8 + n) % 8 == 0, "header not padded to 8 bytes"


run([test_python_written_file_loads_exactly, test_safetensors_library_file_loads_exactly,
     test_slm_written_file_loads_in_python])
