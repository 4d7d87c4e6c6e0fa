#!/usr/bin/env python3
"""Training throughput of the VAEs per Keras backend, against the machine's float32 matmul peak.

    python benchmarks/throughput.py                       # every backend installed; writes results-<date>.txt
    python benchmarks/throughput.py --backends tensorflow --samples 20000 --rounds 3
    python benchmarks/throughput.py --backends tensorflow --models mnist   # only the dense MNIST VAE

For each backend installed (TensorFlow, JAX, PyTorch) a child process (``KERAS_BACKEND`` set) builds every
configuration, runs one warm-up epoch each (tracing/compiling excluded), then times ``--rounds`` epochs of
``--samples`` synthetic images (conv models: the same FLOPs' worth) *alternating between configurations*, so that the shared machine's speed
swings hit all of them alike. It reports the median samples/s, the achieved FLOP rate (layer-shape count,
see :mod:`vaelab.evaluation.benchmark`) as a percentage of numpy's 2048^3 float32 matmul peak measured in the same run,
the data pipeline alone in batches/s, and the child's peak RSS. A GPU section runs when a GPU is visible.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib.util
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vaelab.data import batches
from vaelab.evaluation import benchmark
from vaelab.training import loop as training  # noqa: E402

BACKENDS = ("tensorflow", "jax", "torch")


def configs(backend: str, gpu: bool, models: list[str] | None = None) -> list[dict]:
    """What to compare. TensorFlow: XLA on/off, batch size, input pipeline, steps per execution.

    The first two TensorFlow rows are what ``mnist_train.py`` runs: its input pipeline (the seeded
    ``epoch batches`` of vaelab.training.checkpoints) with the fast path (``steps_per_execution="auto"``: the
    compile options of :func:`vaelab.training.loop.compile_options`), and the same with ``--no-jit`` (the
    default before the fast path)."""
    c = [dict(model="mnist", batch=256, jit=False), dict(model="mnist", batch=1024, jit=False)]
    if backend == "tensorflow":
        c = [dict(model="mnist", batch=256, jit=True, steps_per_execution="auto", pipeline="epoch batches"),
             dict(model="mnist", batch=256, jit=False, pipeline="epoch batches"), *c]
        c += [dict(model="mnist", batch=256, jit=True), dict(model="mnist", batch=1024, jit=True),
              dict(model="mnist", batch=256, jit=False, pipeline="tf.data"),
              dict(model="mnist", batch=1024, jit=True, pipeline="tf.data"),
              dict(model="mnist", batch=256, jit=False, steps_per_execution=16),
              dict(model="mnist", batch=256, jit=True, steps_per_execution=16),
              dict(model="mnist", batch=1024, jit=True, steps_per_execution=16)]
    if backend == "jax":
        c = [dict(model="mnist", batch=256, jit=True), dict(model="mnist", batch=1024, jit=True)]
    if backend == "torch":  # its OpenMP threads spin: on a busy machine one thread can beat all of them
        c += [dict(model="mnist", batch=256, jit=False, threads=1),
              dict(model="mnist", batch=1024, jit=False, threads=1)]
    c.append(dict(model="mnist_binarized", batch=100, jit=backend == "jax"))
    c += [dict(model=name, batch=None, jit=backend == "jax") for name in other_experiments()]
    if gpu:
        c += [dict(d, mixed_precision=True) for d in c if d["model"] == "mnist"]
    return [d for d in c if not models or d["model"] in models]


def other_experiments() -> list[str]:
    from vaelab.config.experiments import DATASETS

    return [n for n in DATASETS if n not in ("mnist", "mnist_binarized")]


def label(cfg: dict) -> str:
    parts = [cfg["model"], f"batch {cfg['batch'] or 'default'}", "jit" if cfg["jit"] else "no jit"]
    if cfg.get("pipeline"):
        parts.append(cfg["pipeline"])
    if cfg.get("steps_per_execution") == "auto":
        parts.append(f"{cfg.get('steps_per_execution_used', 'auto')} steps/exec = fast path (training default)")
    elif cfg.get("steps_per_execution"):
        parts.append(f"{cfg['steps_per_execution']} steps/exec")
    elif cfg.get("pipeline") == "epoch batches" and not cfg["jit"]:
        parts.append("--no-jit (old default)")
    if cfg.get("mixed_precision"):
        parts.append("mixed fp16")
    if cfg.get("threads"):
        parts.append(f"{cfg['threads']} thread{'s' if cfg['threads'] > 1 else ''}")
    return ", ".join(parts)


# --- child: one backend ---------------------------------------------------------------------------


def gpu_device() -> str | None:
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else None
    if backend == "jax":
        import jax

        devs = [d for d in jax.devices() if d.platform == "gpu"]
        return devs[0].device_kind if devs else None
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return None


@functools.cache
def _mnist_train_flops() -> int:
    from vaelab.config import params as params_mod
    from vaelab.models.vae import build_vae

    return benchmark.vae_train_flops(build_vae(params_mod.MnistParams(), (28, 28, 1)))


def samples_for(model: str, vae, n: int, batch: int) -> int:
    """Synthetic samples per timed epoch: ``n`` for the MNIST models; for the conv models as many as make an
    epoch the same FLOPs as ``n`` MNIST samples (at least 8 batches), so that every model's epoch takes
    seconds, not the hour 60,000 Caltech101 images would (and not their 11 GB)."""
    if model in ("mnist", "mnist_binarized"):
        return n
    same_work = round(n * _mnist_train_flops() / benchmark.vae_train_flops(vae) / batch) * batch
    return max(8 * batch, same_work)


def build(cfg: dict, n: int):
    """Model, inputs and the batch size of one configuration."""
    import keras
    import numpy as np

    from vaelab.models import registry as parts
    from vaelab.config.experiments import DATASETS, model_inputs
    from vaelab.models.vae import build_vae
    from vaelab.training.loop import make_optimizer

    exp = DATASETS[cfg["model"]]
    params = exp.params_cls()
    batch = cfg["batch"] or params.batch_size
    keras.utils.set_random_seed(0)
    if cfg.get("mixed_precision"):
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        vae = build_vae(params, exp.image_shape, binarize=exp.binarize)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    shape = exp.image_shape
    n = samples_for(cfg["model"], vae, n, batch)
    x = np.random.default_rng(0).random((n, *shape), dtype=np.float32)
    x = model_inputs(x, parts.architecture(params).flat_input)
    compile_kw = {"jit_compile": cfg["jit"]}
    if cfg.get("steps_per_execution") == "auto":  # exactly what training compiles with
        compile_kw = training.compile_options(True, len(batches.batch_bounds(n, batch)))
        cfg["steps_per_execution_used"] = compile_kw.get("steps_per_execution", 1)
    elif cfg.get("steps_per_execution"):
        compile_kw["steps_per_execution"] = cfg["steps_per_execution"]
    vae.compile(optimizer=make_optimizer("adam", 1e-3), **compile_kw)
    data = x
    if cfg.get("pipeline") == "epoch batches":  # what training uses (seeded per-epoch order, endless)
        data = batches.make_epoch_batches(x, batch, seed=0)
    if cfg.get("pipeline") == "tf.data":
        import tensorflow as tf

        data = tf.data.Dataset.from_tensor_slices(x).shuffle(n).batch(batch).prefetch(tf.data.AUTOTUNE)
    return vae, data, x, batch


def fit_epoch(vae, data, batch, timer, threads: int | None = None) -> None:
    import keras

    if keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(threads or os.cpu_count())
    kw = {"batch_size": batch} if hasattr(data, "shape") else {}  # arrays take a batch size, datasets are batched
    if hasattr(data, "steps"):  # the endless epoch batches: one epoch, new iterator each call
        kw = {"steps_per_epoch": data.steps}
    vae.fit(data, epochs=1, shuffle=not hasattr(data, "steps"), verbose=0, callbacks=[timer], **kw)


def pipeline_rate(x, batch: int, passes: int = 3) -> dict:
    """Batches/s of Keras's own input pipeline for numpy arrays (what fit uses), no model."""
    import time

    import keras
    from keras.src.trainers.data_adapters import get_data_adapter  # private, but the one fit uses

    backend = keras.backend.backend()
    rates = []
    for i in range(passes + 1):
        adapter = get_data_adapter(x, batch_size=batch, shuffle=True)
        it = {"tensorflow": adapter.get_tf_dataset, "jax": adapter.get_jax_iterator,
              "torch": adapter.get_torch_dataloader}.get(backend, adapter.get_numpy_iterator)()
        started = time.perf_counter()
        count = sum(1 for _ in it)
        if i:  # the first pass warms up
            rates.append(count / (time.perf_counter() - started))
    return {"batch": batch, **{k: round(v, 1) if isinstance(v, float) else v
                               for k, v in benchmark.summarize(rates).items()}}


