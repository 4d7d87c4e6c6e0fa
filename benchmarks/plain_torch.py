#!/usr/bin/env python3
"""A strong plain PyTorch training loop of each of vaelab's default models: the baseline of benchmarks/versus.py.

    python benchmarks/plain_torch.py --model mnist --epochs 5 --data-dir DIR
    python benchmarks/plain_torch.py --model mnist --epochs 5 --validate --data-dir DIR
    python benchmarks/plain_torch.py --model cifar10 --epochs 2 --limit 4000 --validate --data-dir DIR
    python benchmarks/plain_torch.py --model fashion_mnist --epochs 2 --limit 4096 --compile none --data-dir DIR

What a performance-minded PyTorch user writes without heroics: nn.Module, the loss from logits
(BCEWithLogits summed over pixels; Fashion-MNIST: its weighted squared error), Adam 1e-3, the data already in
memory as float tensors, a batch cut each step by indexing a ``torch.randperm``, ``zero_grad(set_to_none=True)``,
no host sync per step (the epoch's loss is summed as a tensor), ``torch.inference_mode()`` for ``--validate``
(the test loss after every epoch, as vaelab's training does), PyTorch's default threads. ``--compile`` (a
torch.compile mode or ``none``) and ``--channels-last`` default per model to what measured faster
(``MODELS``; the measurement is in docs/benchmarks.md). Same layers, shapes and batch sizes as the default
models of the params modules (mnist_params.py: dense; cifar10_params.py, caltech101_92_params.py,
caltech101_128_params.py: conv; fashion_mnist_params.py: conv_bn). Only the data comes from vaelab.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vaelab.data import caltech101
from vaelab.data import datasets as data  # noqa: E402


class DenseVAE(nn.Module):  # 784-512-2-512-784
    def __init__(self):
        super().__init__()
        self.hidden, self.mu, self.log_var = nn.Linear(784, 512), nn.Linear(512, 2), nn.Linear(512, 2)
        self.dec_hidden, self.out = nn.Linear(2, 512), nn.Linear(512, 784)

    def encode(self, x):
        h = F.relu(self.hidden(x))
        return self.mu(h), self.log_var(h)

    def decode(self, z):  # logits
        return self.out(F.relu(self.dec_hidden(z)))


def conv_out_padding(size_in, size_out, kernel, stride, padding):
    """ConvTranspose2d's output_padding that turns ``size_in`` back into ``size_out``."""
    return size_out - ((size_in - 1) * stride - 2 * padding + kernel)


