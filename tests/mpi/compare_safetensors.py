#!/usr/bin/python3
"""Compares the tensors of two safetensors files (tests of data-parallel training).

    compare_safetensors.py A B --rtol 1e-5     every tensor: max|a - b| <= rtol * max|b|
    compare_safetensors.py A B --bitwise       every tensor byte for byte equal
    compare_safetensors.py A B --report        print the largest relative difference only

Both files must hold the same tensor names, dtypes and shapes. Prints one line per failing
tensor and exits 1 on any failure; otherwise prints the largest relative difference. Reads the
format directly (8-byte little-endian header length, JSON header, raw data) with numpy.
"""
import argparse
import json
import struct
import sys

import numpy as np

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "U8": np.uint8}


def load(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[begin:end]
        if info["dtype"] == "BF16":  # widen to f32: bf16 is the top half of an f32
            words = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            array = words.view(np.float32)
        else:
            array = np.frombuffer(raw, dtype=DTYPES[info["dtype"]])
        tensors[name] = (info["dtype"], info["shape"], raw, array.reshape(info["shape"]))
    return tensors


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("a")
    parser.add_argument("b")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--rtol", type=float)
    mode.add_argument("--bitwise", action="store_true")
    mode.add_argument("--report", action="store_true")
    args = parser.parse_args()
    a, b = load(args.a), load(args.b)
    if sorted(a) != sorted(b):
        print(f"tensor names differ: {sorted(set(a) ^ set(b))}")
        return 1
    failures, worst, worst_name = 0, 0.0, ""
    for name in sorted(a):
        da, sa, ra, xa = a[name]
        db, sb, rb, xb = b[name]
        if (da, sa) != (db, sb):
            print(f"{name}: {da}{sa} vs {db}{sb}")
            failures += 1
            continue
        xa64, xb64 = xa.astype(np.float64), xb.astype(np.float64)
        scale = max(float(np.max(np.abs(xb64))) if xb64.size else 0.0, 1e-30)
        rel = float(np.max(np.abs(xa64 - xb64))) / scale if xa64.size else 0.0
        if rel > worst:
            worst, worst_name = rel, name
        if args.bitwise and ra != rb:
            print(f"{name}: not bitwise equal (max relative difference {rel:.3g})")
            failures += 1
        elif args.rtol is not None and not rel <= args.rtol:
            print(f"{name}: max relative difference {rel:.3g} > {args.rtol:g}")
            failures += 1
    print(f"{len(a)} tensors, largest relative difference {worst:.3g} ({worst_name or '-'}), {failures} failing")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
