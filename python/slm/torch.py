"""slm's flash attention as a PyTorch autograd Function.

:class:`ScaledDotProductAttention` is a ``torch.autograd.Function`` whose
forward runs ``slm_attention_forward`` and whose backward runs
``slm_attention_backward`` with the ``out`` and ``lse`` kept from forward (no
score matrix is stored). :func:`scaled_dot_product_attention` takes the
arguments of ``torch.nn.functional.scaled_dot_product_attention`` and is a
drop-in for it on CPU float32 tensors::

    import slm.torch
    y = slm.torch.scaled_dot_product_attention(q, k, v, is_causal=True)

Same semantics as PyTorch, with these differences (documented, tested):

- ``is_causal`` follows PyTorch: aligned top-left (``j <= i``) also when
  ``L != S``. slm's own kernels align causal bottom-right (``j <= i + S - L``,
  what a KV cache needs); pass ``causal_alignment="bottom_right"`` for that.
  With ``L == S`` the two agree and the kernel's causal skipping is used;
  otherwise the top-left triangle is passed as an explicit mask.
- ``attn_mask`` must be one ``[L, S]`` matrix (leading dimensions of size 1
  are fine): slm broadcasts one mask over batch and heads. No gradient flows
  into ``attn_mask``; a mask that requires grad is refused.
- A query row that sees no key gives 0 and zero gradient (PyTorch: NaN).
- Dropout draws its mask from slm's counter-based hash, seeded from
  PyTorch's generator (so ``torch.manual_seed`` makes it repeatable), not
  from PyTorch's dropout stream: the same probability, other dropped weights.
- float32 on the CPU only; ``query``, ``key`` and ``value`` share their
  leading dimensions and their last dimension (no GQA, no broadcasting).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch

from . import _slm
from ._attention import check_options, check_seed, impl_code

__all__ = ["ScaledDotProductAttention", "scaled_dot_product_attention"]


def _f32(t: Any, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(f"{name} is on {t.device}; slm's attention runs on the CPU")
    if t.dtype != torch.float32:
        raise TypeError(f"{name} must be float32, got {t.dtype} (slm computes in float32: "
                        f"convert with .float())")
    return t.detach().contiguous()


def _np(t: Optional[torch.Tensor]) -> Any:
    return None if t is None else t.numpy()


def _forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
             opts: dict) -> Tuple[torch.Tensor, torch.Tensor]:
    """q [B,H,Tq,D], k,v [B,H,Tk,D] contiguous float32 → out, lse [B,H,Tq]."""
    out = torch.empty_like(q)
    lse = torch.empty(q.shape[:3], dtype=torch.float32) if q.dim() == 4 else None
    _slm.attention_forward(q.numpy(), k.numpy(), v.numpy(), out.numpy(), _np(lse),
                           **{**opts, "mask": _np(opts["mask"]), "kv_len": _np(opts["kv_len"])})
    ctx.save_for_backward(q, k, v, out, lse)
    ctx.slm_opts = opts
    return out, lse


def _backward(ctx: Any, dout: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    q, k, v, out, lse = ctx.saved_tensors
    opts = ctx.slm_opts
    dout = dout.detach().to(torch.float32).contiguous()
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    _slm.attention_backward(q.numpy(), k.numpy(), v.numpy(), out.numpy(), lse.numpy(),
                            dout.numpy(), dq.numpy(), dk.numpy(), dv.numpy(),
                            **{**opts, "mask": _np(opts["mask"]), "kv_len": _np(opts["kv_len"])})
    return dq, dk, dv


class _SlmAttention(torch.autograd.Function):
    """slm semantics (bottom-right causal, kv_len): the torch side of slm.attention."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,  # type: ignore[override]
                opts: dict) -> Tuple[torch.Tensor, torch.Tensor]:
        out, lse = _forward(ctx, _f32(q, "q"), _f32(k, "k"), _f32(v, "v"), opts)
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, dout: torch.Tensor, dlse: Any) -> Tuple[Any, ...]:  # type: ignore[override]
        return (*_backward(ctx, dout), None)


def _slm_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, mask: Any,
                   kv_len: Any, dropout: float, seed: int, scale: float, impl: int,
                   return_lse: bool) -> Any:
    if mask is not None:
        mask = torch.as_tensor(mask)
        mask = (torch.zeros(mask.shape).masked_fill(~mask, float("-inf"))
                if mask.dtype == torch.bool else _f32(mask, "mask"))
    if kv_len is not None:
        kv_len = torch.as_tensor(kv_len)
        if kv_len.dtype.is_floating_point or kv_len.dtype == torch.bool:
            raise TypeError(f"kv_len must hold integers, got {kv_len.dtype}")
        kv_len = kv_len.to(torch.int32).contiguous()
    opts = dict(causal=causal, scale=scale, mask=mask, kv_len=kv_len, dropout=dropout,
                seed=seed, impl=impl)
    out, lse = _SlmAttention.apply(q, k, v, opts)
    return (out, lse) if return_lse else out


