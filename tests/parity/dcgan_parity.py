"""PyTorch parity, Python side: repeats dcgan_parity.cpp in torch and compares.

Usage: /usr/bin/python3 dcgan_parity.py OUT_DIR  (after `dcgan_parity OUT_DIR`).
Loads OUT_DIR/init.safetensors (weights of G, D and the critic C, and the inputs), rebuilds
the three torch.nn.Sequential models, and checks against OUT_DIR/result.safetensors:
generator output, discriminator logits, DCGAN loss, every parameter gradient, the batch-norm
running statistics (and num_batches_tracked) after the training-mode forwards, the generator
output in eval mode, and for the WGAN-GP critic the gradient penalty (torch.autograd.grad with
create_graph=True), its parameter gradients and those of the full critic loss. Tolerance:
1e-5 relative to the largest magnitude of each torch tensor (f32).
"""
import sys

import torch

from mlp_parity import read_safetensors, rel_error

TOLERANCE = 1e-5


def generator():
    return torch.nn.Sequential(
        torch.nn.ConvTranspose2d(64, 32, 7, bias=False), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
        torch.nn.ConvTranspose2d(32, 16, 4, 2, 1, bias=False), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.ConvTranspose2d(16, 1, 4, 2, 1), torch.nn.Tanh())


def discriminator():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 4, 2, 1), torch.nn.LeakyReLU(0.2),
        torch.nn.Conv2d(16, 32, 4, 2, 1, bias=False), torch.nn.BatchNorm2d(32), torch.nn.LeakyReLU(0.2),
        torch.nn.Conv2d(32, 1, 7), torch.nn.Flatten())


def critic():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 4, 2, 1), torch.nn.LeakyReLU(0.2),
        torch.nn.Conv2d(8, 16, 4, 2, 1), torch.nn.LeakyReLU(0.2),
        torch.nn.Flatten(), torch.nn.Linear(16 * 7 * 7, 1))


def sub_state(tensors, prefix):
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def main(out_dir):
    init, _ = read_safetensors(out_dir + "/init.safetensors")
    result, _ = read_safetensors(out_dir + "/result.safetensors")
    g, d, c = generator(), discriminator(), critic()
    g.load_state_dict(sub_state(init, "G."), strict=True)
    d.load_state_dict(sub_state(init, "D."), strict=True)
    c.load_state_dict(sub_state(init, "C."), strict=True)
    z, real, mix = init["z"], init["real"], init["mix"]

    failures = []

    def check(what, ours, ref):
        err = rel_error(ours, ref)
        status = "ok" if err <= TOLERANCE else "FAIL"
        print(f"  {what:<36} relative error {err:.2e} (tolerance {TOLERANCE:.0e}) {status}")
        if err > TOLERANCE:
            failures.append(what)

    print("DCGAN (training mode):")
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    fake = g(z)
    d_real, d_fake = d(real), d(fake)
    loss = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
    loss.backward()
    check("fake", result["fake"], fake.detach())
    check("d_real", result["d_real"], d_real.detach())
    check("d_fake", result["d_fake"], d_fake.detach())
    check("loss", result["loss"], loss.detach())
    for prefix, model in (("G.", g), ("D.", d)):
        for name, p in model.named_parameters():
            check("grad." + prefix + name, result["grad." + prefix + name], p.grad)
        for name, b in model.named_buffers():
            key = "after." + prefix + name
            if name.endswith("num_batches_tracked"):
                if result[key].item() != b.item():
                    print(f"  {key:<36} {result[key].item()} != torch {b.item()} FAIL")
                    failures.append(key)
                else:
                    print(f"  {key:<36} {b.item()} ok")
            else:
                check(key, result[key], b)
    g.eval()
    with torch.no_grad():
        check("fake_eval", result["fake_eval"], g(z))

    print("WGAN-GP critic step:")
    fake_detached = fake.detach()
    x_hat = (mix * real + (1 - mix) * fake_detached).requires_grad_(True)
    score = c(x_hat)
    (dx,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    penalty = ((dx.reshape(dx.shape[0], -1).norm(2, dim=1) - 1) ** 2).mean()
    params = [p for _, p in c.named_parameters()]
    gp_grads = torch.autograd.grad(penalty, params, retain_graph=True, allow_unused=True)
    gp_grads = [torch.zeros_like(p) if gr is None else gr for p, gr in zip(params, gp_grads)]
    critic_loss = c(fake_detached).mean() - c(real).mean() + 10 * penalty
    critic_loss.backward()
    check("gp", result["gp"], penalty.detach())
    check("critic_loss", result["critic_loss"], critic_loss.detach())
    for (name, p), gp_grad in zip(c.named_parameters(), gp_grads):
        check("gp_grad.C." + name, result["gp_grad.C." + name], gp_grad)
        check("grad.C." + name, result["grad.C." + name], p.grad)

    if failures:
        print("dcgan_parity.py: MISMATCH in " + ", ".join(failures))
        return 1
    print("dcgan_parity.py: tessera matches PyTorch " + torch.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
