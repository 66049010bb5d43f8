"""slm — a small-language-model toolkit in C, from Python.

A thin layer over libslm (include/slm.h), compiled into the extension
``slm._slm`` together with the library itself:

- :func:`attention` — scaled dot-product attention (slm's flash kernels) on
  NumPy arrays and PyTorch tensors; :mod:`slm.torch` has an autograd
  Function that is a drop-in for ``F.scaled_dot_product_attention``.
- :class:`Model` — GPT-2 models in the Hugging Face layout: load, save,
  streaming generation, evaluation.
- :class:`Tokenizer` — byte and GPT-2 BPE tokenizers.
- :func:`train` / :func:`resume_training` — the library's trainer, as
  ``slm train``, with progress to a Python callback and Ctrl-C saving a
  checkpoint.
- errors: every failure raises a subclass of :class:`Error` carrying slm's
  one-line message; invalid arguments and out-of-range values are also
  ``ValueError``.

Long calls release the GIL, so other Python threads run meanwhile.
"""
from . import _slm
from ._attention import attention, attention_backward
from ._errors import (Error, FileError, FormatError, Interrupted, InvalidArgumentError,
                      NumericError, OutOfMemoryError, RangeError, UnsupportedError)
from ._model import Config, EvalResult, Model
from ._tokenizer import Tokenizer
from ._train import TrainProgress, TrainResult, resume_training, train

__version__ = _slm.version()

__all__ = [
    "attention", "attention_backward", "Model", "Config", "EvalResult", "Tokenizer",
    "Error", "InvalidArgumentError", "RangeError", "OutOfMemoryError", "FileError",
    "FormatError", "NumericError", "Interrupted", "UnsupportedError",
    "train", "resume_training", "TrainProgress", "TrainResult",
    "set_num_threads", "num_threads", "__version__",
]


def set_num_threads(n: int) -> None:
    """Threads slm uses for calls made from the calling Python thread
    (OpenMP; default: all cores, or ``OMP_NUM_THREADS``)."""
    _slm.set_num_threads(int(n))


def num_threads() -> int:
    """Threads slm uses for calls made from the calling Python thread."""
    return _slm.num_threads()