def child(backend: str, samples: int, rounds: int, models: list[str] | None = None) -> dict:
    import keras

    gpu = gpu_device()
    cfgs = configs(backend, gpu is not None, models)
    runs = []
    for cfg in cfgs:
        vae, data, x, batch = build(cfg, samples)
        timer = benchmark.epoch_timer()
        # Trace/compile before timing, for the full batches and the last partial one alike (both shapes).
        warm = x[: min(len(x), batch * 4 + len(x) % batch)] if hasattr(data, "shape") else data
        fit_epoch(vae, warm, batch, timer, cfg.get("threads"))
        runs.append(dict(cfg=cfg, vae=vae, data=data, x=x, batch=batch, timer=benchmark.epoch_timer()))
    peaks = []  # sampled between rounds: the shared machine's peak moves with its neighbours' load
    for _ in range(rounds):  # alternate, so machine-speed swings hit every configuration alike
        peaks += benchmark.matmul_peak(repeats=3)["rates"]
        for r in runs:
            fit_epoch(r["vae"], r["data"], r["batch"], r["timer"], r["cfg"].get("threads"))
    out = []
    for r in runs:
        rates = [len(r["x"]) / s for s in r["timer"].seconds]
        flops = benchmark.vae_train_flops(r["vae"])
        s = benchmark.summarize(rates)
        shown = label(r["cfg"]) + (f", n = {len(r['x'])}" if len(r["x"]) != samples else "")
        out.append({"label": shown, **r["cfg"], "batch": r["batch"], "samples_per_s": round(s["median"]),
                    "samples_per_s_min": round(s["min"]), "samples_per_s_max": round(s["max"]), "epochs_timed": s["n"],
                    "train_flops_per_sample": flops, "achieved_gflops": benchmark.gflops(flops * s["median"])})
    first = next((r for r in runs if r["cfg"]["model"] == "mnist"), runs[0])  # --models may leave MNIST out
    peaks += benchmark.matmul_peak(repeats=3)["rates"]
    return {"backend": backend, "keras": keras.__version__, "gpu": gpu, "runs": out, "samples": samples,
            "peak_gflops": sorted(peaks)[len(peaks) // 2], "peak_gflops_all": peaks,
            "pipeline": pipeline_rate(first["x"], first["batch"]), "pipeline_model": first["cfg"]["model"], "peak_rss_mb": round(benchmark.peak_rss_mb())}


# --- parent ---------------------------------------------------------------------------------------


def installed_backends() -> list[str]:
    return [b for b in BACKENDS if importlib.util.find_spec(b)]


def run_child(backend: str, args) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    samples = args.torch_samples if backend == "torch" else args.samples
    cmd = [sys.executable, __file__, "--child", backend, "--samples", str(samples), "--rounds", str(args.rounds),
           *(["--models", args.models] if args.models else [])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"backend": backend, "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}


def report(peak: dict, results: list[dict], args) -> str:
    peak_g = peak["median_flops"] / 1e9
    lines = [
        f"vaelab training throughput, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; command: python benchmarks/throughput.py "
        f"--samples {args.samples} --torch-samples {args.torch_samples} --rounds {args.rounds}"
        f"{' --models ' + args.models if args.models else ''}",
        f"float32 matmul peak before and after (numpy {peak['n']}^3, median of {len(peak['rates'])}): "
        f"{peak_g:.1f} GFLOP/s "
        f"(best {peak['best_flops'] / 1e9:.1f}; all {peak['rates']})",
        "FLOPs: 3 x forward Dense/Conv FLOPs per sample from layer shapes; element-wise work not counted.",
        f"samples/s: median of {args.rounds} epochs of {args.samples} synthetic samples ({args.torch_samples} on "
        "torch, which is slow; for the conv models as many as make the same FLOPs, at least 8 batches, shown as "
        "'n = ...') after a warm-up epoch, configurations alternated; no validation.",
        "",
        "% peak: of the median of numpy matmul rates sampled inside each backend's run, between its rounds "
        "(the peak moves with the neighbours' load; both are listed per backend below).",
        f"{'backend':<11} {'configuration':<72} {'samples/s':>10} {'(min-max)':>15} {'GFLOP/s':>8} {'% peak':>7}",
    ]
    for res in results:
        if "error" in res:
            lines.append(f"{res['backend']:<11} failed: {res['error']}")
            continue
        for r in res["runs"]:
            pct = 100.0 * r["achieved_gflops"] / res.get("peak_gflops", peak_g)
            lines.append(f"{res['backend']:<11} {r['label']:<72} {r['samples_per_s']:>10} "
                         f"{'(' + str(r['samples_per_s_min']) + '-' + str(r['samples_per_s_max']) + ')':>15} "
                         f"{r['achieved_gflops']:>8.1f} {pct:>6.1f}%")
    lines.append("")
    for res in results:
        if "error" in res:
            continue
        p = res["pipeline"]
        lines.append(f"{res['backend']:<11} data pipeline alone (Keras array adapter, "
                     f"{res.get('pipeline_model', 'mnist')} batch {p['batch']}): "
                     f"{p['median']:.0f} batches/s = {p['median'] * p['batch']:.0f} samples/s; "
                     f"peak RSS of the run {res['peak_rss_mb']} MiB; GPU: {res['gpu'] or 'none present'}")
        lines.append(f"{'':<11} matmul peak during its run: median {res['peak_gflops']:.1f} GFLOP/s "
                     f"(all {res['peak_gflops_all']})")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default=",".join(installed_backends()), help="comma-separated (default: installed)")
    p.add_argument("--samples", type=int, default=60000, help="synthetic samples per timed epoch (default 60000)")
    p.add_argument("--torch-samples", type=int, default=6000, help="samples per epoch on PyTorch (default 6000)")
    p.add_argument("--rounds", type=int, default=3, help="timed epochs per configuration (default 3)")
    p.add_argument("--models", help="comma-separated experiments to time (default: all), e.g. mnist")
    p.add_argument("--out", help="also write the report here (default results/benchmarks/results-<date>.txt)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        models = args.models.split(",") if args.models else None
        print("RESULT " + json.dumps(child(args.child, args.samples, args.rounds, models)))
        return 0
    peak = benchmark.matmul_peak()
    results = [run_child(b, args) for b in args.backends.split(",") if b]
    peak_after = benchmark.matmul_peak()  # the machine drifts: report both, use the median of all
    peak["rates"] = peak["rates"] + peak_after["rates"]
    rates = sorted(peak["rates"])
    peak["median_flops"] = rates[len(rates) // 2] * 1e9
    peak["best_flops"] = max(rates) * 1e9
    text = report(peak, results, args)
    print(text)
    out = Path(args.out or ROOT / "results" / "benchmarks" / f"results-{datetime.date.today():%Y-%m-%d}.txt")
    out.write_text(text + "\n")
    out.with_suffix(".json").write_text(json.dumps({"matmul_peak": peak, "results": results}, indent=2) + "\n")
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
