#!/usr/bin/env python3
"""A plain JAX training loop of vaelab's MNIST and CIFAR-10 VAEs: a baseline of benchmarks/versus.py.

    python benchmarks/plain_jax.py --model mnist --epochs 5 --data-dir DIR
    python benchmarks/plain_jax.py --model cifar10 --epochs 2 --limit 6000 --validate --data-dir DIR

What a performance-minded JAX user writes without heroics: parameters in dicts, the loss from logits (as
optax's sigmoid_binary_cross_entropy), Adam by hand (optax is not installed here; the same update), one
``jax.jit`` step that donates the parameters and optimizer state and cuts its batch by indexing the training
set, which is on the device as a float array, with a slice of the epoch's permutation; the PRNG key split
inside the step; the epoch's loss summed on the device (no host sync per step). ``--validate`` also computes
the test loss after every epoch (one jitted evaluation step per batch). Same layers and shapes as the dense and
conv architectures of vaelab (mnist_params.py, cifar10_params.py), Glorot-uniform kernels as Keras. Only the
data comes from vaelab.
"""

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vaelab.data import datasets as data  # noqa: E402


def glorot(key, shape, fan_in, fan_out):
    limit = np.sqrt(6 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, minval=-limit, maxval=limit)


def dense(key, n_in, n_out):
    return {"w": glorot(key, (n_in, n_out), n_in, n_out), "b": jnp.zeros(n_out)}


def conv(key, k, c_in, c_out):  # HWIO kernel
    return {"w": glorot(key, (k, k, c_in, c_out), k * k * c_in, k * k * c_out), "b": jnp.zeros(c_out)}


def init(model, key):
    k = iter(jax.random.split(key, 16))
    if model == "mnist":
        return {"hidden": dense(next(k), 784, 512), "mu": dense(next(k), 512, 2), "log_var": dense(next(k), 512, 2),
                "dec_hidden": dense(next(k), 2, 512), "out": dense(next(k), 512, 784)}
    return {"convs": [conv(next(k), 2, 3, 3), conv(next(k), 2, 3, 32), conv(next(k), 3, 32, 32),
                      conv(next(k), 3, 32, 32)],
            "hidden": dense(next(k), 8192, 128), "mu": dense(next(k), 128, 16), "log_var": dense(next(k), 128, 16),
            "dec_hidden": dense(next(k), 16, 128), "upsample": dense(next(k), 128, 8192),
            "deconvs": [conv(next(k), 3, 32, 32), conv(next(k), 3, 32, 32), conv(next(k), 2, 32, 32)],
            "out": conv(next(k), 2, 32, 3)}


def linear(p, x):
    return x @ p["w"] + p["b"]


def conv2d(p, x, stride=1):
    return jax.lax.conv_general_dilated(x, p["w"], (stride, stride), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC")) + p["b"]


def deconv2d(p, x, stride=1):
    return jax.lax.conv_transpose(x, p["w"], (stride, stride), "SAME",
                                  dimension_numbers=("NHWC", "HWIO", "NHWC")) + p["b"]


def encode(params, x):
    if "convs" in params:
        for p, stride in zip(params["convs"], (1, 2, 1, 1)):
            x = jax.nn.relu(conv2d(p, x, stride))
        x = x.reshape(len(x), -1)
    h = jax.nn.relu(linear(params["hidden"], x))
    return linear(params["mu"], h), linear(params["log_var"], h)


def decode_logits(params, z):
    h = jax.nn.relu(linear(params["dec_hidden"], z))
    if "deconvs" not in params:
        return linear(params["out"], h)
    h = jax.nn.relu(linear(params["upsample"], h)).reshape(len(z), 16, 16, 32)
    for p, stride in zip(params["deconvs"], (1, 1, 2)):
        h = jax.nn.relu(deconv2d(p, h, stride))
    return conv2d(params["out"], h)


def loss_fn(params, x, key):
    mu, log_var = encode(params, x)
    z = mu + jax.random.normal(key, mu.shape) * jnp.exp(0.5 * log_var)
    logits = decode_logits(params, z)
    bce = jnp.sum(jnp.maximum(logits, 0) - logits * x + jnp.log1p(jnp.exp(-jnp.abs(logits))))
    kl = -0.5 * jnp.sum(1 + log_var - mu ** 2 - jnp.exp(log_var))
    return (bce + kl) / len(x)


def adam(params, grads, m, v, t, lr=1e-3):
    t = t + 1
    m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, grads)
    v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, grads)
    lr = lr * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
    return jax.tree.map(lambda p, m, v: p - lr * m / (jnp.sqrt(v) + 1e-7), params, m, v), (m, v, t)


@partial(jax.jit, donate_argnums=(0, 1, 2))
def train_step(params, opt_state, total, key, x_train, idx):
    key, sub = jax.random.split(key)
    x = x_train[idx]
    loss, grads = jax.value_and_grad(loss_fn)(params, x, sub)
    params, opt_state = adam(params, grads, *opt_state)
    return params, opt_state, total + loss * len(idx), key


@jax.jit
def eval_sum(params, x, key):
    return loss_fn(params, x, key) * len(x)


def as_float(x):  # MNIST is read as float32 in [0, 1], CIFAR-10 as uint8
    return x.astype(np.float32) / 255 if x.dtype == np.uint8 else x


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("mnist", "cifar10"), default="mnist")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--limit", type=int, help="first N training and test images")
    p.add_argument("--validate", action="store_true", help="the test loss after every epoch")
    p.add_argument("--data-dir")
    args = p.parse_args()
    if args.model == "mnist":
        ds = data.load_mnist(args.data_dir, args.limit, download=False)
        x_train, x_test = ds.x_train.reshape(-1, 784), ds.x_test.reshape(-1, 784)
    else:
        ds = data.load_cifar10(args.data_dir, args.limit, download=False)
        x_train, x_test = ds.x_train, ds.x_test
    x_train, x_test = jnp.asarray(as_float(x_train)), jnp.asarray(as_float(x_test))
    key = jax.random.PRNGKey(0)
    params = init(args.model, key)
    opt_state = (jax.tree.map(jnp.zeros_like, params), jax.tree.map(jnp.zeros_like, params), jnp.zeros(()))
    b = args.batch_size
    tests = [x_test[i:i + b] for i in range(0, len(x_test), b)]
    started = time.perf_counter()
    for epoch in range(args.epochs):
        key, sub = jax.random.split(key)
        perm = jax.random.permutation(sub, len(x_train))
        total = jnp.zeros(())
        for i in range(0, len(x_train), b):
            params, opt_state, total, key = train_step(params, opt_state, total, key, x_train, perm[i:i + b])
        line = f"epoch {epoch + 1}: loss {float(total) / len(x_train):.2f}"
        if args.validate:
            test = sum(eval_sum(params, x, key) for x in tests)
            line += f", test loss {float(test) / len(x_test):.2f}"
        print(line, flush=True)
    print(f"trained {args.epochs} epochs in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
