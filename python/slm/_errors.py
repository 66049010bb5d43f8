"""slm's error codes as Python exceptions.

Every failure inside libslm returns a negative ``SLM_E*`` code and a one-line
message; the binding raises the matching subclass of :class:`slm.Error` with
that message. Invalid arguments and out-of-range values are also
:class:`ValueError`, so code that catches ``ValueError`` keeps working.
"""
from . import _slm


class Error(Exception):
    """Base class of every error libslm reports; ``code`` is the SLM_E* value."""

    code: int = 0


class InvalidArgumentError(Error, ValueError):
    """SLM_EINVAL: an invalid argument (size, option, empty input)."""

    code = _slm.EINVAL


class RangeError(Error, ValueError):
    """SLM_ERANGE: a value outside its allowed range (token id, context length)."""

    code = _slm.ERANGE


class OutOfMemoryError(Error, MemoryError):
    """SLM_ENOMEM: an allocation failed or would exceed the available memory."""

    code = _slm.ENOMEM


class FileError(Error, OSError):
    """SLM_EIO: reading or writing a file failed."""

    code = _slm.EIO


class FormatError(Error):
    """SLM_EFORMAT: a file is malformed (header, dtype, shape, JSON, ...)."""

    code = _slm.EFORMAT


class NumericError(Error, ArithmeticError):
    """SLM_ENUMERIC: NaN or infinity where a finite value is needed."""

    code = _slm.ENUMERIC


class Interrupted(Error):
    """SLM_EINTERRUPTED: stopped on request (Ctrl-C) before the work was done."""

    code = _slm.EINTERRUPTED


class UnsupportedError(Error):
    """SLM_EUNSUPPORTED: valid, but not supported by this build or model."""

    code = _slm.EUNSUPPORTED


_BY_CODE = {cls.code: cls for cls in (InvalidArgumentError, RangeError, OutOfMemoryError,
                                      FileError, FormatError, NumericError, Interrupted,
                                      UnsupportedError)}
_slm._set_errors({**_BY_CODE, "default": Error})
for _cls in (Error, *_BY_CODE.values()):
    _cls.__module__ = "slm"  # shown as slm.FormatError in tracebacks
