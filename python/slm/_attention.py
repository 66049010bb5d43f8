"""Scaled dot-product attention over NumPy arrays and PyTorch tensors.

Semantics are PyTorch's ``scaled_dot_product_attention``::

    out = dropout(softmax(q @ k.T * scale + mask)) @ v

over ``q [B, H, Tq, D]``, ``k, v [B, H, Tk, D]`` in float32, with slm's
additions (include/slm.h): ``causal`` is aligned bottom-right when
``Tk != Tq`` (key j is visible to query i iff ``j <= i + Tk - Tq``, what a
KV cache needs: the last query sees every key), ``kv_len[b]`` hides keys
``j >= kv_len[b]`` of batch entry b, and dropout is drawn from a
counter-based hash of ``(seed, b, h, i, j)``, so the same seed drops the same
weights in forward and backward. A query row that sees no key gives 0 (not
NaN) and contributes no gradient.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from . import _slm

_IMPLS = {"auto": _slm.ATTN_AUTO, "reference": _slm.ATTN_REFERENCE, "flash": _slm.ATTN_FLASH}


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def impl_code(impl: str) -> int:
    """'auto' | 'reference' | 'flash' → SLM_ATTN_*."""
    try:
        return _IMPLS[impl]
    except (KeyError, TypeError):
        raise ValueError(f"impl must be one of {', '.join(_IMPLS)}; got {impl!r}") from None


def check_options(dropout: float, scale: Optional[float]) -> float:
    """Validates dropout and scale; returns the scale slm takes (0 = 1/sqrt(D))."""
    if not (isinstance(dropout, (int, float)) and 0.0 <= dropout < 1.0):
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    if scale is None:
        return 0.0
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite positive number, got {scale!r}")
    return float(scale)


def check_seed(seed: int) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or \
            not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    return int(seed)


def _np_f32(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype != np.float32:
        raise TypeError(f"{name} must be float32, got {a.dtype} (slm computes in float32: "
                        f"convert with .astype(np.float32))")
    return np.ascontiguousarray(a)


def np_mask(mask: Any) -> Optional[np.ndarray]:
    """An additive float32 [Tq, Tk] mask; a boolean mask means True = attend."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype == np.bool_:
        return np.where(m, np.float32(0), np.float32(-np.inf)).astype(np.float32)
    return np.ascontiguousarray(m, dtype=np.float32)


def np_kv_len(kv_len: Any) -> Optional[np.ndarray]:
    if kv_len is None:
        return None
    a = np.asarray(kv_len)
    if a.dtype.kind not in "iu":
        raise TypeError(f"kv_len must hold integers, got {a.dtype}")
    if a.size and (a.min() < 0 or a.max() > 2**31 - 1):
        raise ValueError("kv_len values must be in [0, Tk]")
    return np.ascontiguousarray(a, dtype=np.int32)


Array = Any  # np.ndarray or torch.Tensor


def attention(q: Array, k: Array, v: Array, causal: bool = True, mask: Optional[Array] = None,
              kv_len: Optional[Union[Sequence[int], Array]] = None, dropout: float = 0.0,
              seed: int = 0, *, scale: Optional[float] = None, impl: str = "auto",
              return_lse: bool = False) -> Union[Array, Tuple[Array, Array]]:
    """Scaled dot-product attention with slm's flash kernels.

    Args:
        q: queries ``[B, H, Tq, D]``, float32 (NumPy array or CPU torch tensor;
            made contiguous if it is not).
        k, v: keys and values ``[B, H, Tk, D]``, same type as q.
        causal: hide keys after each query, aligned bottom-right
            (``j <= i + Tk - Tq``).
        mask: optional additive ``[Tq, Tk]`` mask broadcast over B and H
            (``-inf`` hides a key); a boolean mask means True = attend.
        kv_len: optional ``[B]`` ints: keys ``j >= kv_len[b]`` are invisible.
        dropout: probability of dropping an attention weight, in [0, 1).
        seed: the dropout stream (same seed, same dropped weights).
        scale: score scale; None means ``1/sqrt(D)``.
        impl: ``"auto"`` (fastest), ``"flash"`` or ``"reference"``.
        return_lse: also return the log-sum-exp of each query's scores
            ``[B, H, Tq]`` (``-inf`` for a row that sees no key).

    Returns:
        ``out [B, H, Tq, D]`` of q's type (and ``lse`` with return_lse). For
        torch tensors that require grad the result is differentiable: the
        backward pass runs slm_attention_backward.

    Raises:
        ValueError: a wrong shape, dropout outside [0, 1), a bad kv_len.
        TypeError: not float32.
    """
    s = check_options(dropout, scale)
    seed = check_seed(seed)
    code = impl_code(impl)
    if _is_torch(q):
        from .torch import _slm_attention
        return _slm_attention(q, k, v, bool(causal), mask, kv_len, float(dropout), seed, s, code,
                              return_lse)
    q, k, v = _np_f32(q, "q"), _np_f32(k, "k"), _np_f32(v, "v")
    out = np.empty_like(q)
    lse = np.empty(q.shape[:3], np.float32) if q.ndim == 4 else None
    _slm.attention_forward(q, k, v, out, lse, causal=bool(causal), scale=s, mask=np_mask(mask),
                           kv_len=np_kv_len(kv_len), dropout=float(dropout), seed=seed,
                           impl=code)
    return (out, lse) if return_lse else out


def attention_backward(q: np.ndarray, k: np.ndarray, v: np.ndarray, out: np.ndarray,
                       lse: np.ndarray, dout: np.ndarray, causal: bool = True,
                       mask: Optional[np.ndarray] = None, kv_len: Optional[Any] = None,
                       dropout: float = 0.0, seed: int = 0, *, scale: Optional[float] = None,
                       impl: str = "auto") -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dq, dk, dv)`` of attention for NumPy arrays.

    ``out`` and ``lse`` are what :func:`attention` returned (``return_lse=True``)
    for the same inputs and options; ``dout`` is the gradient of the loss with
    respect to ``out``. (Torch tensors get gradients through autograd.)
    """
    s = check_options(dropout, scale)
    q, k, v = _np_f32(q, "q"), _np_f32(k, "k"), _np_f32(v, "v")
    out, lse, dout = _np_f32(out, "out"), _np_f32(lse, "lse"), _np_f32(dout, "dout")
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    _slm.attention_backward(q, k, v, out, lse, dout, dq, dk, dv, causal=bool(causal), scale=s,
                            mask=np_mask(mask), kv_len=np_kv_len(kv_len), dropout=float(dropout),
                            seed=check_seed(seed), impl=impl_code(impl))
    return dq, dk, dv
