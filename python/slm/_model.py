"""GPT-2 models: load, save, generate (streaming), evaluate."""
from __future__ import annotations

import math
import os
import shutil
import time
from array import array
from dataclasses import asdict, dataclass
from typing import Iterator, NamedTuple, Optional, Sequence, Union

from . import _slm
from ._errors import InvalidArgumentError, NumericError, RangeError
from ._tokenizer import GPT2_VOCAB_DIR, Text, Tokenizer, _to_bytes

Prompt = Union[str, bytes, Sequence[int], None]
_GPT2_FILES = ("vocab.json", "merges.txt")


@dataclass(frozen=True)
class Config:
    """A model's architecture: the fields of config.json that slm reads."""

    n_layer: int
    n_head: int
    n_embd: int
    n_positions: int
    vocab_size: int
    layer_norm_epsilon: float = 1e-5
    activation: str = "gelu_new"  #: "gelu_new" or "relu"
    tokenizer: str = "byte"  #: "byte" or "gpt2"
    dropout: float = 0.1  #: resid/embd/attn dropout in training


def _shortest(cfg: dict) -> dict:
    """float32 fields as the shortest decimal that reads back as the same
    float32 (1e-05, not 9.999999747378752e-06)."""
    import numpy as np
    return {k: float(str(np.float32(v))) if isinstance(v, float) else v for k, v in cfg.items()}


class EvalResult(NamedTuple):
    """What ``slm eval`` prints: mean cross-entropy in nats, exp(loss), tokens."""

    loss: float
    perplexity: float
    tokens: int


class _Utf8Stream:
    """Whole UTF-8 characters from a stream of token bytes, as the CLI's
    src/cli/text_out.c: a token may end inside a multi-byte character, so the
    incomplete tail waits for the next token; bytes that can never form a
    character pass through as they are."""

    def __init__(self) -> None:
        self.pending = bytearray()

    @staticmethod
    def _length(c: int) -> int:
        if c < 0x80:
            return 1
        if 0xC2 <= c <= 0xDF:
            return 2
        if c & 0xF0 == 0xE0:
            return 3
        if 0xF0 <= c <= 0xF4:
            return 4
        return 0

    def push(self, data: bytes) -> bytes:
        out = bytearray()
        for c in data:
            if self.pending and c & 0xC0 != 0x80:
                out += self.pending
                self.pending.clear()
            if not self.pending and self._length(c) <= 1:
                out.append(c)
                continue
            if len(self.pending) >= 4:
                out += self.pending
                self.pending.clear()
            self.pending.append(c)
            if len(self.pending) == self._length(self.pending[0]):
                out += self.pending
                self.pending.clear()
        return bytes(out)

    def finish(self) -> bytes:
        out = bytes(self.pending)
        self.pending.clear()
        return out


