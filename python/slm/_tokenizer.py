"""Text ⇄ token ids: slm's byte and GPT-2 BPE tokenizers."""
from __future__ import annotations

import os
from array import array
from typing import Iterable, List, Optional, Sequence, Union

from . import _slm
from ._errors import RangeError

Text = Union[str, bytes, bytearray, memoryview]

#: The GPT-2 vocabulary shipped inside the package (data/gpt2 of the repository).
GPT2_VOCAB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "gpt2")


def _to_bytes(text: Text) -> bytes:
    if isinstance(text, str):
        # surrogateescape: text decoded with errors="surrogateescape" (for
        # example from decode()) encodes back to the very same bytes.
        return text.encode("utf-8", "surrogateescape")
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text)
    raise TypeError(f"text must be str or bytes, got {type(text).__name__}")


def _ids_array(ids: Iterable[int], vocab_size: int) -> array:
    try:
        return array("i", ids)
    except OverflowError:
        bad = next(int(i) for i in ids if not -2**31 <= int(i) < 2**31)
        raise RangeError(f"token id {bad} is outside [0, {vocab_size})") from None
    except TypeError:
        raise TypeError("token ids must be integers") from None


class Tokenizer:
    """slm's tokenizer: ``byte`` (id = byte) or ``gpt2`` (GPT-2 byte-level
    BPE, the ids of tiktoken ``r50k_base``).

    Any bytes encode and decode back exactly (invalid UTF-8 too); text is
    plain, so ``"<|endoftext|>"`` in input is not a special token. A
    tokenizer is immutable: encode and decode release the GIL and may run in
    several threads at once.
    """

    def __init__(self, kind: str = "byte", directory: Optional[str] = None,
                 vocab_size: Optional[int] = None) -> None:
        """Loads a tokenizer.

        Args:
            kind: ``"byte"`` or ``"gpt2"``.
            directory: for gpt2, the directory with ``vocab.json`` and
                ``merges.txt`` (default: the vocabulary shipped with slm).
            vocab_size: the model's vocabulary size, at least the
                tokenizer's own (ids beyond it decode to nothing); None means
                the tokenizer's own size.
        """
        if kind not in ("byte", "gpt2"):
            raise ValueError(f"kind must be 'byte' or 'gpt2', got {kind!r}")
        code = _slm.TOKENIZER_BYTE if kind == "byte" else _slm.TOKENIZER_GPT2
        if kind == "gpt2" and directory is None:
            directory = GPT2_VOCAB_DIR
        self.kind = kind
        self._t = _slm.Tokenizer(code, os.fspath(directory) if directory is not None else None,
                                 int(vocab_size or 0))

    @classmethod
    def from_model_dir(cls, directory: str) -> "Tokenizer":
        """The tokenizer a model directory's config.json names (``slm_tokenizer``)."""
        cfg = _slm.config_load(os.path.join(os.fspath(directory), "config.json"))
        return cls(cfg["tokenizer"], directory, cfg["vocab_size"])

    @property
    def vocab_size(self) -> int:
        """Ids are in ``[0, vocab_size)``."""
        return self._t.vocab_size

    @property
    def eot(self) -> Optional[int]:
        """The id of ``<|endoftext|>`` (50256 for GPT-2), None for byte."""
        e = self._t.eot
        return None if e < 0 else e

    def encode(self, text: Text) -> List[int]:
        """Token ids of ``text`` (str is encoded as UTF-8)."""
        return array("i", self._t.encode(_to_bytes(text))).tolist()

    def encode_batch(self, texts: Sequence[Text]) -> List[List[int]]:
        """``[encode(t) for t in texts]`` in one call."""
        raw = self._t.encode_batch([_to_bytes(t) for t in texts])
        return [array("i", r).tolist() for r in raw]

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The exact bytes of ``ids``."""
        ids = list(ids)
        return self._t.decode(_ids_array(ids, self.vocab_size))

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """Text of ``ids``; bytes that are not UTF-8 follow ``errors`` (use
        ``"surrogateescape"`` for a str that encodes back to the exact bytes)."""
        return self.decode_bytes(ids).decode("utf-8", errors)

    def decode_batch(self, batch: Sequence[Iterable[int]], errors: str = "replace") -> List[str]:
        """``[decode(ids) for ids in batch]``."""
        return [self.decode(ids, errors) for ids in batch]

    def token_bytes(self, id: int) -> bytes:  # noqa: A002 - the token's id
        """The bytes of one token (empty for padding ids)."""
        return self._t.token_bytes(int(id))

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"slm.Tokenizer({self.kind!r}, vocab_size={self.vocab_size})"
