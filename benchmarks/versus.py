#!/usr/bin/env python3
"""vaelab's training command against plain PyTorch and plain JAX loops and the GEMM-only limit, in one run.

    python benchmarks/versus.py --data-dir DIR                       # MNIST and CIFAR-10, 3 rounds
    python benchmarks/versus.py --data-dir DIR --models mnist --rounds 5
    python benchmarks/versus.py --data-dir DIR --models mnist:3,cifar10:1,caltech101_92:1 --plain-env OMP_WAIT_POLICY=PASSIVE
    python benchmarks/versus.py --data-dir DIR --models fashion_mnist,cifar10,caltech101_92,caltech101_128
    python benchmarks/versus.py --data-dir DIR --models cifar10:3,caltech101_92:3 --no-plain-jax
    python benchmarks/versus.py --data-dir DIR --models mnist \\
        --variant "jax: KERAS_BACKEND=jax" --variant "no-jit: --no-jit"     # more rows of ours

Every row is a whole command run in a subprocess, timed from outside, twice per round: with ``--epochs E``
and with ``--epochs 1``; ``(wall(E) - wall(1))`` is the time of ``E - 1`` epochs with everything an epoch
costs (for ours: the per-epoch validation on the test set, the checkpoint, the CSV and TensorBoard logs,
the progress bar), and without what every run pays once (imports, reading the data, compiling, saving
the model, the final test). samples/s = (E - 1) x training images / that time.

Rows per model:
* ``ours``: the project's train script with its defaults (``mnist_train.py``, ``cifar10_train.py``, ...), a fresh
  ``--models-dir`` per run; ``--variant "NAME: [ENV=VALUE ...] [--flag ...]"`` adds rows of the same command
  with other environment variables or flags (e.g. ``KERAS_BACKEND=jax``); ``ROOT=DIR`` among them runs the
  command in another checkout instead (to compare two commits: ``git worktree add DIR COMMIT``); a NAME
  ``mnist/...`` (or another model's name) adds the row to that model only; ``plain/torch/...`` or ``plain/jax/...``
  adds a row of that plain loop (e.g. ``"plain/torch/1 thread: OMP_NUM_THREADS=1"``);
* ``plain PyTorch`` / ``plain JAX``: benchmarks/plain_torch.py / plain_jax.py, the same model and batch in the
  strongest plain loops their users write without heroics, each without validation (the stricter baseline)
  and ``+ validation`` (``--validate``: the test loss after every epoch, as ours; under ``--limit`` on as many
  test images as it trains on); plain JAX for MNIST and CIFAR-10 only; ``--plain-env "K=V ..."`` sets
  environment variables of every plain row (``OMP_WAIT_POLICY=PASSIVE``: on a shared, busy machine PyTorch's
  spinning OpenMP threads ran 25x slower than with passive waits);
* ``GEMM-only limit``: the step's matrix products alone (forward, weight and input gradients, none of the
  input's; convolutions as the im2col products they lower to; :func:`vaelab.evaluation.benchmark.vae_step_gemms`), timed
  with numpy's BLAS at the same shapes in this process, plus for the conv models the forward products of
  validating as many images; samples/s of an epoch made of nothing else. For MNIST a limit; for
  convolutions a reference only, since oneDNN's direct convolutions can beat im2col products.

Before a model's rounds, one untimed ``--epochs 1`` run of every row builds any dataset cache (Caltech101's) and compiler cache (torch.compile's). Rounds alternate the rows (the order reversed every other round), so the shared machine's swings hit all of
them alike; the report gives medians (and min-max) over rounds, each row's ratio to plain PyTorch (without and with
validation) and to the GEMM-only limit, the CPU seconds per wall second of the timed epochs (above 2 on 2 cores means threads
waiting for each other; far below 2, other processes had the cores) and the samples per CPU second (on a
machine busy with other work, the rate that depends least on how much of it a row got), and the load average around every round. Writes ``results/benchmarks/versus-<UTC time>.txt``
and ``.json``. No GPU: these are CPU numbers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vaelab.evaluation import benchmark  # noqa: E402

# Per model: the script, the images per epoch (None: the whole training set), E, the command-line options
# of every row, and whether the plain loops validate. CIFAR-10 times E - 1 = 3 epochs: with E = 2 a round timed
# one epoch of about 5 s, and single rounds spread 783-1816 samples/s (results/benchmarks/versus-2026-11-30-0517.txt).
# The conv models run on the first N images (--limit) so that a round takes minutes, not hours; ``validate``: the
# GEMM-only row adds the forward products of validating as many test images (the conv models: the train set
# under --limit is as small as the validation); only MNIST and CIFAR-10 have a plain JAX loop.
MODELS = {
    "mnist": dict(script="mnist_train.py", train=60000, epochs=5, limit=None, validate=False, jax=True),
    "cifar10": dict(script="cifar10_train.py", train=4000, epochs=4, limit=4000, validate=True, jax=True),
    "fashion_mnist": dict(script="fashion_mnist_train.py", train=4096, epochs=4, limit=4096, validate=True, jax=False),
    "caltech101_92": dict(script="caltech101_92_train.py", train=1024, epochs=3, limit=1024, validate=True,
                          jax=False),
    "caltech101_128": dict(script="caltech101_128_train.py", train=512, epochs=3, limit=512, validate=True,
                           jax=False),
}


def parse_variant(text: str) -> dict:
    """``"NAME: ENV=VALUE --flag value"`` -> {name, env, args}."""
    name, _, rest = text.partition(":")
    env, args = {}, []
    for word in shlex.split(rest):
        if re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", word) and not args:
            key, _, value = word.partition("=")
            env[key] = value
        else:
            args.append(word)
    return {"name": name.strip(), "env": env, "args": args}


def rows_for(model: str, variants: list[dict], plain_loops: bool = True, plain_env: dict | None = None,
             plain_jax: bool = True) -> list[dict]:
    """The rows of ``model``: ours, its variants, and each plain loop without and with validation (``--validate``:
    the test loss after every epoch, as ours; under ``--limit`` on as many test images); ``plain_env``: more
    environment variables of every plain row."""
    spec, plain_env = MODELS[model], plain_env or {}
    limit = ["--limit", str(spec["limit"])] if spec["limit"] else []
    plain = [*limit, "--model", model]
    rows = [{"name": "ours (default command)", "kind": "ours", "cmd": [spec["script"], *limit], "env": {}}]
    rows += [{"name": f"ours, {v['name'].split('/', 1)[-1]}", "kind": "ours",
              "cmd": [spec["script"], *limit, *v["args"]], "env": v["env"]} for v in variants
             if not v["name"].startswith("plain/") and v["name"].split("/", 1)[0] in (model, v["name"])]
    if plain_loops:
        loops = [("plain PyTorch", "benchmarks/plain_torch.py")]
        loops += [("plain JAX", "benchmarks/plain_jax.py")] if spec["jax"] and plain_jax else []
        for name, script in loops:
            rows += [{"name": name, "kind": "plain", "cmd": [script, *plain], "env": dict(plain_env)},
                     {"name": f"{name} + validation", "kind": "plain", "cmd": [script, *plain, "--validate"],
                      "env": dict(plain_env)}]
        loops = {"torch": ("plain PyTorch", "benchmarks/plain_torch.py"),
                 "jax": ("plain JAX", "benchmarks/plain_jax.py")}
        rows += [{"name": f"{loops[v['name'].split('/')[1]][0]}, {v['name'].split('/', 2)[-1]}", "kind": "plain",
                  "cmd": [loops[v["name"].split("/")[1]][1], *plain, *v["args"]], "env": {**plain_env, **v["env"]}}
                 for v in variants if v["name"].startswith("plain/")]
    return rows


def run_once(row: dict, epochs: int, data_dir: str | None, scratch: Path) -> dict:
    """Wall and CPU seconds of one whole command."""
    cmd = [sys.executable, *row["cmd"], "--epochs", str(epochs), *(["--data-dir", data_dir] if data_dir else [])]
    if row["kind"] == "ours":
        models = Path(tempfile.mkdtemp(dir=scratch))
        cmd += ["--models-dir", str(models), "--results-dir", str(models / "results")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **row["env"]}
    cwd = env.pop("ROOT", ROOT)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if row["kind"] == "ours":
        shutil.rmtree(models, ignore_errors=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    losses = re.findall(r"(?:val_loss: |test loss |test: loss |: loss )([0-9.]+)", proc.stdout)
    return {"wall": wall, "cpu": cpu, "last_loss": float(losses[-1]) if losses else None}


def default_vae(model: str):
    """The model of ``model``'s params module with its defaults, built (for its layer shapes only)."""
    from vaelab.config.experiments import lookup
    from vaelab.models.vae import build_vae

    exp = lookup(model)
    return build_vae(exp.params_cls(), exp.image_shape)


