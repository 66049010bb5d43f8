"""ctypes bindings to build/libslm.so for the Python oracle tests.

The oracles drive the C library directly with numpy arrays and compare what it
returns against PyTorch (or float64 NumPy)."""
import ctypes as C
import os

import numpy as np

LIB = C.CDLL(os.environ.get("SLM_LIB", "build/libslm.so"))

SLM_ATTN_AUTO, SLM_ATTN_REFERENCE, SLM_ATTN_FLASH = 0, 1, 2
F32P = np.ctypeslib.ndpointer(dtype=np.float32, flags="C_CONTIGUOUS")


class AttnOpts(C.Structure):
    _fields_ = [("impl", C.c_int), ("causal", C.c_int), ("scale", C.c_float),
                ("mask", C.c_void_p), ("kv_len", C.c_void_p), ("dropout", C.c_float),
                ("seed", C.c_uint64), ("batch_offset", C.c_int)]


LIB.slm_strerror.restype = C.c_char_p
LIB.slm_attention_forward.argtypes = [C.POINTER(AttnOpts)] + [C.c_int] * 5 + [C.c_void_p] * 5
LIB.slm_attention_backward.argtypes = [C.POINTER(AttnOpts)] + [C.c_int] * 5 + [C.c_void_p] * 9


def _ptr(a):
    return None if a is None else a.ctypes.data_as(C.c_void_p)


def _f32(a):
    return None if a is None else np.ascontiguousarray(a, dtype=np.float32)


def attention(q, k, v, dout=None, *, impl=SLM_ATTN_AUTO, causal=False, scale=0.0, mask=None,
              kv_len=None, dropout=0.0, seed=0):
    """Runs slm_attention_forward (and backward when dout is given).
    Returns (out, lse) or (out, lse, dq, dk, dv)."""
    q, k, v, mask, dout = map(_f32, (q, k, v, mask, dout))
    B, H, Tq, D = q.shape
    Tk = k.shape[2]
    kv = None if kv_len is None else np.ascontiguousarray(kv_len, dtype=np.int32)
    o = AttnOpts(impl, int(causal), scale, _ptr(mask), _ptr(kv), dropout, seed)
    out = np.zeros_like(q)
    lse = np.zeros((B, H, Tq), dtype=np.float32)
    rc = LIB.slm_attention_forward(C.byref(o), B, H, Tq, Tk, D, _ptr(q), _ptr(k), _ptr(v),
                                   _ptr(out), _ptr(lse))
    if rc:
        raise RuntimeError(f"slm_attention_forward: {LIB.slm_strerror(rc).decode()}")
    if dout is None:
        return out, lse
    dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    rc = LIB.slm_attention_backward(C.byref(o), B, H, Tq, Tk, D, _ptr(q), _ptr(k), _ptr(v),
                                    _ptr(out), _ptr(lse), _ptr(dout), _ptr(dq), _ptr(dk),
                                    _ptr(dv))
    if rc:
        raise RuntimeError(f"slm_attention_backward: {LIB.slm_strerror(rc).decode()}")
    return out, lse, dq, dk, dv
