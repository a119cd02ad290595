#!/usr/bin/env python3
"""The PyTorch peer of dcgan_bench, and the comparison table.

  python3 bench_torch.py [--batch 512] [--iters 50] [--warmup 10]
  python3 bench_torch.py --table OURS.txt TORCH.txt      # markdown table from both outputs

Same networks and step as dcgan_bench.cpp (framework/models/gan.h at latent 100, widths 64):
G: ConvT(100->128, k7, no bias) BN ReLU ConvT(128->64, k4 s2 p1, no bias) BN ReLU
   ConvT(64->1, k4 s2 p1) Tanh;
D: Conv(1->64, k4 s2 p1) LReLU(0.2) Conv(64->128, k4 s2 p1, no bias) BN LReLU(0.2) Conv(128->1, k7).
One step: fake = G(z); D step on real and fake.detach() with BCE-with-logits, Adam(2e-4, 0.5/0.999);
G step through D (D's parameters frozen) with BCE against ones, Adam. Forward passes under
torch.autocast(bfloat16) with f32 parameters. Time: wall clock around --iters steps after --warmup,
with torch.cuda.synchronize() before and after, as dcgan_bench does.
"""
import argparse
import re
import sys
import time


def build(torch):
    nn = torch.nn
    g = nn.Sequential(
        nn.ConvTranspose2d(100, 128, 7, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh())
    d = nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.Conv2d(128, 1, 7), nn.Flatten())
    return g, d


def bench(args):
    import torch
    import torch.nn.functional as F
    torch.manual_seed(0)
    dev = "cuda"
    g, d = build(torch)
    g, d = g.to(dev), d.to(dev)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    b = args.batch
    reals = [torch.rand(b, 1, 28, 28, device=dev) * 2 - 1 for _ in range(4)]
    noises = [torch.randn(b, 100, 1, 1, device=dev) for _ in range(4)]
    ones, zeros = torch.ones(b, 1, device=dev), torch.zeros(b, 1, device=dev)
    out = {}

    def step(i):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            fake = g(noises[i % 4])
            loss_d = F.binary_cross_entropy_with_logits(d(reals[i % 4]).float(), ones) + \
                F.binary_cross_entropy_with_logits(d(fake.detach()).float(), zeros)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        for p in d.parameters():
            p.requires_grad_(False)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss_g = F.binary_cross_entropy_with_logits(d(fake).float(), ones)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        for p in d.parameters():
            p.requires_grad_(True)
        out["g"], out["d"] = loss_g, loss_d

    for i in range(args.warmup):
        step(i)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(args.iters):
        step(args.warmup + i)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    step_ms = 1e3 * seconds / args.iters
    print(f"RESULT impl=torch dtype=bf16-autocast batch={b} step_ms={step_ms:.3f} "
          f"images_per_s={b / (step_ms / 1e3):.0f} device={torch.cuda.get_device_name()} "
          f"torch={torch.__version__} loss_g={out['g'].item():.4f} loss_d={out['d'].item():.4f}")


def parse_result(path):
    for line in open(path):
        if line.startswith("RESULT "):
            return dict(re.findall(r"(\w+)=(\S+)", line))
    sys.exit(f"bench_torch.py: no RESULT line in {path}")


def table(ours_path, torch_path):
    ours, ref = parse_result(ours_path), parse_result(torch_path)
    ratio = float(ours["images_per_s"]) / float(ref["images_per_s"])
    print(f"DCGAN training step (D + G), batch {ours['batch']}, 28x28, latent 100, widths 64, "
          f"on {ref.get('device', '?')} (torch {ref.get('torch', '?')})")
    print()
    print("| implementation | compute | step ms | images/s | ours / PyTorch |")
    print("|---|---|---|---|---|")
    print(f"| Tessera (dcgan_bench) | {ours['dtype']} | {ours['step_ms']} | {ours['images_per_s']} | {ratio:.2f}x |")
    print(f"| PyTorch eager | {ref['dtype']} | {ref['step_ms']} | {ref['images_per_s']} | 1.00x |")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--table", nargs=2, metavar=("OURS", "TORCH"))
    args = p.parse_args()
    if args.table:
        table(*args.table)
    else:
        bench(args)


if __name__ == "__main__":
    main()
