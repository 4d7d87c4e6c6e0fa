#!/usr/bin/env python3
"""TensorFlow's CPU allocator: malloc against its BFC arena, on one train command, alternated in one run.

Each round runs the command twice, ``TF_CPU_ALLOCATOR_USE_BFC=false`` (malloc, TensorFlow's own default)
and ``=true`` (what the scripts now set), and records per run the wall time, the CPU time in user space and in
the kernel, the minor page faults and the peak resident memory (``os.wait4``'s figures for that child alone).
Medians over the rounds and their ratios go to ``results/benchmarks/allocator-<date>.{txt,json}``.

    python benchmarks/allocator.py --data-dir DIR                         # CIFAR-10 conv, 2,000 images, 2 epochs
    python benchmarks/allocator.py --data-dir DIR --script caltech101_92_train.py --limit 1024 --rounds 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vaelab.evaluation.benchmark import cpu_description  # noqa: E402

MODES = {"malloc": "false", "bfc": "true"}


def command_shown(argv: list[str]) -> str:
    """The command line with ``--data-dir``'s folder written as DIR: reports name no folder of this machine."""
    shown = list(argv)
    for i, word in enumerate(shown[:-1]):
        if word == "--data-dir":
            shown[i + 1] = "DIR"
    return " ".join(["python", "benchmarks/allocator.py", *shown[1:]])


def run_once(script: str, mode: str, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, str(ROOT / script), "--limit", str(args.limit), "--epochs", str(args.epochs),
               "--models-dir", out, "--results-dir", out, "--no-tensorboard"]
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        env = {**os.environ, "TF_CPU_ALLOCATOR_USE_BFC": MODES[mode], "KERAS_BACKEND": "tensorflow"}
        started = time.perf_counter()
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        if status:
            raise SystemExit(f"error: {' '.join(cmd)} failed: {child.stderr.read().decode()[-2000:]}")
        child.stderr.close()
    return {"mode": mode, "wall_s": wall, "user_s": usage.ru_utime, "sys_s": usage.ru_stime,
            "minor_faults": usage.ru_minflt, "peak_rss_mb": usage.ru_maxrss / 1024}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir")
    p.add_argument("--script", default="cifar10_train.py")
    p.add_argument("--limit", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    runs = []
    for r in range(args.rounds):
        for mode in (MODES if r % 2 == 0 else reversed(MODES)):  # alternate which goes first
            runs.append({"round": r + 1, **run_once(args.script, mode, args)})
            print(json.dumps(runs[-1]), flush=True)
    keys = ("wall_s", "user_s", "sys_s", "minor_faults", "peak_rss_mb")
    med = {m: {k: statistics.median(x[k] for x in runs if x["mode"] == m) for k in keys} for m in MODES}
    ratio = {k: med["malloc"][k] / med["bfc"][k] for k in keys}
    stamp = datetime.datetime.now(datetime.timezone.utc)
    lines = [f"{args.script} --limit {args.limit} --epochs {args.epochs}, {args.rounds} rounds, "
             f"{stamp:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, {cpu_description()}, load average {os.getloadavg()[0]:.1f} at the end",
             f"{'':8}" + "".join(f"{k:>14}" for k in keys)]
    lines += [f"{m:8}" + "".join(f"{med[m][k]:14.1f}" for k in keys) for m in MODES]
    lines.append(f"{'malloc/bfc':8}" + "".join(f"{ratio[k]:14.2f}" for k in keys))
    print("\n".join(lines))
    out = ROOT / "results" / "benchmarks" / f"allocator-{stamp:%Y-%m-%d-%H%M}"
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"command": command_shown(sys.argv), "runs": runs, "medians": med,
                                                    "ratios": ratio}, indent=2) + "\n")
    print(f"saved {out}.txt")


if __name__ == "__main__":
    main()
