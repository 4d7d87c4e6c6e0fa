#!/usr/bin/env python3
"""Re-train every model from the real data, regenerate the images in results/, score every model and write
results/results.md (the results table). ``make results`` runs this.

    python make_results.py --data-dir DIR                   # hours on a CPU: trains everything
    python make_results.py --data-dir DIR --skip-training   # re-score and re-render from models/
    python make_results.py --data-dir DIR --only caltech    # some steps only
    python make_results.py --dry-run                        # the commands only
    python make_results.py --table-only                     # only re-render the table from models/*_eval.json
"""

import argparse
import os
import platform
import re
import subprocess
import sys

from vaelab.cli import options as cli
from vaelab.evaluation import results
from vaelab.core.errors import UserError


def main(argv):
    p = cli.OneLineErrorParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", help="dataset directory (default: $VAELAB_DATA_DIR, then ~/.keras/datasets)")
    p.add_argument("--models-dir", default="models")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--skip-training", action="store_true", help="use the models already in --models-dir")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--table-only", action="store_true",
                   help="run nothing: render results/results.md from the eval files in --models-dir")
    p.add_argument("--only", metavar="REGEX", help="run only the steps whose name matches (e.g. 'caltech|fashion'); "
                   "the table is still rendered from every model in --models-dir")
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)
    common = ["--models-dir", args.models_dir, "--results-dir", args.results_dir]
    if args.data_dir:
        common = ["--data-dir", args.data_dir, *common]
    commands, failed = [], []
    for step in results.STEPS:
        recorded = " ".join(["python", *cli.shareable_argv([*step.argv, *common])])  # for results.md: no folders
        if args.table_only:
            commands.append(recorded)
            continue
        if (step.training and args.skip_training) or (args.only and not re.search(args.only, step.name)):
            continue
        cmd = [sys.executable, *step.argv, *common]
        shown = " ".join(["python", *step.argv, *common])
        commands.append(recorded)
        print(f"== {step.name}: {shown}", flush=True)
        if args.dry_run:
            continue
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "Agg"})
        sys.stdout.write(proc.stdout[-2000:])
        if proc.returncode != 0:
            failed.append(step.name)
            print(f"   failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}", flush=True)
            continue
        speed = results.training_speed(proc.stdout)
        saved = re.search(r"saved (\S+)_vae\.h5", proc.stdout)
        if step.training and speed and saved:
            results.save_speed(args.models_dir, os.path.basename(saved.group(1)), speed)
    if args.dry_run:
        return 0
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, no GPU"
    print(f"saved {results.write_results(args.models_dir, args.results_dir, machine, commands)}")
    if failed:
        raise UserError(f"{len(failed)} step(s) failed: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    cli.run(main)