class Model:
    """A GPT-2 model in slm (the Hugging Face directory layout).

    Create one with :meth:`load` or :meth:`create`; a model may be shared by
    threads (calls that use its working memory take a lock, with the GIL
    released while they run).
    """

    def __init__(self, handle: "_slm.Model", tokenizer: Optional[Tokenizer],
                 directory: Optional[str]) -> None:
        self._m = handle
        self._tokenizer = tokenizer
        self._dir = directory
        self.config = Config(**_shortest(handle.config()))
        #: slm's warning from loading (non-finite weights), "" when none.
        self.warning: str = handle.warning

    @classmethod
    def load(cls, directory: Union[str, "os.PathLike[str]"]) -> "Model":
        """Loads ``config.json`` + ``model.safetensors`` (F32/F16/BF16) and
        the tokenizer the config names (``vocab.json`` + ``merges.txt`` for
        gpt2). Weights with NaN or inf load, with :attr:`warning` set and a
        ``RuntimeWarning``; :meth:`generate` refuses them, as the CLI does.

        Raises:
            slm.FileError, slm.FormatError, slm.UnsupportedError,
            slm.OutOfMemoryError, ValueError (config sizes).
        """
        directory = os.fspath(directory)
        handle = _slm.Model.load(directory)
        cfg = handle.config()
        tok = Tokenizer(cfg["tokenizer"], directory, cfg["vocab_size"])
        if handle.warning:
            import warnings
            warnings.warn(f"slm: {handle.warning}", RuntimeWarning, stacklevel=2)
        return cls(handle, tok, directory)

    @classmethod
    def create(cls, config: Config, seed: int = 0) -> "Model":
        """A new model with GPT-2's initialisation drawn from ``seed``.
        A gpt2-tokenized model uses the vocabulary shipped with slm."""
        handle = _slm.Model.create(**asdict(config), seed=int(seed))
        vocab = GPT2_VOCAB_DIR if config.tokenizer == "gpt2" else None
        return cls(handle, Tokenizer(config.tokenizer, vocab, config.vocab_size), vocab)

    def save(self, directory: Union[str, "os.PathLike[str]"]) -> None:
        """Writes ``config.json`` + ``model.safetensors`` atomically (the
        layout ``GPT2LMHeadModel.from_pretrained`` reads), plus ``vocab.json``
        and ``merges.txt`` for a gpt2-tokenized model."""
        directory = os.fspath(directory)
        self._m.save(directory)
        if self.config.tokenizer == "gpt2" and self._dir:
            for name in _GPT2_FILES:
                src, dst = os.path.join(self._dir, name), os.path.join(directory, name)
                if os.path.exists(src) and not (os.path.exists(dst) and
                                                os.path.samefile(src, dst)):
                    shutil.copyfile(src, dst)

    @property
    def tokenizer(self) -> Tokenizer:
        """The model's tokenizer."""
        assert self._tokenizer is not None
        return self._tokenizer

    @property
    def num_params(self) -> int:
        """Number of parameters."""
        return self._m.num_params()

    def __repr__(self) -> str:
        c = self.config
        return (f"slm.Model(n_layer={c.n_layer}, n_head={c.n_head}, n_embd={c.n_embd}, "
                f"n_positions={c.n_positions}, vocab_size={c.vocab_size}, "
                f"tokenizer={c.tokenizer!r}, params={self.num_params})")

    # ---- ids ---------------------------------------------------------------

    def _ids(self, x: Union[Text, Sequence[int]], what: str) -> array:
        if isinstance(x, (str, bytes, bytearray, memoryview)):
            return array("i", self.tokenizer._t.encode(_to_bytes(x)))
        V = self.config.vocab_size
        try:
            ids = array("i", (int(i) for i in x))
        except (OverflowError, TypeError, ValueError):
            raise InvalidArgumentError(f"{what} must be text or token ids in 0..{V - 1}") from None
        for i in ids:
            if not 0 <= i < V:
                raise RangeError(f"{what}: {i} is not a token id in 0..{V - 1}")
        return ids

    def logits(self, ids: Union[Sequence[int], Sequence[Sequence[int]]]):  # -> np.ndarray
        """Logits ``[T, V]`` for one sequence of ids (``[B, T, V]`` for a batch
        of equal-length sequences), as a float32 NumPy array."""
        import numpy as np
        a = np.asarray(ids)
        if a.ndim not in (1, 2) or a.size == 0 or a.dtype.kind not in "iu":
            raise InvalidArgumentError("ids must be a non-empty 1-D or 2-D array of integers")
        tokens = np.ascontiguousarray(a.reshape(-1, a.shape[-1]), dtype=np.int32)
        B, T = tokens.shape
        out = np.empty((B, T, self.config.vocab_size), np.float32)
        self._m.forward(tokens, None, B, T, out)
        return out[0] if a.ndim == 1 else out

    # ---- generation ----------------------------------------------------------

    def _prompt(self, prompt: Prompt, truncate: bool) -> array:
        if prompt is None or (isinstance(prompt, (str, bytes)) and len(prompt) == 0):
            prompt = ""
        ids = self._ids(prompt, "prompt")
        if len(ids) == 0:
            if not isinstance(prompt, (str, bytes)):
                raise InvalidArgumentError("the prompt is empty")
            # The CLI's natural start: <|endoftext|> for GPT-2, else a newline.
            eot = self.tokenizer.eot
            ids = array("i", [eot if eot is not None else 10])
        ctx = self.config.n_positions
        if len(ids) > ctx:
            if not truncate:
                raise RangeError(f"the prompt is {len(ids)} tokens but the context holds {ctx} "
                                 f"(pass truncate=True to keep its end)")
            ids = ids[len(ids) - ctx:]
        return ids

    def generate_tokens(self, prompt: Prompt = None, max_tokens: int = 256, *,
                        temperature: float = 0.8, top_k: int = 0, top_p: float = 0.95,
                        seed: Optional[int] = None, truncate: bool = False) -> Iterator[int]:
        """Yields new token ids one at a time, exactly as ``slm generate
        --ids`` with the same options: a KV cache; when the context fills up,
        generation continues from the most recent half; stops early at
        ``<|endoftext|>`` (GPT-2 tokenizer).

        Args:
            prompt: text, token ids, or None/"" (start from <|endoftext|> or a
                newline).
            max_tokens: tokens to generate, >= 1.
            temperature: 0 is greedy; default 0.8.
            top_k: sample among the k most likely tokens (0 = all).
            top_p: nucleus sampling in (0, 1].
            seed: sampling seed (None: from the clock, as the CLI).
            truncate: keep the end of a prompt longer than the context
                instead of raising.

        Raises:
            ValueError (slm.RangeError / slm.InvalidArgumentError): bad
            options, a prompt longer than the context; slm.NumericError when
            the weights are not finite.
        """
        if self.warning:
            raise NumericError(f"{self.warning}; refusing to use these weights")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or \
                not 1 <= max_tokens <= 1 << 30:
            raise InvalidArgumentError(f"max_tokens must be an integer from 1 to {1 << 30}, "
                                       f"got {max_tokens!r}")
        if not (isinstance(temperature, (int, float)) and 0 <= temperature <= 1e6):
            raise InvalidArgumentError(f"temperature must be in [0, 1e+06], got {temperature!r}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 0 <= top_k <= 1 << 30:
            raise InvalidArgumentError(f"top_k must be an integer from 0 to {1 << 30}, "
                                       f"got {top_k!r}")
        # 0 keeps no token; 1e-50 is 0 as a float32.
        if not (isinstance(top_p, (int, float)) and 0 < float(array("f", [top_p])[0])
                and top_p <= 1):
            raise InvalidArgumentError(f"top_p must be in (0, 1], got {top_p!r}")
        if seed is None:
            seed = int(time.time())
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise InvalidArgumentError(f"seed must be an integer in [0, 2**64), got {seed!r}")
        ids = self._prompt(prompt, truncate)
        return self._generate(ids, max_tokens, float(temperature), top_k, float(top_p), seed)

    def _generate(self, prompt: array, n: int, temperature: float, top_k: int, top_p: float,
                  seed: int) -> Iterator[int]:
        cfg = self.config
        ctx, V = cfg.n_positions, cfg.vocab_size
        # The cache holds what this run can reach (src/cli/cmd_generate.c).
        cache = _slm.KVCache(self._m, min(len(prompt) + n, ctx))
        sampler = _slm.Sampler(V, temperature, top_k, top_p, seed)
        logits = array("f", bytes(4 * V))
        history = array("i", prompt)
        eot = self.tokenizer.eot
        self._m.decode(cache, prompt, logits)
        for i in range(n):
            if not _slm.all_finite(logits):
                raise NumericError(f"the model's logits became NaN or infinite at token {i + 1}; "
                                   f"its weights are unusable")
            nxt = sampler.next(logits)
            if nxt == eot:
                return
            history.append(nxt)
            yield nxt
            if i + 1 == n:
                return
            if len(cache) == ctx:
                # Context full: continue from the most recent half of it.
                keep = min(max(ctx // 2, 1), len(history))
                cache.reset()
                self._m.decode(cache, history[len(history) - keep:], logits)
            else:
                self._m.decode(cache, array("i", [nxt]), logits)

    def generate(self, prompt: Prompt = None, max_tokens: int = 256, *,
                 temperature: float = 0.8, top_k: int = 0, top_p: float = 0.95,
                 seed: Optional[int] = None, truncate: bool = False,
                 errors: str = "replace") -> Iterator[str]:
        """Yields the generated text as it comes, in whole UTF-8 characters
        (a character split across tokens waits for its last byte), exactly
        the bytes ``slm generate`` prints for the same options. Bytes that
        are not UTF-8 are decoded with ``errors`` (``"surrogateescape"``
        keeps them: ``"".join(...).encode("utf-8", "surrogateescape")`` is
        then the CLI's output byte for byte). Arguments as
        :meth:`generate_tokens`.
        """
        tokens = self.generate_tokens(prompt, max_tokens, temperature=temperature, top_k=top_k,
                                      top_p=top_p, seed=seed, truncate=truncate)
        return self._text(tokens, errors)

    def _text(self, tokens: Iterator[int], errors: str) -> Iterator[str]:
        stream = _Utf8Stream()
        tok = self.tokenizer
        for t in tokens:
            piece = stream.push(tok.token_bytes(t))
            if piece:
                yield piece.decode("utf-8", errors)
        tail = stream.finish()
        if tail:
            yield tail.decode("utf-8", errors)

    # ---- evaluation --------------------------------------------------------

    def eval(self, text: Union[Text, Sequence[int]], context: Optional[int] = None,
             batch: int = 8) -> EvalResult:
        """Mean cross-entropy (nats/token) and perplexity of ``text`` (or token
        ids), as ``slm eval``: tokens t0..t(N-1) are cut into consecutive
        windows of ``context`` inputs (default n_positions), so every token
        but the first is predicted exactly once; windows go through the model
        ``batch`` at a time. Same numbers as the CLI, to the last bit.

        Raises:
            ValueError: fewer than 2 tokens, context outside [1, n_positions].
        """
        ids = self._ids(text, "text")
        n = len(ids)
        ctx_max = self.config.n_positions
        if context is None:
            context = ctx_max
        if isinstance(context, bool) or not isinstance(context, int) or context < 1:
            raise InvalidArgumentError(f"context must be a positive integer, got {context!r}")
        if context > ctx_max:
            raise InvalidArgumentError(f"context {context} exceeds the model's n_positions "
                                       f"({ctx_max})")
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 4096:
            raise InvalidArgumentError(f"batch must be an integer from 1 to 4096, got {batch!r}")
        if n < 2:
            raise InvalidArgumentError(f"the text has {n} token(s); at least 2 are needed")
        loss, _ = self._m.eval(ids, context, batch)
        return EvalResult(loss, math.exp(loss), n)
