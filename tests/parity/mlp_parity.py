"""PyTorch parity, Python side: repeats mlp_parity.cpp in torch and compares.

Usage: /usr/bin/python3 mlp_parity.py OUT_DIR  (after `mlp_parity OUT_DIR`).
Loads OUT_DIR/init.safetensors (weights + batch) into torch.nn.Sequential(Linear, LayerNorm,
GELU(approximate="tanh"), Linear), computes cross-entropy and its gradients, runs the same
AdamW steps, and checks against OUT_DIR/result.safetensors: loss and gradients to 1e-5 and
parameters after the AdamW steps to 1e-4, relative to the largest magnitude of each torch
tensor. The `safetensors` package is not needed: the reader below is the format itself
(8-byte little-endian header length, JSON header, raw little-endian data).
"""
import json
import struct
import sys

import numpy as np
import torch

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "U8": np.uint8}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(data[begin:end], dtype=np.uint16).astype(np.uint32) << 16
            array = bits.view(np.float32)
        else:
            array = np.frombuffer(data[begin:end], dtype=DTYPES[info["dtype"]])
        tensors[name] = torch.from_numpy(array.reshape(info["shape"]).copy())
    return tensors, meta


def rel_error(ours, ref):
    ours, ref = ours.double(), ref.double()
    return ((ours - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def main(out_dir):
    init, meta = read_safetensors(out_dir + "/init.safetensors")
    result, _ = read_safetensors(out_dir + "/result.safetensors")
    steps = int(meta["steps"])
    torch.manual_seed(0)
    x, target = init.pop("input"), init.pop("target")
    hidden, classes = init["1.weight"].shape[0], init["3.weight"].shape[0]
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.LayerNorm(hidden),
                                torch.nn.GELU(approximate="tanh"), torch.nn.Linear(hidden, classes))
    model.load_state_dict(init, strict=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)

    failures = []

    def check(what, ours, ref, tol):
        err = rel_error(ours, ref)
        status = "ok" if err <= tol else "FAIL"
        print(f"  {what:<24} relative error {err:.2e} (tolerance {tol:.0e}) {status}")
        if err > tol:
            failures.append(what)

    losses = []
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), target)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            print("first step:")
            check("loss", result["loss"], loss.detach(), 1e-5)
            for name, p in model.named_parameters():
                check("grad." + name, result["grad." + name], p.grad, 1e-5)
        opt.step()
    print(f"after {steps} AdamW steps (loss {losses[0]:.6f} -> {losses[-1]:.6f}):")
    check("losses", result["losses"], torch.tensor(losses, dtype=torch.float32), 1e-4)
    for name, p in model.named_parameters():
        check("final." + name, result["final." + name], p.detach(), 1e-4)
    if failures:
        print("mlp_parity.py: MISMATCH in " + ", ".join(failures))
        return 1
    print("mlp_parity.py: tessera matches PyTorch " + torch.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