def batch_size(model: str) -> int:
    """The batch size of ``model``'s params module, which ours and the plain loops train with."""
    from vaelab.config.experiments import lookup

    return lookup(model).params_cls().batch_size


def gemm_limit(model: str, seconds: float) -> dict:
    """The GEMM-only limit of ``model``: its training step's matrix products (convolutions as im2col products,
    :func:`vaelab.evaluation.benchmark.vae_step_gemms`) timed with numpy's BLAS, plus, where the rows validate, the
    evaluation step's forward products for as many test images; samples/s of an epoch made of nothing else."""
    spec = MODELS[model]
    vae, batch = default_vae(model), batch_size(model)
    gemms = benchmark.vae_step_gemms(vae, batch)
    step = statistics.median(benchmark.gemm_step_seconds(gemms, seconds))
    per_image = step / batch
    if spec["validate"]:
        forward = benchmark.vae_step_gemms(vae, batch, forward_only=True)
        per_image += statistics.median(benchmark.gemm_step_seconds(forward, seconds)) / batch
    return {"samples_per_s": 1.0 / per_image, "step_ms": step * 1e3,
            "gflops": benchmark.gemm_flops(gemms) / step / 1e9, "products": len(gemms)}


def measure(models: list[str], rounds: int | dict, variants: list[dict], data_dir: str | None, log,
            plain_loops: bool = True, plain_env: dict | None = None, plain_jax: bool = True) -> dict:
    out = {}
    scratch = Path(tempfile.mkdtemp(prefix="vaelab-versus-"))
    try:
        for model in models:
            spec = MODELS[model]
            rows = rows_for(model, variants, plain_loops, plain_env, plain_jax)
            # Untimed warm-up of every row: the first run of a dataset may build its cache (Caltech101's .npz,
            # about 10 s), the first torch.compile fills the compiler's cache; timed, each made a --epochs 1 run
            # longer than its --epochs E (results/benchmarks/versus-2026-12-04-0232.txt, a fresh data folder;
            # versus-2026-12-04-0254.txt, Fashion-MNIST's compiled PyTorch loop).
            for row in rows:
                warm = run_once(row, 1, data_dir, scratch)
                log(f"{model}: warm-up run of {row['name']} (untimed) {warm['wall']:.1f} s")
            results = {r["name"]: [] for r in rows}
            results["GEMM-only limit (numpy BLAS)"] = []
            loads = []
            for rnd in range(rounds[model] if isinstance(rounds, dict) else rounds):
                order = rows if rnd % 2 == 0 else rows[::-1]
                load_before = os.getloadavg()
                if rnd % 2 == 0:
                    results["GEMM-only limit (numpy BLAS)"].append(gemm_limit(model, 2.0))
                for row in order:
                    short = run_once(row, 1, data_dir, scratch)
                    long = run_once(row, spec["epochs"], data_dir, scratch)
                    seconds = long["wall"] - short["wall"]
                    images = (spec["epochs"] - 1) * spec["train"]
                    r = {"samples_per_s": images / seconds, "seconds": seconds, "wall_1": short["wall"],
                         "wall_E": long["wall"], "cpu_per_wall": (long["cpu"] - short["cpu"]) / seconds,
                         "last_loss": long["last_loss"]}
                    results[row["name"]].append(r)
                    log(f"{model} round {rnd + 1}: {row['name']}: {r['samples_per_s']:.0f} samples/s "
                        f"({seconds:.2f} s for {spec['epochs'] - 1} epochs; CPU/wall {r['cpu_per_wall']:.2f}; "
                        f"loss {r['last_loss']})")
                if rnd % 2 == 1:
                    results["GEMM-only limit (numpy BLAS)"].append(gemm_limit(model, 2.0))
                loads.append((load_before, os.getloadavg()))
                log(f"{model} round {rnd + 1}: load average before {load_before[0]:.2f}, after {loads[-1][1][0]:.2f}")
            out[model] = {"rows": results, "loads": loads, "commands": {r["name"]: shown(r, spec) for r in rows}}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def shown(row: dict, spec: dict) -> str:
    env = " ".join(f"{k}={v}" for k, v in row["env"].items())
    extra = "--models-dir TMP " if row["kind"] == "ours" else ""
    return f"{env + ' ' if env else ''}python {' '.join(row['cmd'])} --epochs {spec['epochs']} (minus --epochs 1) " \
           f"{extra}--data-dir DIR"


