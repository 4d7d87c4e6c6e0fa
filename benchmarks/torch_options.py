#!/usr/bin/env python3
"""Which torch.compile mode and memory format make benchmarks/plain_torch.py's training step fastest, per model.

    python benchmarks/torch_options.py --models mnist,cifar10 --rounds 5 --steps 20

Times ``--steps`` training steps (plain_torch.py's loss, Adam, random in-memory batches of the model's size)
of every configuration, alternated round by round after a warm-up (compilation) round; prints the median
ms/step and each configuration's ratio to eager, contiguous. What measured faster is plain_torch.py's default.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plain_torch as plain  # noqa: E402

SHAPES = {"mnist": (784,), "cifar10": (3, 32, 32), "fashion_mnist": (1, 28, 28), "caltech101_92": (3, 92, 92),
          "caltech101_128": (3, 128, 128)}
MODULES = {"mnist": lambda: (plain.DenseVAE(), None), "fashion_mnist": lambda: (plain.ConvBnVAE(32, 3, 3), 5000.0),
           "cifar10": lambda: (plain.ConvVAE((32, 32, 3), 32, (2, 2, 3, 3), (1, 2, 1, 1), 128, 16), None),
           "caltech101_92": lambda: (plain.ConvVAE((92, 92, 3), 32, (3, 3, 3, 3), (1, 2, 2, 2), 256, 32), None),
           "caltech101_128": lambda: (plain.ConvVAE((128, 128, 3), 64, (3, 3, 3, 3), (1, 2, 2, 2), 256, 64), None)}


def stepper(model_name, mode, channels_last):
    torch.manual_seed(0)
    model, weight = MODULES[model_name]()
    x = torch.rand(plain.MODELS[model_name]["batch"], *SHAPES[model_name])
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = plain.loss_fn if mode == "none" else torch.compile(plain.loss_fn, mode=None if mode == "default" else mode)

    def run(steps):
        started = time.perf_counter()
        for _ in range(steps):
            value = loss(model, x, weight)
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
        return (time.perf_counter() - started) / steps
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="mnist,cifar10,fashion_mnist,caltech101_92")
    p.add_argument("--modes", default="none,default")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    for name in args.models.split(","):
        configs = [(m, cl) for m in args.modes.split(",") for cl in ((False, True) if name != "mnist" else (False,))]
        runs, times = {}, {c: [] for c in configs}
        for c in configs:
            started = time.perf_counter()
            try:
                runs[c] = stepper(name, *c)
                runs[c](3)
            except Exception as e:  # a mode this CPU build cannot compile
                print(f"{name} {c}: failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}", flush=True)
                runs.pop(c, None)
                continue
            print(f"{name} {c}: warm-up (compile) {time.perf_counter() - started:.1f} s", flush=True)
        for rnd in range(args.rounds):
            for c in (list(runs) if rnd % 2 == 0 else list(runs)[::-1]):
                times[c].append(runs[c](args.steps))
        base = statistics.median(times[("none", False)])
        for c in runs:
            med = statistics.median(times[c])
            print(f"{name} compile={c[0]} channels_last={c[1]}: {1e3 * med:.1f} ms/step "
                  f"({1e3 * min(times[c]):.1f}-{1e3 * max(times[c]):.1f}), {base / med:.2f}x eager", flush=True)


if __name__ == "__main__":
    main()
