#!/usr/bin/env python3
"""Builds torch_like.pt, a checkpoint in torch.save's zip format, with only the
Python standard library (torch itself is not installed here).

A fake `torch` package is created in a temporary directory so that pickle
emits exactly the GLOBAL opcodes torch does ('torch._utils _rebuild_tensor_v2',
'torch FloatStorage', ...), tensors reduce the way torch.Tensor.__reduce_ex__
does, and storages are saved through persistent_id as
('storage', storage_type, key, location, numel), as torch.serialization does.

Usage: python3 make_fixture.py OUT.pt
"""
import collections
import io
import os
import pickle
import struct
import sys
import tempfile
import zipfile

FAKE_TORCH = {
    "torch/__init__.py": """
class _Storage:
    def __init__(self, fmt, values):
        self.fmt, self.values = fmt, list(values)
class FloatStorage(_Storage): pass
class DoubleStorage(_Storage): pass
class HalfStorage(_Storage): pass
class BFloat16Storage(_Storage): pass
class LongStorage(_Storage): pass
class IntStorage(_Storage): pass
class BoolStorage(_Storage): pass

class Tensor:
    def __init__(self, storage, offset, size, stride, requires_grad=False):
        self.args = (storage, offset, tuple(size), tuple(stride), requires_grad)
    def __reduce_ex__(self, proto):
        import collections, torch._utils
        storage, offset, size, stride, requires_grad = self.args
        return (torch._utils._rebuild_tensor_v2,
                (storage, offset, size, stride, requires_grad, collections.OrderedDict()))

class Parameter(Tensor):
    def __reduce_ex__(self, proto):
        import collections, torch._utils
        return (torch._utils._rebuild_parameter,
                (Tensor(*self.args), self.args[4], collections.OrderedDict()))
""",
    "torch/_utils.py": """
def _rebuild_tensor_v2(*args):
    raise NotImplementedError
def _rebuild_parameter(*args):
    raise NotImplementedError
""",
}


def bf16_bits(x):
    """Truncating f32 -> bf16 for values chosen to be exact in bf16."""
    (u,) = struct.unpack("<I", struct.pack("<f", x))
    assert u & 0xFFFF == 0, x
    return u >> 16


def build(torch):
    storages = []  # (storage object, element bytes), key = index

    def storage(cls, fmt, values):
        s = cls(fmt, values)
        storages.append(s)
        return s

    def tensor(cls, fmt, values, size, stride=None, offset=0, requires_grad=False):
        if stride is None:
            stride, acc = [], 1
            for d in reversed(size):
                stride.insert(0, acc)
                acc *= d
        return torch.Tensor(storage(cls, fmt, values), offset, size, stride, requires_grad)

    # The evolution state of a NAMM-like checkpoint.
    mean = tensor(torch.FloatStorage, "f", [0.5, -1.25, 3.0, 1e-3], [4])
    tok_mean = tensor(torch.FloatStorage, "f", [i / 8 for i in range(17)], [1, 1, 1, 17])
    tok_var = tensor(torch.FloatStorage, "f", [1 + i for i in range(17)], [1, 1, 1, 17])
    # A 3x2 storage viewed transposed (size [2, 3], stride [1, 2]).
    base = storage(torch.FloatStorage, "f", [1, 2, 3, 4, 5, 6, 7, 8])
    transposed = torch.Tensor(base, 0, [2, 3], [1, 2])
    # The same storage, offset 5, size [3] (elements 6, 7, 8).
    tail = torch.Tensor(base, 5, [3], [1])
    bf = tensor(torch.BFloat16Storage, "H", [bf16_bits(x) for x in [1.0, -2.5, 0.15625, 256.0, -0.0078125, 3.0]], [2, 3])
    half = tensor(torch.HalfStorage, "H", [0x3C00, 0x0001, 0xC000, 0x7BFF], [2, 2])
    dbl = tensor(torch.DoubleStorage, "d", [0.1, -7.5], [2])
    longs = tensor(torch.LongStorage, "q", [-3, 0, 2**40], [3])
    bools = tensor(torch.BoolStorage, "?", [True, False, True], [3])
    scalar = tensor(torch.FloatStorage, "f", [42.0], [])
    param = torch.Parameter(storage(torch.FloatStorage, "f", [9, 8]), 0, [2], [1], True)

    state_dict = collections.OrderedDict()
    state_dict["token_embedding_0_output_mean"] = tok_mean
    state_dict["token_embedding_0_output_var"] = tok_var
    state_dict["scoring.weight"] = transposed
    state_dict["scoring.param"] = param

    obj = {
        "evolution_state": {
            "mean": mean,
            "sigma": 0.3,
            "generation": 120,
            "C_diag": bf,
        },
        "state_dict": state_dict,
        "views": {"tail": tail, "same_tail": tail},
        "dtypes": {"half": half, "double": dbl, "long": longs, "bool": bools, "scalar": scalar},
        "x": [1, 2.5, "s", None, True, False, (1, 2), 2**70, -5, 300, 70000, -(2**31), b"\x00\xffab", "\u00e9\u4e2d"],
        3: "int key",
        "nested": {"a": {"b": [{"c": "deep"}]}},
    }
    return obj, storages


def main(out):
    with tempfile.TemporaryDirectory() as tmp:
        for name, src in FAKE_TORCH.items():
            os.makedirs(os.path.join(tmp, os.path.dirname(name)), exist_ok=True)
            with open(os.path.join(tmp, name), "w") as f:
                f.write(src)
        sys.path.insert(0, tmp)
        import torch  # the fake one

        obj, storages = build(torch)
        keys = {}

        class Pickler(pickle.Pickler):
            def persistent_id(self, o):
                if isinstance(o, torch._Storage):
                    key = keys.setdefault(id(o), str(len(keys)))
                    return ("storage", type(o), key, "cpu", len(o.values))
                return None

        buf = io.BytesIO()
        Pickler(buf, protocol=2).dump(obj)
        by_key = {keys[id(s)]: s for s in storages if id(s) in keys}

    def add(zf, name, data):
        info = zipfile.ZipInfo("archive/" + name, date_time=(2024, 1, 1, 0, 0, 0))
        zf.writestr(info, data, compress_type=zipfile.ZIP_STORED)

    with zipfile.ZipFile(out, "w") as zf:
        add(zf, "data.pkl", buf.getvalue())
        add(zf, "byteorder", b"little")
        for key in sorted(by_key, key=int):
            s = by_key[key]
            add(zf, "data/" + key, struct.pack("<%d%s" % (len(s.values), s.fmt), *s.values))
        add(zf, "version", b"3\n")
        add(zf, ".data/serialization_id", b"0123456789")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "torch_like.pt")
