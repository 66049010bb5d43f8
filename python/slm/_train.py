"""Training through the library's trainer (src/train), as `slm train` does.

The run is the CLI's, step for step: the same options, defaults and checks,
the same files in the output directory (model.safetensors + config.json,
training_state.safetensors, train_data.tokens, log.jsonl), the same bytes
for the same seed, data and thread count, and a run started here resumes
with ``slm train --resume DIR`` (and a CLI run with :func:`resume_training`).
"""
from __future__ import annotations

import math
import os
from typing import Callable, List, NamedTuple, Optional, Sequence, Union

from . import _slm
from ._errors import FileError, InvalidArgumentError
from ._model import Config, Model
from ._tokenizer import GPT2_VOCAB_DIR, Tokenizer

PathLike = Union[str, "os.PathLike[str]"]
CACHE_NAME = "train_data.tokens"


class TrainProgress(NamedTuple):
    """What the callback receives after each optimizer step."""

    step: int  #: the step just taken (1-based)
    steps: int  #: the run's length (the LR schedule's)
    end_step: int  #: where this call stops (stop_after or steps)
    first_step: int  #: the step this call started after (0, or a resumed step)
    loss: float  #: mean training loss of the step
    lr: float  #: learning rate used
    grad_norm: float  #: global gradient norm before clipping
    tokens_per_s: float  #: training throughput of the step
    val_loss: Optional[float]  #: validation loss if evaluated at this step
    evaluated: bool
    checkpointed: bool  #: a checkpoint of this step was written


class TrainResult(NamedTuple):
    """How a training call ended."""

    out: str  #: the model directory
    step: int  #: the last step taken (and saved)
    steps: int  #: the run's length
    loss: Optional[float]  #: training loss of the last step (None if none ran)
    val_loss: Optional[float]  #: the last validation loss (None if none)
    interrupted: bool  #: stopped early by the callback (returning True)