def _sdpa_mask(attn_mask: Optional[torch.Tensor], L: int, S: int, top_left_causal: bool
               ) -> Optional[torch.Tensor]:
    """torch's attn_mask (bool: True = attend; float: added) as one additive
    float32 [L, S] matrix, with the top-left causal triangle folded in."""
    m = None
    if attn_mask is not None:
        if not isinstance(attn_mask, torch.Tensor):
            raise TypeError("attn_mask must be a torch.Tensor")
        if attn_mask.requires_grad:
            raise ValueError("slm computes no gradient for attn_mask; pass a mask that does "
                             "not require grad (e.g. attn_mask.detach())")
        a = attn_mask
        while a.dim() > 2 and a.shape[0] == 1:
            a = a[0]
        if a.dim() > 2 or a.dim() == 0:
            raise ValueError(f"slm broadcasts one [L, S] mask over batch and heads; got "
                             f"attn_mask of shape {list(attn_mask.shape)}")
        a = a.expand(L, S) if a.dim() == 2 else a.expand(L, S)
        if a.dtype == torch.bool:
            m = torch.zeros(L, S).masked_fill(~a, float("-inf"))
        else:
            m = _f32(a, "attn_mask")
    if top_left_causal:
        tri = torch.ones(L, S, dtype=torch.bool).tril()
        hide = torch.zeros(L, S).masked_fill(~tri, float("-inf"))
        m = hide if m is None else m + hide
    return None if m is None else m.contiguous()


class ScaledDotProductAttention(torch.autograd.Function):
    """``torch.nn.functional.scaled_dot_product_attention`` on slm's kernels.

    ``ScaledDotProductAttention.apply(query, key, value, attn_mask, dropout_p,
    is_causal, scale, seed, causal_alignment)`` (positional, as
    ``Function.apply`` wants; :func:`scaled_dot_product_attention` takes
    keywords). Shapes ``(..., L, E)``, ``(..., S, E)``, ``(..., S, E)`` with
    the same leading dimensions; returns ``(..., L, E)``. Forward keeps q, k,
    v, out and the per-row log-sum-exp; backward recomputes the attention
    weights tile by tile (FlashAttention-2) and returns dq, dk, dv.
    """

    @staticmethod
    def forward(ctx: Any, query: torch.Tensor, key: torch.Tensor,  # type: ignore[override]
                value: torch.Tensor, attn_mask: Optional[torch.Tensor] = None,
                dropout_p: float = 0.0, is_causal: bool = False, scale: Optional[float] = None,
                seed: Optional[int] = None, causal_alignment: str = "top_left") -> torch.Tensor:
        q, k, v = _f32(query, "query"), _f32(key, "key"), _f32(value, "value")
        if q.dim() < 2 or k.dim() != q.dim() or v.dim() != q.dim():
            raise ValueError(f"query, key and value need the same number (>= 2) of dimensions; "
                             f"got {q.dim()}, {k.dim()}, {v.dim()}")
        if q.shape[:-2] != k.shape[:-2] or k.shape[:-1] != v.shape[:-1]:
            raise ValueError(f"query {list(q.shape)}, key {list(k.shape)} and value "
                             f"{list(v.shape)} must share their leading dimensions (no "
                             f"broadcasting) and key/value their length S")
        if k.shape[-1] != q.shape[-1] or v.shape[-1] != q.shape[-1]:
            raise ValueError(f"slm needs one head size: query, key and value end in "
                             f"{q.shape[-1]}, {k.shape[-1]}, {v.shape[-1]}")
        if causal_alignment not in ("top_left", "bottom_right"):
            raise ValueError(f"causal_alignment must be 'top_left' or 'bottom_right', got "
                             f"{causal_alignment!r}")
        s = check_options(dropout_p, scale)
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item()) if dropout_p > 0 else 0
        L, S, E = q.shape[-2], k.shape[-2], q.shape[-1]
        lead = q.shape[:-2]
        as4 = (lambda t, T: t.reshape(*lead, T, E)) if q.dim() == 4 else \
            (lambda t, T: t.reshape(-1, 1, T, E))
        # Same length: the kernel's causal flag is PyTorch's triangle and
        # skips the hidden tiles. Otherwise top-left is an explicit mask.
        kernel_causal = bool(is_causal) and (L == S or causal_alignment == "bottom_right")
        mask = _sdpa_mask(attn_mask, L, S, bool(is_causal) and not kernel_causal)
        opts = dict(causal=kernel_causal, scale=s, mask=mask, kv_len=None,
                    dropout=float(dropout_p), seed=check_seed(seed), impl=_slm.ATTN_AUTO)
        out, _ = _forward(ctx, as4(q, L).contiguous(), as4(k, S).contiguous(),
                          as4(v, S).contiguous(), opts)
        ctx.shapes = (query.shape, key.shape, value.shape)
        return out.reshape(*lead, L, E)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, dout: torch.Tensor) -> Tuple[Any, ...]:  # type: ignore[override]
        q_shape, k_shape, v_shape = ctx.shapes
        q4 = ctx.saved_tensors[0]
        dq, dk, dv = _backward(ctx, dout.reshape(q4.shape))
        return (dq.reshape(q_shape), dk.reshape(k_shape), dv.reshape(v_shape),
                None, None, None, None, None, None)


def scaled_dot_product_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                                 attn_mask: Optional[torch.Tensor] = None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: Optional[float] = None, *, seed: Optional[int] = None,
                                 causal_alignment: str = "top_left") -> torch.Tensor:
    """Drop-in for ``torch.nn.functional.scaled_dot_product_attention`` (CPU
    float32), computed by slm's flash kernels forward and backward.

    Args:
        query: ``(..., L, E)``; key, value: ``(..., S, E)``.
        attn_mask: bool (True = attend) or additive float ``[L, S]`` mask.
        dropout_p: dropout probability in [0, 1) (pass 0.0 in eval mode).
        is_causal: hide future keys, aligned top-left as PyTorch does.
        scale: score scale; None means ``1/sqrt(E)``.
        seed: the dropout stream; None draws one from PyTorch's generator.
        causal_alignment: ``"top_left"`` (PyTorch) or ``"bottom_right"``
            (slm's kernels, KV-cache style: the last query sees every key).

    See the module docstring for the differences from PyTorch.
    """
    return ScaledDotProductAttention.apply(query, key, value, attn_mask, dropout_p, is_causal,
                                           scale, seed, causal_alignment)
