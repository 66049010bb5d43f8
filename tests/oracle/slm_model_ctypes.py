"""ctypes bindings to the model part of build/libslm.so (include/slm.h,
"model" and "training"): create a GPT-2, read and write its parameters by
name, run forward / backward / AdamW. Shares the library handle with
slm_ctypes."""
import ctypes as C

import numpy as np

from slm_ctypes import LIB

SLM_ACT_GELU_NEW, SLM_ACT_RELU = 0, 1
SLM_TOKENIZER_GPT2, SLM_TOKENIZER_BYTE = 0, 1
SLM_IGNORE_INDEX = -1


class Config(C.Structure):
    _fields_ = [("n_layer", C.c_int), ("n_head", C.c_int), ("n_embd", C.c_int),
                ("n_positions", C.c_int), ("vocab_size", C.c_int),
                ("layer_norm_epsilon", C.c_float), ("activation", C.c_int),
                ("tokenizer", C.c_int), ("dropout", C.c_float)]


class TensorInfo(C.Structure):
    _fields_ = [("name", C.c_char_p), ("ndim", C.c_int), ("shape", C.c_int * 2),
                ("offset", C.c_size_t), ("numel", C.c_size_t)]


class Batch(C.Structure):
    _fields_ = [("tokens", C.c_void_p), ("targets", C.c_void_p), ("B", C.c_int), ("T", C.c_int)]


class ForwardOpts(C.Structure):
    _fields_ = [("training", C.c_int), ("dropout_seed", C.c_uint64), ("batch_offset", C.c_int),
                ("dtype", C.c_int)]


class AdamwOpts(C.Structure):
    _fields_ = [("lr", C.c_float), ("beta1", C.c_float), ("beta2", C.c_float),
                ("eps", C.c_float), ("weight_decay", C.c_float), ("grad_clip", C.c_float)]


_P = C.c_void_p
_ERR = C.c_char_p
LIB.slm_model_create.argtypes = [C.POINTER(Config), C.c_uint64, C.POINTER(_P), _ERR, C.c_size_t]
LIB.slm_model_free.argtypes = [_P]
LIB.slm_model_num_tensors.argtypes = [_P]
LIB.slm_model_tensor.argtypes = [_P, C.c_int]
LIB.slm_model_tensor.restype = C.POINTER(TensorInfo)
LIB.slm_model_num_params.argtypes = [_P]
LIB.slm_model_num_params.restype = C.c_size_t
LIB.slm_model_params.argtypes = [_P]
LIB.slm_model_params.restype = C.POINTER(C.c_float)
LIB.slm_model_grads.argtypes = [_P]
LIB.slm_model_grads.restype = C.POINTER(C.c_float)
LIB.slm_model_forward.argtypes = [_P, C.POINTER(Batch), C.POINTER(ForwardOpts),
                                  C.POINTER(C.c_float), _ERR, C.c_size_t]
LIB.slm_model_logits.argtypes = [_P]
LIB.slm_model_logits.restype = C.POINTER(C.c_float)
LIB.slm_model_backward.argtypes = [_P, C.c_float, _ERR, C.c_size_t]
LIB.slm_model_zero_grad.argtypes = [_P]
LIB.slm_model_adamw_step.argtypes = [_P, C.POINTER(AdamwOpts), C.c_int, C.POINTER(C.c_float),
                                     _ERR, C.c_size_t]
LIB.slm_lr_schedule.argtypes = [C.c_float, C.c_int, C.c_int, C.c_int]
LIB.slm_lr_schedule.restype = C.c_float


def lr_schedule(max_lr, step, warmup, total):
    return LIB.slm_lr_schedule(max_lr, step, warmup, total)


class Model:
    """An slm_model. params()/grads() return {name: array} copies shaped like
    the tensor table; set_params() writes such a dict back."""

    def __init__(self, n_layer, n_head, n_embd, vocab_size, n_positions, *,
                 activation=SLM_ACT_GELU_NEW, dropout=0.0, eps=1e-5, seed=1):
        self.cfg = Config(n_layer, n_head, n_embd, n_positions, vocab_size, eps, activation,
                          SLM_TOKENIZER_GPT2, dropout)
        self.h = _P()
        err = C.create_string_buffer(256)
        rc = LIB.slm_model_create(C.byref(self.cfg), seed, C.byref(self.h), err, 256)
        if rc:
            raise RuntimeError(f"slm_model_create: {err.value.decode()}")
        self.n_params = LIB.slm_model_num_params(self.h)
        self.table = []
        for i in range(LIB.slm_model_num_tensors(self.h)):
            t = LIB.slm_model_tensor(self.h, i).contents
            shape = tuple(t.shape[:t.ndim])
            self.table.append((t.name.decode(), shape, t.offset, t.numel))

    def __del__(self):
        if getattr(self, "h", None):
            LIB.slm_model_free(self.h)
            self.h = None

    def _flat(self, ptr):
        return np.ctypeslib.as_array(ptr, shape=(self.n_params,))

    def _dict(self, flat):
        return {n: flat[o:o + k].reshape(s).copy() for n, s, o, k in self.table}

    def params(self):
        return self._dict(self._flat(LIB.slm_model_params(self.h)))

    def grads(self):
        return self._dict(self._flat(LIB.slm_model_grads(self.h)))

    def set_params(self, d):
        flat = self._flat(LIB.slm_model_params(self.h))
        for n, s, o, k in self.table:
            flat[o:o + k] = np.asarray(d[n], dtype=np.float32).reshape(-1)

    def forward(self, tokens, targets=None, training=False, seed=0):
        """Returns the loss (0.0 without targets). Raises on an error code."""
        tok = np.ascontiguousarray(tokens, dtype=np.int32)
        tgt = None if targets is None else np.ascontiguousarray(targets, dtype=np.int32)
        B, T = tok.shape
        loss = C.c_float(0.0)
        err = C.create_string_buffer(256)
        batch = Batch(tok.ctypes.data, None if tgt is None else tgt.ctypes.data, B, T)
        opts = ForwardOpts(int(training), seed, 0)
        rc = LIB.slm_model_forward(self.h, C.byref(batch), C.byref(opts), C.byref(loss), err, 256)
        if rc:
            raise RuntimeError(f"slm_model_forward ({rc}): {err.value.decode()}")
        self._bt = (B, T)
        return loss.value

    def logits(self):
        B, T = self._bt
        V = self.cfg.vocab_size
        return np.ctypeslib.as_array(LIB.slm_model_logits(self.h), shape=(B, T, V)).copy()

    def backward(self, loss_scale=1.0):
        err = C.create_string_buffer(256)
        rc = LIB.slm_model_backward(self.h, loss_scale, err, 256)
        if rc:
            raise RuntimeError(f"slm_model_backward ({rc}): {err.value.decode()}")

    def zero_grad(self):
        LIB.slm_model_zero_grad(self.h)

    def adamw_step(self, step, lr, *, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.0,
                   grad_clip=0.0):
        """Returns the gradient norm before clipping."""
        o = AdamwOpts(lr, beta1, beta2, eps, weight_decay, grad_clip)
        norm = C.c_float(0.0)
        err = C.create_string_buffer(256)
        rc = LIB.slm_model_adamw_step(self.h, C.byref(o), step, C.byref(norm), err, 256)
        if rc:
            raise RuntimeError(f"slm_model_adamw_step ({rc}): {err.value.decode()}")
        return norm.value