def _int(name: str, v: object, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise InvalidArgumentError(f"{name} must be an integer from {lo} to {hi}, got {v!r}")
    return v


def _float(name: str, v: object, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or not lo <= v <= hi:
        raise InvalidArgumentError(f"{name} must be a number in [{lo:g}, {hi:g}], got {v!r}")
    return float(v)


def _read(files: Sequence[str]) -> bytes:
    parts = []
    for f in files:
        if os.path.isdir(f):
            raise FileError(f"'{f}' is a directory, not a file")
        try:
            with open(f, "rb") as fh:
                parts.append(fh.read())
        except OSError as e:
            raise FileError(f"cannot open '{f}': {e.strerror}") from None
    return b"".join(parts)


def _check_out_dir(out: str, force: bool) -> None:
    """A new run never overwrites a model someone trained (as the CLI)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise FileError(f"output directory '{out}' is a file")
    for kept in ("training_state.safetensors", "model.safetensors"):
        if not force and os.path.exists(os.path.join(out, kept)):
            raise InvalidArgumentError(
                f"'{out}' already holds a model; continue it with resume_training('{out}'), "
                f"or pass force=True to start over")


def _run(model: Model, corpus: "_slm.Corpus", opts: dict, start: int, out: str,
         callback: Optional[Callable[[TrainProgress], object]]) -> TrainResult:
    last: List[Optional[float]] = [None, None]

    def progress(raw: dict) -> object:
        p = TrainProgress(**raw)
        last[0] = p.loss
        if p.evaluated and p.val_loss is not None and not math.isnan(p.val_loss):
            last[1] = p.val_loss
        return callback(p) if callback is not None else None

    interrupted, step = _slm.train_run(model._m, corpus, opts, start, progress)
    return TrainResult(out, step, opts["steps"], last[0], last[1], interrupted)


# slm_train_opts.dtype: SLM_DTYPE_F32 and SLM_DTYPE_BF16 (include/slm.h)
_DTYPES = {"fp32": 0, "bf16": 2}


def train(data: Union[PathLike, Sequence[PathLike]], out: PathLike, *,
          tokenizer: str = "byte", layers: int = 4, heads: int = 4, dim: int = 128,
          context: int = 128, batch: int = 16, grad_accum: int = 1, steps: int = 1000,
          lr: float = 1e-3, warmup: Optional[int] = None, weight_decay: float = 0.1,
          grad_clip: float = 1.0, dropout: float = 0.0, seed: int = 1337,
          eval_every: int = 100, eval_batches: int = 8, save_every: int = 250,
          val_fraction: float = 0.1, stop_after: Optional[int] = None, force: bool = False,
          dtype: str = "fp32", callback: Optional[Callable[[TrainProgress], object]] = None) -> TrainResult:
    """Trains a GPT from scratch on text files, checkpointing into ``out``:
    ``slm train --data FILE... --out DIR`` with the same options (same names
    without dashes, same defaults).

    Args:
        data: a text file or a list of them (concatenated).
        out: the output directory (a Hugging Face model directory plus the
            training state); refused if it holds a model unless ``force``.
        tokenizer: ``"byte"`` or ``"gpt2"`` (the vocabulary shipped with slm).
        layers, heads, dim, context: the architecture (context = n_positions).
        batch, grad_accum, steps, lr, warmup (None: steps/20), weight_decay,
        grad_clip, dropout, seed, eval_every, eval_batches, save_every,
        val_fraction, stop_after: as ``slm train --help`` says.
        dtype: ``"fp32"`` or ``"bf16"`` (``slm train --dtype``): bf16 GEMM
            inputs with fp32 sums where this CPU runs that faster, else fp32
            math with the activations stored in bf16; weights, moments and
            checkpoints stay fp32, and a resumed run keeps the dtype.
        callback: called with a :class:`TrainProgress` after every step; a
            true return value stops the run (with a checkpoint).

    Ctrl-C (KeyboardInterrupt) stops the run after the current micro-batch,
    writes a checkpoint of the last whole step into ``out`` and then
    re-raises KeyboardInterrupt; :func:`resume_training` (or ``slm train
    --resume``) continues exactly where it stopped. An exception raised by
    the callback stops the run the same way.

    Returns:
        A :class:`TrainResult`.
    Raises:
        ValueError (slm.InvalidArgumentError, slm.RangeError): bad options,
        too little data; slm.FileError; slm.NumericError when the loss or
        the weights become non-finite (the last checkpoint is kept).
    """
    files = [os.fspath(data)] if isinstance(data, (str, os.PathLike)) else \
        [os.fspath(f) for f in data]
    if not files:
        raise InvalidArgumentError("no training data given")
    out = os.fspath(out)
    if tokenizer not in ("byte", "gpt2"):
        raise InvalidArgumentError(f"tokenizer must be 'byte' or 'gpt2', got {tokenizer!r}")
    if dtype not in _DTYPES:
        raise InvalidArgumentError(f"dtype must be 'fp32' or 'bf16', got {dtype!r}")
    opts = dict(
        # The windows are n_positions long: the trainer's context stays 0 (as
        # the CLI's), so the checkpoint records the same run.
        batch=_int("batch", batch, 1, 1 << 16),
        grad_accum=_int("grad_accum", grad_accum, 1, 1 << 16),
        steps=_int("steps", steps, 1, 1 << 30),
        warmup=-1 if warmup is None else _int("warmup", warmup, 0, 1 << 30),
        lr=_float("lr", lr, 0, 10), weight_decay=_float("weight_decay", weight_decay, 0, 10),
        grad_clip=_float("grad_clip", grad_clip, 0, 1e9),
        val_fraction=_float("val_fraction", val_fraction, 0, 0.9),
        seed=_int("seed", seed, 0, 2**64 - 1),
        eval_every=_int("eval_every", eval_every, 0, 1 << 30),
        eval_batches=_int("eval_batches", eval_batches, 1, 1 << 20),
        save_every=_int("save_every", save_every, 0, 1 << 30),
        stop_after=0 if stop_after is None else _int("stop_after", stop_after, 1, 1 << 30),
        dtype=_DTYPES[dtype], data=files, out_dir=out)
    _float("dropout", dropout, 0, 0.999)
    _check_out_dir(out, force)
    vocab_dir = GPT2_VOCAB_DIR if tokenizer == "gpt2" else None
    tok = Tokenizer(tokenizer, vocab_dir)
    cfg = Config(n_layer=_int("layers", layers, 1, 1024), n_head=_int("heads", heads, 1, 65536),
                 n_embd=_int("dim", dim, 1, 65536),
                 n_positions=_int("context", context, 1, 1 << 20),
                 vocab_size=tok.vocab_size, tokenizer=tokenizer, dropout=float(dropout))
    # Everything that can be refused is checked before out is created.
    model = Model.create(cfg, seed=seed)
    cache = os.path.join(out, CACHE_NAME)
    corpus = _slm.Corpus(tok._t, _read(files), context, float(val_fraction), cache)
    _slm.checkpoint_prepare_dir(out, vocab_dir)
    corpus.save_cache(cache)
    return _run(model, corpus, opts, 0, out, callback)


def resume_training(out: PathLike, *, steps: Optional[int] = None,
                    stop_after: Optional[int] = None,
                    callback: Optional[Callable[[TrainProgress], object]] = None
                    ) -> TrainResult:
    """Continues the run saved in ``out`` (``slm train --resume DIR``) with
    its saved options and data: bit for bit where the uninterrupted run
    would be (same thread count). ``steps`` lengthens the run."""
    out = os.fspath(out)
    try:
        handle, step, opts, data_hash = _slm.checkpoint_load(out)
    except Exception as e:
        raise type(e)(f"cannot resume from '{out}': {e}") from None
    _slm.checkpoint_prepare_dir(out, None)  # removes a killed write's temporary files
    if steps is not None:
        opts["steps"] = _int("steps", steps, 1, 1 << 30)
    opts["stop_after"] = 0 if stop_after is None else _int("stop_after", stop_after, 1, 1 << 30)
    opts["out_dir"] = out
    cfg = handle.config()
    tok = Tokenizer(cfg["tokenizer"], out, cfg["vocab_size"])
    model = Model(handle, tok, out)
    if step >= opts["steps"]:
        if not _slm.checkpoint_sync_model(out, handle):
            raise InvalidArgumentError(f"'{out}' already finished step {step} of "
                                       f"{opts['steps']} (raise steps)")
        return TrainResult(out, step, opts["steps"], None, None, False)
    cache = os.path.join(out, CACHE_NAME)
    corpus = _slm.Corpus(tok._t, _read(opts["data"]), cfg["n_positions"], opts["val_fraction"],
                         cache)
    if corpus.hash != data_hash:
        raise InvalidArgumentError(f"the training data changed since '{out}' was saved; "
                                   f"resuming would not continue the same run")
    corpus.save_cache(cache)
    _slm.checkpoint_sync_model(out, handle)
    return _run(model, corpus, opts, step, out, callback)
