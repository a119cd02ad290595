#!/usr/bin/env python3
"""PyTorch's attention backends on the attention_bench shapes, and the comparison table.

  python3 bench_torch.py [--iters N] [--warmup N]      # RESULT lines for flash and cudnn
  python3 bench_torch.py --table OURS.txt TORCH.txt    # one table from both programs' output

Times torch.nn.functional.scaled_dot_product_attention restricted (torch.nn.attention.sdpa_kernel)
to the FLASH_ATTENTION and CUDNN_ATTENTION backends, bf16, [B, H, S, D] inputs, with
torch.cuda.Event around each call; median of --iters runs after --warmup, rotating over
enough input sets to exceed L2. Same FLOP counts and RESULT format as attention_bench:
forward 4*B*H*S*S*D (halved when causal), forward+backward 3.5 times that. For S_q == S_k,
PyTorch's top-left causal mask equals Tessera's bottom-right one.
"""
import argparse
import math
import statistics
import sys

SHAPES = [(8, 16, 2048, 64, True), (4, 16, 4096, 64, True), (4, 16, 4096, 128, True),
          (16, 16, 1024, 64, False), (2, 16, 8192, 128, True)]


def forward_flops(b, h, s, d, causal):
    f = 4.0 * b * h * s * s * d
    return f / 2 if causal else f


def bench_torch(iters, warmup):
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)]
    for (b, h, s, d, causal) in SHAPES:
        set_bytes = 4 * b * h * s * d * 2
        sets = min(8, max(2, math.ceil(256e6 / set_bytes)))
        gen = torch.Generator(device="cuda").manual_seed(1234)
        inputs = []
        for _ in range(sets):
            q, k, v, g = (torch.randn(b, h, s, d, device="cuda", dtype=torch.bfloat16, generator=gen) for _ in range(4))
            inputs.append((q.requires_grad_(), k.requires_grad_(), v.requires_grad_(), g))
        for name, backend in backends:
            for pass_name in ("fwd", "fwd_bwd"):
                def run(i):
                    q, k, v, g = inputs[i % sets]
                    with sdpa_kernel(backend):
                        if pass_name == "fwd":
                            with torch.no_grad():
                                F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                        else:
                            out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                            torch.autograd.grad(out, (q, k, v), g)
                try:
                    times = []
                    for i in range(warmup + iters):
                        start = torch.cuda.Event(enable_timing=True)
                        stop = torch.cuda.Event(enable_timing=True)
                        start.record()
                        run(i)
                        stop.record()
                        stop.synchronize()
                        if i >= warmup:
                            times.append(start.elapsed_time(stop))
                    ms = statistics.median(times)
                    flops = forward_flops(b, h, s, d, causal) * (1.0 if pass_name == "fwd" else 3.5)
                    print(f"RESULT impl={name} pass={pass_name} B={b} H={h} S={s} D={d} causal={int(causal)} "
                          f"ms={ms:.4f} tflops={flops / (ms * 1e-3) / 1e12:.1f}", flush=True)
                except RuntimeError as e:  # backend unavailable for this shape
                    print(f"# {name} {pass_name} B={b} H={h} S={s} D={d} causal={int(causal)}: "
                          f"{str(e).splitlines()[0]}", flush=True)


def read_results(paths):
    results = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                if not line.startswith("RESULT "):
                    continue
                fields = dict(item.split("=", 1) for item in line.split()[1:])
                key = (fields["B"], fields["H"], fields["S"], fields["D"], fields["causal"])
                results[(fields["impl"], fields["pass"], key)] = float(fields["tflops"])
    return results


def table(paths):
    results = read_results(paths)
    shapes = sorted({key for (_, _, key) in results}, key=lambda k: tuple(int(x) for x in k))

    def cell(value):
        return f"{value:7.1f}" if value is not None else "    n/a"

    def ratio(a, b):
        return f"{a / b:6.2f}" if a is not None and b else "   n/a"

    for pass_name, title in (("fwd", "forward"), ("fwd_bwd", "forward+backward")):
        print(f"\n{title} (TFLOP/s, bf16)")
        print("shape (B,H,S,D,causal)   |    ours |   flash |   cudnn | ours/flash | ours/cudnn")
        print("-" * 84)
        for key in shapes:
            ours = results.get(("tessera", pass_name, key))
            flash = results.get(("flash", pass_name, key))
            cudnn = results.get(("cudnn", pass_name, key))
            label = "(" + ",".join(key) + ")"
            print(f"{label:24} | {cell(ours)} | {cell(flash)} | {cell(cudnn)} |     {ratio(ours, flash)} |     "
                  f"{ratio(ours, cudnn)}")
    det = [(key, results.get(("tessera", "fwd_bwd_det", key))) for key in shapes]
    if any(value is not None for _, value in det):
        print("\nforward+deterministic backward (TFLOP/s, ours)")
        for key, value in det:
            print(f"{'(' + ','.join(key) + ')':24} | {cell(value)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--table", nargs="+", metavar="RESULTS", help="print the table from RESULT files")
    args = parser.parse_args()
    if args.table:
        table(args.table)
    else:
        bench_torch(args.iters, args.warmup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
