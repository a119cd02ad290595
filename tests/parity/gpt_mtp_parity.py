"""PyTorch parity, Python side: the GPT-MTP model written in torch, checked against Tessera.

Usage: /usr/bin/python3 gpt_mtp_parity.py OUT_DIR  (after `gpt_mtp_parity OUT_DIR`).
For each configuration NAME in OUT_DIR (NAME.init.safetensors + NAME.result.safetensors): builds
the model described in the file's metadata with plain torch modules (PyTorch 1.13 has no
scaled_dot_product_attention, so attention is softmax(q k^T / sqrt(d) + causal mask) v), loads
Tessera's initial weights by name (strict), runs the same 30 AdamW steps on the same windows and
checks: the first step's losses (total, main and each MTP depth) to 1e-5 relative and the loss
of every step to 1e-3 relative. Reading safetensors needs no package: the format is an 8-byte
little-endian header length, a JSON header and the raw data.
"""
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


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
        array = np.frombuffer(data[begin:end], dtype=DTYPES[info["dtype"]])
        tensors[name] = torch.from_numpy(array.reshape(info["shape"]).copy())
    return tensors, meta


class Norm(torch.nn.Module):
    def __init__(self, kind, dim, eps):
        super().__init__()
        self.kind, self.eps = kind, eps
        self.weight = torch.nn.Parameter(torch.ones(dim))
        if kind == "layernorm":
            self.bias = torch.nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        if self.kind == "layernorm":
            return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(positions, head_dim, theta):
    # Computed in float64 and rounded once, as Tessera's rope_tables does.
    half = head_dim // 2
    inv = theta ** (-2.0 * torch.arange(half, dtype=torch.float64) / head_dim)
    angles = torch.arange(positions, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(angles).float(), torch.sin(angles).float()


def rotate(x, cos, sin):  # x [B, T, H, D], cos/sin [T, D/2]
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


class Attention(torch.nn.Module):
    def __init__(self, o):
        super().__init__()
        self.h, self.kv = o["n_heads"], o["n_kv_heads"] or o["n_heads"]
        self.d = o["dim"] // self.h
        self.qkv = torch.nn.Linear(o["dim"], (self.h + 2 * self.kv) * self.d, bias=False)
        self.proj = torch.nn.Linear(self.h * self.d, o["dim"], bias=False)

    def forward(self, x, rope):
        b, t, _ = x.shape
        q, k, v = self.qkv(x).split([self.h * self.d, self.kv * self.d, self.kv * self.d], dim=-1)
        q, k, v = q.view(b, t, self.h, self.d), k.view(b, t, self.kv, self.d), v.view(b, t, self.kv, self.d)
        if rope is not None:
            q, k = rotate(q, rope[0][:t], rope[1][:t]), rotate(k, rope[0][:t], rope[1][:t])
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        k = k.repeat_interleave(self.h // self.kv, dim=1)
        v = v.repeat_interleave(self.h // self.kv, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d)
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        y = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, self.h * self.d))


class Mlp(torch.nn.Module):
    def __init__(self, o):
        super().__init__()
        self.swiglu = o["mlp"] == "swiglu"
        hidden = o["mlp_hidden"] or ((8 * o["dim"] // 3 + 63) // 64 * 64 if self.swiglu else 4 * o["dim"])
        self.hidden = hidden
        self.fc = torch.nn.Linear(o["dim"], 2 * hidden if self.swiglu else hidden, bias=False)
        self.proj = torch.nn.Linear(hidden, o["dim"], bias=False)

    def forward(self, x):
        u = self.fc(x)
        if self.swiglu:
            gate, up = u.split(self.hidden, dim=-1)
            return self.proj(F.silu(gate) * up)
        return self.proj(F.gelu(u, approximate="tanh"))


class Block(torch.nn.Module):
    def __init__(self, o):
        super().__init__()
        self.norm1 = Norm(o["norm"], o["dim"], o["norm_eps"])
        self.attn = Attention(o)
        self.norm2 = Norm(o["norm"], o["dim"], o["norm_eps"])
        self.mlp = Mlp(o)

    def forward(self, x, rope):
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


class MtpModule(torch.nn.Module):
    def __init__(self, o):
        super().__init__()
        self.norm_h = Norm(o["norm"], o["dim"], o["norm_eps"])
        self.norm_e = Norm(o["norm"], o["dim"], o["norm_eps"])
        self.proj = torch.nn.Linear(2 * o["dim"], o["dim"], bias=False)
        self.block = Block(o)
        self.norm_out = Norm(o["norm"], o["dim"], o["norm_eps"])


class MedusaHead(torch.nn.Module):
    def __init__(self, o):
        super().__init__()
        self.fc = torch.nn.Linear(o["dim"], o["dim"], bias=True)
        if not o["mtp_shared_head"]:
            self.head = torch.nn.Linear(o["dim"], o["vocab_size"], bias=False)


class GptMtp(torch.nn.Module):
    def __init__(self, o):
        super().__init__()
        self.o = o
        self.tok_emb = torch.nn.Embedding(o["vocab_size"], o["dim"])
        if o["positions"] == "learned":
            self.pos_emb = torch.nn.Embedding(o["context"], o["dim"])
        self.blocks = torch.nn.ModuleList([Block(o) for _ in range(o["n_layers"])])
        self.norm_f = Norm(o["norm"], o["dim"], o["norm_eps"])
        if not o["tie_embeddings"]:
            self.lm_head = torch.nn.Linear(o["dim"], o["vocab_size"], bias=False)
        depth = 0 if o["mtp_kind"] == "none" else o["mtp_depth"]
        if o["mtp_kind"] == "deepseek":
            self.mtp = torch.nn.ModuleList([MtpModule(o) for _ in range(depth)])
        elif o["mtp_kind"] == "medusa":
            self.medusa = torch.nn.ModuleList([MedusaHead(o) for _ in range(depth)])
        self.depth = depth
        self.rope = rope_tables(o["context"], o["dim"] // o["n_heads"], o["rope_theta"]) \
            if o["positions"] == "rope" else None

    def head(self, x):
        return self.lm_head(x) if hasattr(self, "lm_head") else x @ self.tok_emb.weight.t()

    def forward(self, window):
        t = window.shape[1] - 1 - self.depth
        x = self.tok_emb(window[:, :t])
        if hasattr(self, "pos_emb"):
            x = x + self.pos_emb.weight[:t]
        for block in self.blocks:
            x = block(x, self.rope)
        logits, mtp = self.head(self.norm_f(x)), []
        if self.o["mtp_kind"] == "deepseek":
            h = x
            for k, m in enumerate(self.mtp, start=1):
                e = self.tok_emb(window[:, k:k + t])
                h = m.block(m.proj(torch.cat([m.norm_h(h), m.norm_e(e)], dim=-1)), self.rope)
                mtp.append(self.head(m.norm_out(h)))
        elif self.o["mtp_kind"] == "medusa":
            z = self.norm_f(x)
            for m in self.medusa:
                r = z + F.silu(m.fc(z))
                mtp.append(m.head(r) if hasattr(m, "head") else self.head(r))
        return logits, mtp


def losses_of(model, window, lam):
    logits, mtp = model(window)
    t = logits.shape[1]
    vocab = logits.shape[-1]
    main = F.cross_entropy(logits.reshape(-1, vocab), window[:, 1:t + 1].reshape(-1))
    per_depth = [F.cross_entropy(l.reshape(-1, vocab), window[:, k + 1:k + 1 + t].reshape(-1))
                 for k, l in enumerate(mtp, start=1)]
    total = main + sum(per_depth) * (lam / len(per_depth)) if per_depth else main
    return total, main, per_depth


def rel(ours, ref):
    return abs(ours - ref) / max(abs(ref), 1e-30)


def check_config(out_dir, name):
    init, meta = read_safetensors(f"{out_dir}/{name}.init.safetensors")
    result, _ = read_safetensors(f"{out_dir}/{name}.result.safetensors")
    o = json.loads(meta["model"])
    steps, lr = int(meta["steps"]), float(meta["lr"])
    wd, clip = float(meta["weight_decay"]), float(meta["clip"])
    windows = init.pop("windows")
    model = GptMtp(o)
    model.load_state_dict(init, strict=True)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8)
    failures = []

    def check(what, ours, ref, tol):
        err = rel(ours, ref)
        status = "ok" if err <= tol else "FAIL"
        print(f"  [{name}] {what:<22} tessera {ours:.7f} torch {ref:.7f} relative error {err:.1e} "
              f"(tolerance {tol:.0e}) {status}")
        if err > tol:
            failures.append(f"{name}: {what}")

    losses = []
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        total, main, per_depth = losses_of(model, windows[step], o["mtp_lambda"])
        total.backward()
        losses.append(total.item())
        if step == 0:
            check("first step total", result["first.total"].item(), total.item(), 1e-5)
            check("first step main", result["first.main"].item(), main.item(), 1e-5)
            for k, ce in enumerate(per_depth, start=1):
                check(f"first step mtp depth {k}", result["first.mtp"][k - 1].item(), ce.item(), 1e-5)
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
    worst = max(rel(result["losses"][i].item(), losses[i]) for i in range(steps))
    check(f"loss after {steps} steps", result["losses"][-1].item(), losses[-1], 1e-3)
    print(f"  [{name}] largest relative loss difference over all {steps} steps: {worst:.1e}")
    return failures


def main(out_dir):
    torch.manual_seed(0)
    failures = check_config(out_dir, "deepseek") + check_config(out_dir, "medusa")
    if failures:
        print("gpt_mtp_parity.py: MISMATCH in " + ", ".join(failures))
        return 1
    print("gpt_mtp_parity.py: tessera matches PyTorch " + torch.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