def without_folders(text: str) -> str:
    """``text`` with every ``ROOT=DIR`` of a variant shown as ``ROOT=CHECKOUT``: reports name no folder of
    the machine they ran on (the commit is in the variant's name)."""
    return re.sub(r"ROOT=[^\s'\",]+", "ROOT=CHECKOUT", text)


def median(values):
    return statistics.median(values) if values else float("nan")


def report(results: dict, args, started: datetime.datetime) -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = [f"vaelab versus plain loops, {started:%Y-%m-%d %H:%M}-{now:%H:%M} UTC",
             f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {benchmark.cpu_description()}, Python {platform.python_version()}; "
             f"command: python benchmarks/versus.py --data-dir DIR --models {args.models} --rounds {args.rounds}"
             + "".join(f" --variant {shlex.quote(v)}" for v in args.variant) + (" --no-plain" if args.no_plain else "")
             + (" --no-plain-jax" if args.no_plain_jax else "")
             + (f" --plain-env {shlex.quote(args.plain_env)}" if args.plain_env else ""),
             "samples/s: (E - 1) x training images / (wall(--epochs E) - wall(--epochs 1)) of the whole command, "
             "median over rounds (min-max); rows alternated, order reversed every other round.",
             ""]
    for model, res in results.items():
        rows = res["rows"]
        med = {name: median([r["samples_per_s"] for r in runs]) for name, runs in rows.items()}
        torch_rate, torch_val = med.get("plain PyTorch"), med.get("plain PyTorch + validation")
        gemm_rate = med.get("GEMM-only limit (numpy BLAS)")
        spec = MODELS[model]
        loads = ", ".join(f"{a[0]:.2f}->{b[0]:.2f}" for a, b in res["loads"])
        lines.append(f"{model}: batch {batch_size(model)}, {spec['train']} training images per epoch, "
                     f"E = {spec['epochs']}"
                     + (f", --limit {spec['limit']} (ours validates on as many test images; the plain loops "
                        "--validate)" if spec["limit"] else "") + "; "
                     f"load average (1 min) before->after each round: {loads}")
        head = f"  {'row':<44} {'samples/s':>10} {'(min-max)':>15} {'x PyTorch':>10} {'x PT+val':>9}"
        head += f" {'% GEMM-only':>12}" if gemm_rate else ""
        head += f" {'CPU/wall':>9} {'per CPU-s':>10} {'loss':>8}"
        lines.append(head)
        for name, runs in rows.items():
            rates = [r["samples_per_s"] for r in runs]
            line = f"  {name:<44} {med[name]:>10.0f} {'(' + f'{min(rates):.0f}-{max(rates):.0f}' + ')':>15}"
            line += f" {med[name] / torch_rate:>9.2f}x" if torch_rate else f" {'':>10}"
            line += f" {med[name] / torch_val:>8.2f}x" if torch_val else f" {'':>9}"
            if gemm_rate:
                line += f" {100 * med[name] / gemm_rate:>11.0f}%"
            cpu = [r["cpu_per_wall"] for r in runs if "cpu_per_wall" in r]
            loss = [r["last_loss"] for r in runs if r.get("last_loss") is not None]
            line += f" {median(cpu):>9.2f}" if cpu else f" {'':>9}"
            per_cpu = [r["samples_per_s"] / r["cpu_per_wall"] for r in runs if r.get("cpu_per_wall", 0) > 0]
            line += f" {median(per_cpu):>10.0f}" if per_cpu else f" {'':>10}"
            line += f" {loss[-1]:>8.2f}" if loss else ""
            lines.append(line)
        for name, cmd in res["commands"].items():
            lines.append(f"  {name}: {cmd}")
        if gemm_rate:
            g = rows["GEMM-only limit (numpy BLAS)"]
            lines.append(f"  GEMM-only limit: {g[0]['products']} products per training step (convolutions as "
                         f"im2col products), median {median([r['step_ms'] for r in g]):.2f} ms/step = "
                         f"{median([r['gflops'] for r in g]):.0f} GFLOP/s (numpy's BLAS, its default threads)"
                         + ("; plus the forward products of validating on as many test images" if spec["validate"]
                            else ""))
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", help="where the datasets are (as the train scripts' --data-dir)")
    p.add_argument("--models", default="mnist,cifar10", help="comma-separated, of: " + ", ".join(MODELS)
                   + "; NAME:N runs N rounds of that model instead of --rounds")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    p.add_argument("--variant", action="append", default=[],
                   help='another row of ours: "NAME: [ENV=VALUE ...] [--flag ...]" (repeatable)')
    p.add_argument("--no-plain", action="store_true", help="only ours and its variants (and the GEMM-only limit)")
    p.add_argument("--no-plain-jax", action="store_true", help="no plain JAX rows (CIFAR-10's take 3 of a round's "
                   "5 minutes)")
    p.add_argument("--plain-env", default="", help='environment of every plain row: "K=V ..." (e.g. '
                                                   'OMP_WAIT_POLICY=PASSIVE on a busy machine)')
    p.add_argument("--out", help="report path (default results/benchmarks/versus-<UTC date-time>.txt)")
    args = p.parse_args(argv)
    models, rounds = [], {}
    for m in (m for m in args.models.split(",") if m):
        name, _, n = m.partition(":")
        if n and not n.isdigit():
            p.error(f"rounds of {name} must be a number, got {n!r}")
        models.append(name)
        rounds[name] = int(n) if n else args.rounds
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {unknown}; choose from {sorted(MODELS)}")
    started = datetime.datetime.now(datetime.timezone.utc)
    results = measure(models, rounds, [parse_variant(v) for v in args.variant], args.data_dir,
                      lambda line: print(line, flush=True), plain_loops=not args.no_plain,
                      plain_jax=not args.no_plain_jax,
                      plain_env=parse_variant(f"env: {args.plain_env}")["env"])
    text = report(results, args, started)
    print(text)
    out = Path(args.out or ROOT / "results" / "benchmarks" / f"versus-{started:%Y-%m-%d-%H%M}.txt")
    out.write_text(without_folders(text) + "\n")
    saved = {**vars(args), "data_dir": "DIR" if args.data_dir else None, "out": None}  # no folders of this machine
    report_json = json.dumps({"args": saved, "results": results}, indent=1)
    out.with_suffix(".json").write_text(without_folders(report_json) + "\n")
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
