#!/usr/bin/env python3
"""Builds reference_ckpt.pt: a checkpoint shaped like the reference NAMM's
(evolution_state.mean [4172], stored/best normalisation buffers [1,1,1,17],
online_new_ decoys), in torch.save's zip format, with only the standard
library (reusing the fake-torch writer of internal/torchzip/testdata/make_fixture.py).

Values: mean[i] = sin(i) / 10; output_mean[b] = b / 8; output_var[b] = 1 + b;
decoys hold 99. Usage: python3 make_reference_ckpt.py OUT.pt
"""
import collections
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "internal", "torchzip", "testdata"))
import make_fixture as mf  # noqa: E402


def build(torch):
    storages = []

    def tensor(values, size):
        s = torch.FloatStorage("f", values)
        storages.append(s)
        stride, acc = [], 1
        for d in reversed(size):
            stride.insert(0, acc)
            acc *= d
        return torch.Tensor(s, 0, size, stride)

    state = collections.OrderedDict()
    state["mean"] = tensor([math.sin(i) / 10 for i in range(4172)], [4172])
    state["sigma"] = 0.065
    state["generation"] = 37
    pre = "stored_buffers_to_save.token_embedding."
    state[pre + "token_embedding_0_online_new_output_mean"] = tensor([99.0] * 17, [1, 1, 1, 17])
    state[pre + "token_embedding_0_output_mean"] = tensor([b / 8 for b in range(17)], [1, 1, 1, 17])
    state[pre + "token_embedding_0_output_var"] = tensor([1.0 + b for b in range(17)], [1, 1, 1, 17])
    state["best_" + pre + "token_embedding_0_output_mean"] = tensor([99.0] * 17, [1, 1, 1, 17])
    state["best_" + pre + "token_embedding_0_output_var"] = tensor([99.0] * 17, [1, 1, 1, 17])
    return {"evolution_state": state, "iter_num": 370}, storages


if __name__ == "__main__":
    mf.build = build
    mf.main(sys.argv[1] if len(sys.argv) > 1 else "reference_ckpt.pt")
