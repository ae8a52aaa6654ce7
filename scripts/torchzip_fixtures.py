#!/usr/bin/env python3
"""Saves small checkpoints with torch.save, and what they hold as JSON, for the
tests of internal/torchzip (TestRealTorchFiles).

Usage: python3 scripts/torchzip_fixtures.py [OUTDIR]
  (default OUTDIR: internal/torchzip/testdata/torch; needs torch, e.g. Debian's
  python3-torch under /usr/bin/python3)

Each NAME.pt comes with NAME.json: the saved object as a tree of
{"dict": {...}}, {"list": [...]}, {"int": n}, {"float": x}, {"str": s},
{"bool": b}, {"none": true} and {"tensor": {dtype, shape, stride, offset,
requires_grad, values}}, where values are the tensor's elements in row-major
order (floats as torch converts them to float64, integers and bools as
integers). legacy.pt is saved in the format before torch 1.6 (a raw pickle),
which torchzip refuses; it has no JSON.
"""
import collections
import json
import os
import sys

import torch


def tensors():
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 4
    return {
        "f32": torch.tensor([[1.5, -2.25, 3.0], [0.1, 1e-8, -7.75]], dtype=torch.float32),
        "f64": torch.tensor([0.1, -1e300, 2.5], dtype=torch.float64),
        "bf16": torch.tensor([1.0, -0.5, 3.14159, 1e30, -0.0, 1e-30], dtype=torch.bfloat16),
        "f16": torch.tensor([1.0, -0.333, 65504.0, 6e-8, 0.0], dtype=torch.float16),
        "i64": torch.tensor([0, -1, 2**40 + 3, -(2**62) - 5], dtype=torch.int64),
        "i32": torch.tensor([[7, -8], [2**31 - 1, -(2**31)]], dtype=torch.int32),
        "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        # views of one storage: saved once, rebuilt with their strides and offsets
        "base": base,
        "transposed": base.t(),
        "slice": base[1:, 2:],
        "param": torch.nn.Parameter(torch.tensor([0.25, -4.0])),
    }


def state_dict():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2), torch.nn.Linear(2, 1, bias=False))
    net(torch.randn(4, 3))  # moves the batch-norm running statistics and counter
    return net.state_dict()


def evo_checkpoint():
    """Shaped like evo-memory's checkpoints: a nested dict of CMA-ES state,
    buffers and plain Python values."""
    torch.manual_seed(1)
    pre = "stored_buffers_to_save.token_embedding."
    state = collections.OrderedDict()
    state["mean"] = torch.randn(8)
    state["sigma"] = 0.065
    state["generation"] = 37
    state[pre + "token_embedding_0_output_mean"] = torch.randn(1, 1, 1, 17)
    state[pre + "token_embedding_0_output_var"] = torch.rand(1, 1, 1, 17) + 1
    state["best_" + pre + "token_embedding_0_output_mean"] = torch.randn(1, 1, 1, 17)
    return {
        "evolution_state": state,
        "iter_num": 370,
        "best_val_loss": 0.25,
        "config": {"name": "namm", "layers": [1, 2, 3], "pair": (4, "five"), "flag": True, "nothing": None},
    }


def describe(v):
    if isinstance(v, torch.Tensor):
        values = v.tolist() if v.dim() > 0 else [v.item()]
        if v.dim() > 1:
            values = v.flatten().tolist()
        if v.dtype == torch.bool:
            values = [int(b) for b in values]
        return {"tensor": {
            "dtype": str(v.dtype).removeprefix("torch."),
            "shape": list(v.shape),
            "stride": list(v.stride()),
            "offset": v.storage_offset(),
            "requires_grad": v.requires_grad,
            "values": values,
        }}
    if isinstance(v, dict):
        return {"dict": {str(k): describe(x) for k, x in v.items()}}
    if isinstance(v, (list, tuple)):
        return {"list": [describe(x) for x in v]}
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, int):
        return {"int": v}
    if isinstance(v, float):
        return {"float": v}
    if isinstance(v, str):
        return {"str": v}
    if v is None:
        return {"none": True}
    raise TypeError(f"cannot describe {type(v)}")


def main(out):
    os.makedirs(out, exist_ok=True)
    files = {
        "tensors": (tensors(), {}),
        "state_dict": (state_dict(), {}),
        "evo_checkpoint": (evo_checkpoint(), {}),
        "protocol4": (tensors(), {"pickle_protocol": 4}),
    }
    for name, (obj, kwargs) in files.items():
        torch.save(obj, os.path.join(out, name + ".pt"), **kwargs)
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump({"torch": torch.__version__, "object": describe(obj)}, f, separators=(",", ":"))
            f.write("\n")
    torch.save({"x": torch.ones(2)}, os.path.join(out, "legacy.pt"), _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join("internal", "torchzip", "testdata", "torch"))