class ConvVAE(nn.Module):
    """The conv design of CIFAR-10 and Caltech101: four convs (the first keeping the image's channels),
    dense ``hidden``, latent ``latent``, and its mirror (transposed convs, then a conv to the channels)."""

    def __init__(self, shape, filters, kernels, strides, hidden, latent):
        super().__init__()
        channels, sizes, c_in = shape[2], [shape[0]], shape[2]
        self.convs = nn.ModuleList()
        for i, (k, s) in enumerate(zip(kernels, strides)):
            c_out = channels if i == 0 else filters
            if s == 1:
                self.convs.append(nn.Conv2d(c_in, c_out, k, padding="same"))
                sizes.append(sizes[-1])
            else:
                pad = (k - 1) // 2
                self.convs.append(nn.Conv2d(c_in, c_out, k, stride=s, padding=pad))
                sizes.append((sizes[-1] + 2 * pad - k) // s + 1)
            c_in = c_out
        self.bottom = (filters, sizes[-1], sizes[-1])
        flat = filters * sizes[-1] ** 2
        self.hidden = nn.Linear(flat, hidden)
        self.mu, self.log_var = nn.Linear(hidden, latent), nn.Linear(hidden, latent)
        self.dec_hidden, self.upsample = nn.Linear(latent, hidden), nn.Linear(hidden, flat)
        self.deconvs = nn.ModuleList()
        for i in (3, 2, 1):
            k, s = kernels[i], strides[i]
            pad = (k - 1) // 2
            self.deconvs.append(nn.ConvTranspose2d(filters, filters, k, stride=s, padding=pad,
                                                   output_padding=conv_out_padding(sizes[i + 1], sizes[i], k, s, pad)))
        self.out = nn.Conv2d(filters, channels, kernels[0], padding="same")

    def encode(self, x):
        for conv in self.convs:
            x = F.relu(conv(x))
        h = F.relu(self.hidden(x.flatten(1)))
        return self.mu(h), self.log_var(h)

    def decode(self, z):
        h = F.relu(self.upsample(F.relu(self.dec_hidden(z)))).view(-1, *self.bottom)
        for deconv in self.deconvs:
            h = F.relu(deconv(h))
        return self.out(h)  # logits


class ConvBnVAE(nn.Module):
    """The Fashion-MNIST design: three 3x3 conv-BatchNorm-ReLU (the first with stride 2, ``f`` channels, the
    others ``2f``), dense heads; the decoder dense 7x7x2f-BN-ReLU, two stride-2 transposed conv-BN-ReLU, a
    transposed conv to one channel."""

    def __init__(self, f=32, latent=3, layers=3):
        super().__init__()
        convs = [nn.Conv2d(1, f, 3, stride=2, padding=1, bias=False)]
        convs += [nn.Conv2d(f if i == 1 else 2 * f, 2 * f, 3, padding=1, bias=False) for i in range(1, layers)]
        self.encoder = nn.Sequential(*[m for c in convs for m in (c, nn.BatchNorm2d(c.out_channels), nn.ReLU())],
                                     nn.Flatten())
        self.mu, self.log_var = nn.Linear(14 * 14 * 2 * f, latent), nn.Linear(14 * 14 * 2 * f, latent)
        self.f = f
        self.dense = nn.Sequential(nn.Linear(latent, 7 * 7 * 2 * f, bias=False), nn.BatchNorm1d(7 * 7 * 2 * f),
                                   nn.ReLU())
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * f, 2 * f, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(2 * f), nn.ReLU(),
            nn.ConvTranspose2d(2 * f, f, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(f), nn.ReLU(),
            nn.ConvTranspose2d(f, 1, 3, padding=1))

    def encode(self, x):
        h = self.encoder(x)
        return self.mu(h), self.log_var(h)

    def decode(self, z):
        return torch.sigmoid(self.decoder(self.dense(z).view(-1, 2 * self.f, 7, 7)))  # a Gaussian's mean


def loss_fn(model, x, gaussian_weight=None):
    """-ELBO per image: Bernoulli cross-entropy, or (Fashion-MNIST) ``gaussian_weight`` x mean squared error."""
    mu, log_var = model.encode(x)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
    out = model.decode(z)
    if gaussian_weight is None:
        recon = F.binary_cross_entropy_with_logits(out, x, reduction="sum")
    else:
        recon = gaussian_weight * F.mse_loss(out, x, reduction="sum") / x[0].numel()
    kl = -0.5 * torch.sum(1 + log_var - mu ** 2 - log_var.exp())
    return (recon + kl) / len(x)


def as_float(x):  # MNIST and Fashion-MNIST are read as float32 in [0, 1], CIFAR-10 and Caltech101 as uint8
    return x.float() / 255 if x.dtype == torch.uint8 else x


# Each model's batch size (its params module's default) and what measured fastest on the 2-core CPU VM
# (benchmarks/torch_options.py; results/benchmarks/torch-options-2026-12-03-*.txt): torch.compile's default mode
# or none, and the channels-last memory format. Channels-last made every conv model's step 1.3-2.2x faster;
# torch.compile only Fashion-MNIST's (its batch norms), 1.63x with channels-last against 1.33x without; for
# MNIST it was 1.03x (noise) and for CIFAR-10 nothing on top of channels-last, so those stay eager.
MODELS = {
    "mnist": dict(batch=256, compile="none", channels_last=False),
    "cifar10": dict(batch=256, compile="none", channels_last=True),
    "fashion_mnist": dict(batch=256, compile="default", channels_last=True),
    "caltech101_92": dict(batch=64, compile="none", channels_last=True),
    "caltech101_128": dict(batch=32, compile="none", channels_last=True),  # not measured: as 92 px
}


def load(model: str, data_dir, limit):
    """(x_train, x_test, module, gaussian weight or None), images channels-first."""
    if model == "mnist":
        ds = data.load_mnist(data_dir, limit, download=False)
        return ds.x_train.reshape(-1, 784), ds.x_test.reshape(-1, 784), DenseVAE(), None
    if model == "fashion_mnist":
        ds, module, weight = data.load_fashion_mnist(data_dir, limit, download=False), ConvBnVAE(32, 3, 3), 5000.0
    elif model == "cifar10":
        ds, module, weight = data.load_cifar10(data_dir, limit, download=False), \
            ConvVAE((32, 32, 3), 32, (2, 2, 3, 3), (1, 2, 1, 1), 128, 16), None
    else:
        size = int(model.rsplit("_", 1)[1])
        filters, latent, hidden = (32, 32, 256) if size == 92 else (64, 64, 256)
        ds = caltech101.load(data_dir, size=size, limit=limit, progress=False)
        module, weight = ConvVAE((size, size, 3), filters, (3, 3, 3, 3), (1, 2, 2, 2), hidden, latent), None
    return ds.x_train.transpose(0, 3, 1, 2), ds.x_test.transpose(0, 3, 1, 2), module, weight


def batched(x, size):
    return [x[i:i + size] for i in range(0, len(x), size)]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=tuple(MODELS), default="mnist")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, help="default: the project's for that model (256; Caltech101 64, 32)")
    p.add_argument("--limit", type=int, help="first N training and test images")
    p.add_argument("--validate", action="store_true", help="the test loss after every epoch")
    p.add_argument("--compile", help="a torch.compile mode (default, max-autotune-no-cudagraphs, ...) or none; "
                                     "default: the model's entry of MODELS")
    p.add_argument("--channels-last", choices=("yes", "no"), help="default: the model's entry of MODELS")
    p.add_argument("--data-dir")
    args = p.parse_args()
    spec = MODELS[args.model]
    batch, mode = args.batch_size or spec["batch"], args.compile or spec["compile"]
    channels_last = spec["channels_last"] if args.channels_last is None else args.channels_last == "yes"
    torch.manual_seed(0)
    x_train, x_test, model, weight = load(args.model, args.data_dir, args.limit)
    x_train, x_test = (as_float(torch.from_numpy(np.ascontiguousarray(x))) for x in (x_train, x_test))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x_train, x_test = (x.contiguous(memory_format=torch.channels_last) for x in (x_train, x_test))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = loss_fn if mode == "none" else torch.compile(loss_fn, mode=None if mode == "default" else mode)
    started = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(x_train))
        total = torch.zeros(())
        for i in range(0, len(x_train), batch):
            x = x_train[perm[i:i + batch]]
            value = loss(model, x, weight)
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            total += value.detach() * len(x)
        line = f"epoch {epoch + 1}: loss {float(total) / len(x_train):.2f}"
        if args.validate:
            model.eval()
            with torch.inference_mode():
                test = sum(loss(model, x, weight) * len(x) for x in batched(x_test, batch))
            line += f", test loss {float(test) / len(x_test):.2f}"
        print(line, flush=True)
    print(f"trained {args.epochs} epochs in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
