#!/usr/bin/env python3
"""The PyTorch peer of gpt_mtp_bench (eager and torch.compile), and the comparison table.

  python3 bench_torch.py [--config examples/gpt_mtp/small.toml] [--iters N] [--warmup N]
  python3 bench_torch.py --table OURS.txt TORCH.txt     # markdown table from both outputs

The model is Tessera's GPT-MTP written in torch (same shapes, same parameter names): pre-norm
blocks (F.rms_norm or F.layer_norm), rotary positions by rotate-half (or learned positions),
fused qkv, F.scaled_dot_product_attention(is_causal=True) with grouped-query heads, GELU(tanh)
or SwiGLU, tied or untied head, DeepSeek MTP modules or Medusa heads; loss CE_main +
lambda/D * sum CE_k. One training step = zero_grad, forward under torch.autocast(bfloat16)
with f32 parameters, backward, clip_grad_norm_, fused AdamW (decay on matrices only) — the
same step as the gpt_mtp job. "compile" wraps the forward and the loss in torch.compile.
Times: torch.cuda.Event around each step, median of --iters after --warmup (compile warm-up
includes compilation). FLOPs per token as in gpt_mtp_bench.cpp:
6 * (matrix parameters, shared head once per use) + 7 * S * dim per attention layer.
"""
import argparse
import math
import statistics
import sys

PEAK_TFLOPS = 989.0  # H100/H200 SXM dense bf16


def read_config(path):
    import tomllib
    with open(path, "rb") as f:
        c = tomllib.load(f)
    m, t = c["model"], c.get("train", {})
    o = {
        "vocab_size": m["vocab_size"], "context": m.get("context", 256), "n_layers": m.get("n_layers", 4),
        "dim": m.get("dim", 256), "n_heads": m.get("n_heads", 4), "n_kv_heads": m.get("n_kv_heads", 0),
        "norm": m.get("norm", "rmsnorm"), "norm_eps": m.get("norm_eps", 1e-5), "positions": m.get("positions", "rope"),
        "rope_theta": m.get("rope_theta", 10000.0), "mlp": m.get("mlp", "gelu"), "mlp_hidden": m.get("mlp_hidden", 0),
        "tie_embeddings": m.get("tie_embeddings", True), "dropout": m.get("dropout", 0.0),
        "mtp_kind": m.get("mtp_kind", "deepseek"), "mtp_lambda": m.get("mtp_lambda", 0.3),
        "mtp_shared_head": m.get("mtp_shared_head", True),
    }
    o["mtp_depth"] = m.get("mtp_depth", 0 if o["mtp_kind"] == "none" else 1)
    o["depth"] = 0 if o["mtp_kind"] == "none" else o["mtp_depth"]
    optim = c.get("optim", {})
    run = {"batch": t.get("batch_size", 16), "seq": t.get("seq_len", o["context"]), "clip": t.get("grad_clip", 1.0),
           "lr": optim.get("lr", 3e-4), "wd": optim.get("weight_decay", 0.1),
           "betas": tuple(optim.get("betas", [0.9, 0.95])), "eps": optim.get("eps", 1e-8)}
    return o, run


