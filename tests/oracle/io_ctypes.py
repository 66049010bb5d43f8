"""ctypes bindings for the file API of build/libslm.so (src/io): safetensors,
model directories. Shared by the io oracle tests."""
import ctypes as C

import numpy as np

from slm_ctypes import LIB

DTYPES = {"F32": 0, "F16": 1, "BF16": 2, "F64": 3, "I64": 4, "I32": 5, "I16": 6, "I8": 7,
          "U64": 8, "U32": 9, "U16": 10, "U8": 11, "BOOL": 12}
MAX_DIMS = 8


class StTensor(C.Structure):
    _fields_ = [("name", C.c_char_p), ("dtype", C.c_int), ("ndim", C.c_int),
                ("shape", C.c_int64 * MAX_DIMS), ("numel", C.c_size_t), ("nbytes", C.c_size_t)]


class StEntry(C.Structure):
    _fields_ = [("name", C.c_char_p), ("dtype", C.c_int), ("ndim", C.c_int),
                ("shape", C.POINTER(C.c_int64)), ("data", C.c_void_p)]


class TensorInfo(C.Structure):
    _fields_ = [("name", C.c_char_p), ("ndim", C.c_int), ("shape", C.c_int * 2),
                ("offset", C.c_size_t), ("numel", C.c_size_t)]


class Config(C.Structure):
    _fields_ = [("n_layer", C.c_int), ("n_head", C.c_int), ("n_embd", C.c_int),
                ("n_positions", C.c_int), ("vocab_size", C.c_int),
                ("layer_norm_epsilon", C.c_float), ("activation", C.c_int),
                ("tokenizer", C.c_int), ("dropout", C.c_float)]


LIB.slm_safetensors_open.argtypes = [C.c_char_p, C.POINTER(C.c_void_p), C.c_char_p, C.c_size_t]
LIB.slm_safetensors_close.argtypes = [C.c_void_p]
LIB.slm_safetensors_count.argtypes = [C.c_void_p]
LIB.slm_safetensors_tensor_at.argtypes = [C.c_void_p, C.c_int]
LIB.slm_safetensors_tensor_at.restype = C.POINTER(StTensor)
LIB.slm_safetensors_metadata.argtypes = [C.c_void_p, C.c_char_p]
LIB.slm_safetensors_metadata.restype = C.c_char_p
LIB.slm_safetensors_read.argtypes = [C.c_void_p, C.POINTER(StTensor), C.c_int, C.c_size_t,
                                     C.c_size_t, C.c_void_p, C.c_char_p, C.c_size_t]
LIB.slm_safetensors_save.argtypes = [C.c_char_p, C.POINTER(StEntry), C.c_int,
                                     C.POINTER(C.c_char_p), C.c_int, C.c_char_p, C.c_size_t]
LIB.slm_model_load.argtypes = [C.c_char_p, C.POINTER(C.c_void_p), C.c_char_p, C.c_size_t]
LIB.slm_model_save.argtypes = [C.c_void_p, C.c_char_p, C.c_char_p, C.c_size_t]
LIB.slm_model_create.argtypes = [C.POINTER(Config), C.c_uint64, C.POINTER(C.c_void_p),
                                 C.c_char_p, C.c_size_t]
LIB.slm_model_free.argtypes = [C.c_void_p]
LIB.slm_model_num_tensors.argtypes = [C.c_void_p]
LIB.slm_model_tensor.argtypes = [C.c_void_p, C.c_int]
LIB.slm_model_tensor.restype = C.POINTER(TensorInfo)
LIB.slm_model_num_params.argtypes = [C.c_void_p]
LIB.slm_model_num_params.restype = C.c_size_t
LIB.slm_model_params.argtypes = [C.c_void_p]
LIB.slm_model_params.restype = C.POINTER(C.c_float)


def _check(rc, err, what):
    if rc:
        raise RuntimeError(f"{what}: {LIB.slm_strerror(rc).decode()}: {err.value.decode()}")


def st_read_all(path):
    """{name: float32 (or raw) numpy array} and the metadata dict of a
    safetensors file, read through slm."""
    f = C.c_void_p()
    err = C.create_string_buffer(512)
    _check(LIB.slm_safetensors_open(str(path).encode(), C.byref(f), err, 512), err, "open")
    try:
        out = {}
        for i in range(LIB.slm_safetensors_count(f)):
            t = LIB.slm_safetensors_tensor_at(f, i)
            info = t.contents
            shape = tuple(info.shape[d] for d in range(info.ndim))
            is_float = info.dtype in (0, 1, 2)
            np_dtype = np.float32 if is_float else {4: np.int64, 5: np.int32, 11: np.uint8}[info.dtype]
            arr = np.zeros(shape, dtype=np_dtype)
            _check(LIB.slm_safetensors_read(f, t, 0 if is_float else info.dtype, 0, info.numel,
                                            arr.ctypes.data, err, 512), err, "read")
            out[info.name.decode()] = arr
        meta = LIB.slm_safetensors_metadata(f, b"format")
        return out, {"format": meta.decode()} if meta else {}
    finally:
        LIB.slm_safetensors_close(f)


def st_save(path, tensors, meta):
    """Writes {name: numpy array (float32/int64/uint8)} through slm."""
    codes = {np.dtype(np.float32): 0, np.dtype(np.int64): 4, np.dtype(np.uint8): 11}
    arrays = [np.require(a, requirements='C') for a in tensors.values()]
    shapes = [(C.c_int64 * max(1, a.ndim))(*a.shape) for a in arrays]
    entries = (StEntry * len(arrays))(*[
        StEntry(n.encode(), codes[a.dtype], a.ndim, s, a.ctypes.data)
        for n, a, s in zip(tensors, arrays, shapes)])
    kv = [x.encode() for pair in meta.items() for x in pair]
    meta_arr = (C.c_char_p * max(1, len(kv)))(*kv)
    err = C.create_string_buffer(512)
    _check(LIB.slm_safetensors_save(str(path).encode(), entries, len(arrays), meta_arr,
                                    len(meta), err, 512), err, "save")


def model_params(m):
    """{name: numpy view} of a model's parameters."""
    base = LIB.slm_model_params(m)
    flat = np.ctypeslib.as_array(base, shape=(LIB.slm_model_num_params(m),))
    out = {}
    for i in range(LIB.slm_model_num_tensors(m)):
        t = LIB.slm_model_tensor(m, i).contents
        shape = tuple(t.shape[d] for d in range(t.ndim))
        out[t.name.decode()] = flat[t.offset:t.offset + t.numel].reshape(shape)
    return out


def model_load(path):
    m = C.c_void_p()
    err = C.create_string_buffer(512)
    _check(LIB.slm_model_load(str(path).encode(), C.byref(m), err, 512), err, "load")
    return m


def model_create(cfg, seed):
    m = C.c_void_p()
    err = C.create_string_buffer(512)
    _check(LIB.slm_model_create(C.byref(cfg), seed, C.byref(m), err, 512), err, "create")
    return m


def model_save(m, path):
    err = C.create_string_buffer(512)
    _check(LIB.slm_model_save(m, str(path).encode(), err, 512), err, "save")
