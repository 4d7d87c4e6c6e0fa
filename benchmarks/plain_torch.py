#!/usr/bin/env python3
"""A plain PyTorch training loop of vaelab's MNIST and CIFAR-10 VAEs: the baseline of benchmarks/versus.py.

    python benchmarks/plain_torch.py --model mnist --epochs 5 --data-dir DIR
    python benchmarks/plain_torch.py --model cifar10 --epochs 2 --limit 6000 --validate --data-dir DIR

Written the way a PyTorch user writes it: nn.Module, sigmoid output with F.binary_cross_entropy summed over
pixels, Adam 1e-3, a shuffled batch cut by indexing each step (measured faster than a DataLoader over a
TensorDataset, so the stricter baseline), PyTorch's default threads. Same layers and shapes as
the dense and conv architectures of vaelab (mnist_params.py, cifar10_params.py); ``--validate``
also computes the test loss after every epoch, as vaelab's training does. Only the data comes from vaelab.
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
from vaelab import data  # noqa: E402


class DenseVAE(nn.Module):  # 784-512-2-512-784
    def __init__(self):
        super().__init__()
        self.hidden, self.mu, self.log_var = nn.Linear(784, 512), nn.Linear(512, 2), nn.Linear(512, 2)
        self.dec_hidden, self.out = nn.Linear(2, 512), nn.Linear(512, 784)

    def encode(self, x):
        h = F.relu(self.hidden(x))
        return self.mu(h), self.log_var(h)

    def decode(self, z):
        return torch.sigmoid(self.out(F.relu(self.dec_hidden(z))))


class ConvVAE(nn.Module):  # the CIFAR-10 model: 4 convs, dense 128, latent 16, and its mirror
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(3, 3, 2, padding="same"), nn.Conv2d(3, 32, 2, stride=2),
                                    nn.Conv2d(32, 32, 3, padding="same"), nn.Conv2d(32, 32, 3, padding="same")])
        self.hidden, self.mu, self.log_var = nn.Linear(32 * 16 * 16, 128), nn.Linear(128, 16), nn.Linear(128, 16)
        self.dec_hidden, self.upsample = nn.Linear(16, 128), nn.Linear(128, 32 * 16 * 16)
        self.deconvs = nn.ModuleList([nn.ConvTranspose2d(32, 32, 3, padding=1),
                                      nn.ConvTranspose2d(32, 32, 3, padding=1),
                                      nn.ConvTranspose2d(32, 32, 2, stride=2)])
        self.out = nn.Conv2d(32, 3, 2, padding="same")

    def encode(self, x):
        for conv in self.convs:
            x = F.relu(conv(x))
        h = F.relu(self.hidden(x.flatten(1)))
        return self.mu(h), self.log_var(h)

    def decode(self, z):
        h = F.relu(self.upsample(F.relu(self.dec_hidden(z)))).view(-1, 32, 16, 16)
        for deconv in self.deconvs:
            h = F.relu(deconv(h))
        return torch.sigmoid(self.out(h))


def loss_fn(model, x):
    mu, log_var = model.encode(x)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
    bce = F.binary_cross_entropy(model.decode(z), x, reduction="sum")
    kl = -0.5 * torch.sum(1 + log_var - mu ** 2 - log_var.exp())
    return (bce + kl) / len(x)


def as_float(x):  # MNIST is read as float32 in [0, 1], CIFAR-10 as uint8
    return x.float() / 255 if x.dtype == torch.uint8 else x


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("mnist", "cifar10"), default="mnist")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--limit", type=int, help="first N training and test images")
    p.add_argument("--validate", action="store_true", help="the test loss after every epoch")
    p.add_argument("--data-dir")
    args = p.parse_args()
    torch.manual_seed(0)
    if args.model == "mnist":
        ds = data.load_mnist(args.data_dir, args.limit, download=False)
        x_train, x_test, model = ds.x_train.reshape(-1, 784), ds.x_test.reshape(-1, 784), DenseVAE()
    else:
        ds = data.load_cifar10(args.data_dir, args.limit, download=False)
        x_train, x_test, model = ds.x_train.transpose(0, 3, 1, 2), ds.x_test.transpose(0, 3, 1, 2), ConvVAE()
    x_train, x_test = torch.from_numpy(np.ascontiguousarray(x_train)), torch.from_numpy(np.ascontiguousarray(x_test))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    started = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(x_train))
        total = 0.0
        for i in range(0, len(x_train), args.batch_size):
            x = as_float(x_train[perm[i:i + args.batch_size]])
            loss = loss_fn(model, x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(x)
        line = f"epoch {epoch + 1}: loss {total / len(x_train):.2f}"
        if args.validate:
            model.eval()
            with torch.no_grad():
                batches = [as_float(x_test[i:i + args.batch_size]) for i in range(0, len(x_test), args.batch_size)]
                test = sum(loss_fn(model, x).item() * len(x) for x in batches)
            line += f", test loss {test / len(x_test):.2f}"
        print(line, flush=True)
    print(f"trained {args.epochs} epochs in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