def build_model(o):
    import torch
    import torch.nn.functional as F

    class Norm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(o["dim"]))
            self.bias = torch.nn.Parameter(torch.zeros(o["dim"])) if o["norm"] == "layernorm" else None

        def forward(self, x):
            if self.bias is not None:
                return F.layer_norm(x, (o["dim"],), self.weight.to(x.dtype), self.bias.to(x.dtype), o["norm_eps"])
            return F.rms_norm(x, (o["dim"],), self.weight.to(x.dtype), o["norm_eps"])

    h, kv = o["n_heads"], o["n_kv_heads"] or o["n_heads"]
    d = o["dim"] // h

    def rotate(x, cos, sin):  # [B, T, H, D]
        x1, x2 = x[..., : d // 2], x[..., d // 2:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)

    class Attention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = torch.nn.Linear(o["dim"], (h + 2 * kv) * d, bias=False)
            self.proj = torch.nn.Linear(h * d, o["dim"], bias=False)

        def forward(self, x, rope):
            b, t, _ = x.shape
            q, k, v = self.qkv(x).split([h * d, kv * d, kv * d], dim=-1)
            q, k, v = q.view(b, t, h, d), k.view(b, t, kv, d), v.view(b, t, kv, d)
            if rope is not None:
                cos, sin = rope[0][:t, None, :], rope[1][:t, None, :]
                q, k = rotate(q, cos, sin), rotate(k, cos, sin)
            y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                               is_causal=True, enable_gqa=kv != h)
            return self.proj(y.transpose(1, 2).reshape(b, t, h * d))

    swiglu = o["mlp"] == "swiglu"
    hidden = o["mlp_hidden"] or ((8 * o["dim"] // 3 + 63) // 64 * 64 if swiglu else 4 * o["dim"])

    class Mlp(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(o["dim"], 2 * hidden if swiglu else hidden, bias=False)
            self.proj = torch.nn.Linear(hidden, o["dim"], bias=False)

        def forward(self, x):
            u = self.fc(x)
            if swiglu:
                gate, up = u.split(hidden, dim=-1)
                return self.proj(F.silu(gate) * up)
            return self.proj(F.gelu(u, approximate="tanh"))

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1, self.attn, self.norm2, self.mlp = Norm(), Attention(), Norm(), Mlp()
            self.drop = torch.nn.Dropout(o["dropout"])

        def forward(self, x, rope):
            x = x + self.drop(self.attn(self.norm1(x), rope))
            return x + self.drop(self.mlp(self.norm2(x)))

    class MtpModule(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm_h, self.norm_e = Norm(), Norm()
            self.proj = torch.nn.Linear(2 * o["dim"], o["dim"], bias=False)
            self.block, self.norm_out = Block(), Norm()

    class MedusaHead(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(o["dim"], o["dim"], bias=True)
            self.head = None if o["mtp_shared_head"] else torch.nn.Linear(o["dim"], o["vocab_size"], bias=False)

    class GptMtp(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.tok_emb = torch.nn.Embedding(o["vocab_size"], o["dim"])
            self.pos_emb = torch.nn.Embedding(o["context"], o["dim"]) if o["positions"] == "learned" else None
            self.blocks = torch.nn.ModuleList([Block() for _ in range(o["n_layers"])])
            self.norm_f = Norm()
            self.lm_head = None if o["tie_embeddings"] else torch.nn.Linear(o["dim"], o["vocab_size"], bias=False)
            self.mtp = torch.nn.ModuleList([MtpModule() for _ in range(o["depth"])]) \
                if o["mtp_kind"] == "deepseek" else None
            self.medusa = torch.nn.ModuleList([MedusaHead() for _ in range(o["depth"])]) \
                if o["mtp_kind"] == "medusa" else None
            self.drop = torch.nn.Dropout(o["dropout"])
            if o["positions"] == "rope":
                inv = o["rope_theta"] ** (-2.0 * torch.arange(d // 2, dtype=torch.float64) / d)
                angles = torch.arange(o["context"], dtype=torch.float64)[:, None] * inv[None, :]
                self.register_buffer("cos", angles.cos().float(), persistent=False)
                self.register_buffer("sin", angles.sin().float(), persistent=False)
            else:
                self.cos = self.sin = None
            for name, p in self.named_parameters():
                if "norm" in name:
                    continue
                std = 0.02 / math.sqrt(2 * (o["n_layers"] + o["depth"] * (o["mtp_kind"] == "deepseek"))) \
                    if name.endswith("proj.weight") and ("attn" in name or "mlp" in name) else 0.02
                torch.nn.init.normal_(p, 0.0, std) if "medusa" not in name else torch.nn.init.zeros_(p)

        def head(self, x):
            return self.lm_head(x) if self.lm_head is not None else x @ self.tok_emb.weight.to(x.dtype).t()

        def forward(self, window):
            t = window.shape[1] - 1 - o["depth"]
            rope = (self.cos, self.sin) if self.cos is not None else None
            x = self.tok_emb(window[:, :t])
            if self.pos_emb is not None:
                x = x + self.pos_emb.weight[:t]
            x = self.drop(x)
            for block in self.blocks:
                x = block(x, rope)
            logits, mtp = self.head(self.norm_f(x)), []
            if self.mtp is not None:
                hk = x
                for k, m in enumerate(self.mtp, start=1):
                    e = self.tok_emb(window[:, k:k + t])
                    hk = m.block(m.proj(torch.cat([m.norm_h(hk), m.norm_e(e.to(hk.dtype))], dim=-1)), rope)
                    mtp.append(self.head(m.norm_out(hk)))
            if self.medusa is not None:
                z = self.norm_f(x)
                for m in self.medusa:
                    r = z + F.silu(m.fc(z))
                    mtp.append(m.head(r) if m.head is not None else self.head(r))
            return logits, mtp

    return GptMtp()


def flops_per_token(o, model, seq):
    head = o["vocab_size"] * o["dim"]
    matrix = sum(p.numel() for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith("pos_emb"))
    shared_by_depths = o["mtp_kind"] == "deepseek" or (o["mtp_kind"] == "medusa" and o["mtp_shared_head"])
    uses = 1 + (o["depth"] if shared_by_depths else 0)
    matmul = matrix - head - (0 if o["tie_embeddings"] else head) + head * uses
    attention_layers = o["n_layers"] + (o["depth"] if o["mtp_kind"] == "deepseek" else 0)
    return 6.0 * matmul + 7.0 * seq * o["dim"] * attention_layers


def bench(config, iters, warmup):
    import torch
    import torch.nn.functional as F

    o, run = read_config(config)
    torch.backends.cuda.matmul.allow_tf32 = False
    for impl in ("torch_eager", "torch_compile"):
        torch.manual_seed(0)
        model = build_model(o).cuda().train()
        decay = [p for p in model.parameters() if p.dim() >= 2]
        no_decay = [p for p in model.parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": run["wd"]},
                                 {"params": no_decay, "weight_decay": 0.0}],
                                lr=run["lr"], betas=run["betas"], eps=run["eps"], fused=True)
        t, depth, lam = run["seq"], o["depth"], o["mtp_lambda"]

        def loss_fn(window):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits, mtp = model(window)
                vocab = logits.shape[-1]
                loss = F.cross_entropy(logits.reshape(-1, vocab).float(), window[:, 1:t + 1].reshape(-1))
                if mtp:
                    extra = sum(F.cross_entropy(l.reshape(-1, vocab).float(), window[:, k + 1:k + 1 + t].reshape(-1))
                                for k, l in enumerate(mtp, start=1))
                    loss = loss + extra * (lam / depth)
            return loss

        step_loss = torch.compile(loss_fn) if impl == "torch_compile" else loss_fn
        gen = torch.Generator(device="cuda").manual_seed(1)
        batches = [torch.randint(0, o["vocab_size"], (run["batch"], t + 1 + depth), device="cuda", generator=gen)
                   for _ in range(8)]

        def step(i):
            opt.zero_grad(set_to_none=True)
            loss = step_loss(batches[i % len(batches)])
            loss.backward()
            if run["clip"] > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), run["clip"])
            opt.step()
            return loss

        loss = None
        for i in range(warmup):
            loss = step(i)
        torch.cuda.synchronize()
        warm_loss = loss.item() if loss is not None else 0.0
        times = []
        for i in range(iters):
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            loss = step(warmup + i)
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop))
        ms = statistics.median(times)
        tokens = run["batch"] * t
        params = sum(p.numel() for p in model.parameters())
        print(f"RESULT impl={impl} step_ms={ms:.2f} tokens_per_s={tokens / (ms / 1e3):.0f} "
              f"flops_per_token={flops_per_token(o, model, t):.4e} params={params} batch={run['batch']} seq={t} "
              f"loss_warm={warm_loss:.4f} loss_last={loss.item():.4f} "
              f"device_mem_used_gb={torch.cuda.max_memory_allocated() / 1e9:.1f} "
              f"min_ms={min(times):.2f} max_ms={max(times):.2f} torch={torch.__version__}", flush=True)
        del model, opt, batches
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def parse_results(path):
    rows = {}
    with open(path) as f:
        for line in f:
            if not line.startswith("RESULT "):
                continue
            fields = dict(item.split("=", 1) for item in line.split()[1:])
            rows[fields["impl"]] = fields
    return rows


def table(ours_path, torch_path):
    rows = {**parse_results(ours_path), **parse_results(torch_path)}
    order = [k for k in ("tessera", "torch_eager", "torch_compile") if k in rows]
    if not order:
        print("no RESULT lines found", file=sys.stderr)
        return 1
    first = rows[order[0]]
    print(f"GPT-MTP training step at `examples/gpt_mtp/small.toml` shapes: batch {first['batch']} x {first['seq']} "
          f"tokens, {int(first['params']) / 1e6:.1f}M parameters, bf16 compute with f32 master weights, AdamW + "
          f"clipping. Median step time (CUDA events) after warm-up. Model FLOPs per token = 6 x (matrix parameters, "
          f"the shared output head once per use) + 7 x S x dim per attention layer (causal forward 2 S dim, backward "
          f"2.5x) = {float(first['flops_per_token']):.3e}; MFU against {PEAK_TFLOPS:.0f} TFLOP/s dense bf16.")
    print()
    print("| implementation | step ms | tokens/s | model TFLOP/s | MFU | vs torch eager | vs torch.compile |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for impl in order:
        r = rows[impl]
        tps = float(r["tokens_per_s"])
        tflops = tps * float(r["flops_per_token"]) / 1e12
        ratio = lambda peer: f"{tps / float(rows[peer]['tokens_per_s']):.2f}x" if peer in rows else "-"
        print(f"| {impl} | {float(r['step_ms']):.1f} | {tps:,.0f} | {tflops:.1f} | {100 * tflops / PEAK_TFLOPS:.1f}% "
              f"| {ratio('torch_eager')} | {ratio('torch_compile')} |")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="examples/gpt_mtp/small.toml")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--table", nargs=2, metavar=("OURS", "TORCH"))
    a = p.parse_args()
    if a.table:
        return table(*a.table)
    bench(a.config, a.iters, a.warmup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
