#!/usr/bin/env python3
"""float32 against bfloat16 (``--mixed-precision bfloat16``) on this CPU, per Keras backend and model.

    python benchmarks/precision.py                                   # every backend; writes runs/precision-<date>.txt
    python benchmarks/precision.py --backends tensorflow --models cifar10 --rounds 5

For each backend a child process (``KERAS_BACKEND`` set) builds each model twice from its params (the
dataset's defaults, or a preset's: ``cifar10:cifar10_hier``), once under the float32 policy and once under
``mixed_bfloat16``, runs one untimed warm-up epoch each, then times ``--rounds`` epochs of synthetic images
*alternating* between the two, and reports the median samples/s and their ratio. The loss of the last round
is printed beside it (the same seeds, so the two should agree to bfloat16's precision). A plain PyTorch loop of
the CIFAR-10 conv model (``benchmarks/plain_torch.py``'s, channels-last) with and without
``torch.autocast(bfloat16)`` is timed the same way, so that a ratio against it compares like with like.

Only meaningful on a CPU with native bfloat16 (``avx512_bf16`` or ``amx_bf16``): elsewhere the project keeps
float32 and says so. Never a test: speed is measured here, alternated, on a quiet machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BACKENDS = ("tensorflow", "jax", "torch")
# model[:preset] -> synthetic images per timed epoch (about 2-4 s each at float32 on the 2-core VM)
MODELS = {"mnist": 30_000, "cifar10": 2_560, "cifar10:cifar10_hier": 640, "caltech101_92": 256}


def child(models: list[str], rounds: int) -> list[dict]:
    import keras
    import numpy as np

    from vaelab.config.experiments import DATASETS, model_inputs
    from vaelab.config.presets import PRESETS
    from vaelab.models import registry as parts
    from vaelab.models.vae import build_vae
    from vaelab.training.loop import make_optimizer

    rows = []
    for spec in models:
        name, _, preset = spec.partition(":")
        exp = DATASETS[name]
        overrides = dict(PRESETS[preset].overrides, preset=preset) if preset else {}
        params = exp.params_cls(**overrides)
        built = {}
        for policy in ("float32", "mixed_bfloat16"):
            keras.utils.set_random_seed(0)
            keras.mixed_precision.set_global_policy(policy)
            try:
                vae = build_vae(params, exp.image_shape, binarize=exp.binarize)
            finally:
                keras.mixed_precision.set_global_policy("float32")
            vae.compile(optimizer=make_optimizer("adam", 1e-3))
            built[policy] = vae
        n = MODELS[spec]
        x = np.random.default_rng(0).random((n, *exp.image_shape), dtype=np.float32)
        x = model_inputs(x, parts.architecture(params).flat_input)
        batch = params.batch_size
        for vae in built.values():  # tracing and compiling, untimed
            vae.fit(x[:batch * 2], batch_size=batch, epochs=1, verbose=0, shuffle=False)
        seconds, losses = {p: [] for p in built}, {}
        for _ in range(rounds):
            for policy, vae in built.items():
                started = time.perf_counter()
                history = vae.fit(x, batch_size=batch, epochs=1, verbose=0, shuffle=False)
                seconds[policy].append(time.perf_counter() - started)
                losses[policy] = float(history.history["loss"][-1])
        rate = {p: n / statistics.median(s) for p, s in seconds.items()}
        rows.append({"model": spec, "batch": batch, "float32": rate["float32"], "bfloat16": rate["mixed_bfloat16"],
                     "ratio": rate["mixed_bfloat16"] / rate["float32"], "loss_float32": losses["float32"],
                     "loss_bfloat16": losses["mixed_bfloat16"],
                     "rounds": {p: [n / t for t in s] for p, s in seconds.items()}})
    return rows


def torch_loop(rounds: int) -> dict:
    """The plain PyTorch CIFAR-10 conv loop, channels-last, float32 against autocast(bfloat16)."""
    import contextlib

    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import plain_torch as pt

    n = MODELS["cifar10"]
    torch.manual_seed(0)
    x_all = torch.rand(n, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    setups = {}
    for mode in ("float32", "bfloat16"):
        torch.manual_seed(0)
        model = pt.ConvVAE((32, 32, 3), 32, (2, 2, 3, 3), (1, 2, 1, 1), 128, 16).to(memory_format=torch.channels_last)
        setups[mode] = (model, torch.optim.Adam(model.parameters(), lr=1e-3))

    def epoch(mode):
        model, opt = setups[mode]
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if mode == "bfloat16" else contextlib.nullcontext()
        total = torch.zeros(())
        for i in range(0, n, 256):
            with ctx:
                value = pt.loss_fn(model, x_all[i:i + 256])
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            total += value.detach().float() * len(x_all[i:i + 256])
        return float(total) / n

    for mode in setups:
        epoch(mode)
    seconds, losses = {m: [] for m in setups}, {}
    for _ in range(rounds):
        for mode in setups:
            started = time.perf_counter()
            losses[mode] = epoch(mode)
            seconds[mode].append(time.perf_counter() - started)
    rate = {m: n / statistics.median(s) for m, s in seconds.items()}
    return {"model": "plain PyTorch cifar10 conv (channels-last)", "batch": 256, "float32": rate["float32"],
            "bfloat16": rate["bfloat16"], "ratio": rate["bfloat16"] / rate["float32"],
            "loss_float32": losses["float32"], "loss_bfloat16": losses["bfloat16"],
            "rounds": {m: [n / t for t in s] for m, s in seconds.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default=",".join(BACKENDS))
    p.add_argument("--models", default=",".join(MODELS), help=f"comma list of {', '.join(MODELS)}")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-plain-torch", action="store_true", help="skip the plain PyTorch loop")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    models = [m for m in args.models.split(",") if m]
    if unknown := [m for m in models if m not in MODELS]:
        sys.exit(f"error: unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    if args.child == "torch-loop":
        print(json.dumps(torch_loop(args.rounds)))
        return
    if args.child:
        print(json.dumps(child(models, args.rounds)))
        return

    from vaelab.training.distribute import cpu_has_bf16

    started = datetime.datetime.now(datetime.timezone.utc)
    lines = [f"# float32 against bfloat16, {started:%Y-%m-%d %H:%M} UTC, {platform.machine()} "
             f"{os.cpu_count()} cores, native bfloat16: {cpu_has_bf16()}",
             f"# python benchmarks/precision.py --backends {args.backends} --models {args.models} "
             f"--rounds {args.rounds}", "",
             "| backend | model (batch) | float32 samples/s | bfloat16 samples/s | bfloat16 / float32 | "
             "last loss float32 / bfloat16 |", "|---|---|---|---|---|---|"]
    results = []
    jobs = [(b, ["--child", "1"]) for b in args.backends.split(",") if b]
    if not args.no_plain_torch:
        jobs.append(("torch", ["--child", "torch-loop"]))
    for backend, extra in jobs:
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
        done = subprocess.run([sys.executable, __file__, "--models", args.models, "--rounds", str(args.rounds),
                               *extra], env=env, capture_output=True, text=True)
        if done.returncode:
            lines.append(f"| {backend} | failed: {done.stderr.strip().splitlines()[-1] if done.stderr else '?'} |")
            continue
        rows = json.loads(done.stdout.strip().splitlines()[-1])
        for row in rows if isinstance(rows, list) else [rows]:
            row["backend"] = backend
            results.append(row)
            lines.append(f"| {backend} | {row['model']} ({row['batch']}) | {row['float32']:,.0f} | "
                         f"{row['bfloat16']:,.0f} | **{row['ratio']:.2f}** | "
                         f"{row['loss_float32']:.2f} / {row['loss_bfloat16']:.2f} |")
        print("\n".join(lines[-len(rows) if isinstance(rows, list) else -1:]), flush=True)
    out = ROOT / "results" / "benchmarks" / f"precision-{started:%Y-%m-%d-%H%M}"
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    print("\n".join(lines))
    print(f"wrote {out.with_suffix('.txt')}")


if __name__ == "__main__":
    main()
