"""One-command results: the steps that re-train and re-score every model, and the results table they fill.

``make results`` (``python make_results.py``) runs :data:`STEPS` in order from the real data directory, each
as its own process so one dataset's failure is reported and the rest still run, then writes
``results/results.md``: one row per ``models/*_eval.json`` with the model, its epochs, test -ELBO, NLL,
bits/dim, Fréchet distance and the training speed the train step printed. The table is built only from the
files, so ``--skip-training`` re-renders it from models already on disk.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from pathlib import Path

from vaelab.core import artifacts


@dataclass(frozen=True)
class Step:
    name: str
    argv: tuple[str, ...]
    training: bool = False  # skipped by --skip-training


# Epochs are sized for one 2-core CPU in about two hours in all (the params files' defaults are longer
# runs); every train step's options are repeated in the steps that read its model, so the names match.
_MNIST3 = ("--latent-dim", "3")
_BIN = ("--epochs", "60")
_FASHION = ("--epochs", "12")
_CIFAR = ("--epochs", "20", "--likelihood", "discretized_logistic", "--latent-dim", "64", "--intermediate-dim",
          "256")
_CAL92 = ("--epochs", "10")
_CAL128 = ("--epochs", "5")

STEPS = (
    Step("train mnist (784-512-2)", ("mnist_train.py",), training=True),
    Step("mnist images", ("mnist_2d_latent_space_and_generate.py", "--no-prompt", "--z", "0,0", "--z", "-1.5,1")),
    Step("mnist random grid", ("mnist_generate.py", "--no-prompt")),
    Step("evaluate mnist", ("evaluate.py", "--dataset", "mnist", "--k", "100", "--fid", "--quiet")),
    Step("train mnist 3-d (784-512-3)", ("mnist_train.py", *_MNIST3), training=True),
    Step("mnist 3-d images", ("mnist_3d_latent_space_and_generate.py", "--no-prompt", *_MNIST3)),
    Step("evaluate mnist 3-d", ("evaluate.py", "--dataset", "mnist", *_MNIST3, "--k", "100", "--fid", "--quiet")),
    Step("train binarized mnist (784-500-500-50)", ("mnist_binarized_train.py", *_BIN), training=True),
    Step("evaluate binarized mnist", ("evaluate.py", "--dataset", "mnist_binarized", *_BIN, "--k", "1000", "--fid",
                                      "--quiet")),
    Step("train fashion-mnist", ("fashion_mnist_train.py", *_FASHION), training=True),
    Step("fashion-mnist morphs", ("fashion_mnist_morph.py", *_FASHION)),
    Step("fashion-mnist interpolations", ("fashion_mnist_morph.py", *_FASHION, "--mode", "interpolate", "--from",
                                          "t-shirt", "--to", "trouser", "--from", "sandal", "--to", "ankle-boot")),
    Step("evaluate fashion-mnist", ("evaluate.py", "--dataset", "fashion_mnist", *_FASHION, "--k", "100", "--fid",
                                    "--quiet")),
    Step("train cifar-10 (discretized logistic)", ("cifar10_train.py", *_CIFAR), training=True),
    Step("cifar-10 images", ("cifar10_generate.py", "--no-prompt", *_CIFAR)),
    Step("evaluate cifar-10", ("evaluate.py", "--dataset", "cifar10", *_CIFAR, "--k", "100", "--limit", "2000",
                               "--fid", "--quiet")),
    Step("train caltech101 92 px", ("caltech101_92_train.py", *_CAL92), training=True),
    Step("caltech101 92 px images", ("caltech101_generate.py", "--no-prompt", *_CAL92)),
    Step("evaluate caltech101 92 px", ("evaluate.py", "--dataset", "caltech101_92", *_CAL92, "--k", "20", "--quiet")),
    Step("train caltech101 128 px", ("caltech101_128_train.py", *_CAL128), training=True),
    Step("caltech101 128 px images", ("caltech101_generate.py", "--no-prompt", "--size", "128", *_CAL128)),
    Step("evaluate caltech101 128 px", ("evaluate.py", "--dataset", "caltech101_128", *_CAL128, "--k", "10",
                                        "--quiet")),
)

SPEED = re.compile(r"trained (\d+) epochs in ([\d.]+) s \(([\d.]+) s/epoch, (\d+) samples/s\)")


def training_speed(stdout: str) -> dict | None:
    """The numbers of the 'trained N epochs in …' line :func:`vaelab.training.loop.fit` prints."""
    m = SPEED.search(stdout)
    if not m:
        return None
    return {"epochs": int(m.group(1)), "seconds": float(m.group(2)), "samples_per_s": int(m.group(4))}


def save_speed(models_dir, prefix: str, speed: dict) -> Path:
    return artifacts.save_json(speed, Path(models_dir) / f"{prefix}_speed.json")


def _fmt(value, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "–"


def table_rows(models_dir) -> list[dict]:
    """One row per ``*_eval*.json`` in ``models_dir`` (``evaluate.py --out`` names like ``<prefix>_eval_k5000.json``
    included), sorted by dataset, model, k and test images."""
    rows = []
    for path in sorted(Path(models_dir).glob("*_eval*.json")):
        r = json.loads(path.read_text())
        speed_path = path.with_name(f"{r['model']}_speed.json")
        speed = json.loads(speed_path.read_text()) if speed_path.exists() else {}
        if "elbo_nats" not in r:  # a vq model: its ELBO is the two-stage bound, whose KL is -log p_PixelCNN(codes)
            r = {**r, "elbo_nats": -r.get("two_stage_nll_nats", float("nan")), "kl_nats": r.get("prior_nats")}
        rows.append({"dataset": r["dataset"], "model": r["model"], "epochs": r.get("params", {}).get("epochs"),
                     "test_images": r.get("test_images"), "neg_elbo": -r["elbo_nats"],
                     "recon": r.get("reconstruction_nats"), "kl": r.get("kl_nats"), "k": r.get("k"),
                     "nll": r.get("iwae_nll_nats"), "bpd": r.get("iwae_bits_per_dim"), "fid": r.get("fid"),
                     "fid_samples": r.get("fid_samples"), "fid_floor": r.get("fid_train_vs_test"),
                     "acc_recon": r.get("classifier_accuracy_reconstructions"),
                     "samples_per_s": speed.get("samples_per_s"), "binary": r.get("binary_data"),
                     "likelihood": r.get("likelihood", "bernoulli"),
                     "date": r.get("machine", {}).get("date"), "command": r.get("command")})
    return sorted(rows, key=lambda row: (row["dataset"], row["model"], row["k"] or 0, -(row["test_images"] or 0)))


MARKS = {
    "†": "non-binary pixels under a Bernoulli decoder: a cross-entropy, not a likelihood (nor are its bits/dim); "
         "only the binarized and discretized-logistic rows compare with published numbers.",
    "‡": "a Gaussian density of pixel values in [0, 1] (the MSE decoder), not a probability of 8-bit pixels: not "
         "comparable with discrete likelihoods.",
}


def _mark(row: dict) -> str:
    """† / ‡ for NLLs that are not likelihoods of the (binary or 8-bit) data; '' for those that are."""
    if row["likelihood"].startswith("bernoulli"):
        return "" if row["binary"] else "†"
    return "‡" if row["likelihood"].startswith("gaussian") else ""


def markdown_table(rows: list[dict]) -> str:
    head = ("| dataset | model | epochs | test images | test −ELBO (nats) = recon + KL | NLL, IWAE (nats) | "
            "bits/dim | Fréchet distance (floor) | acc. on recon. | train samples/s |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        nll = f"{_fmt(r['nll'], '.2f')} (k = {r['k']})" if r["nll"] is not None else "–"
        mark = _mark(r)
        if r["nll"] is not None and mark:
            nll += f" {mark}"
        bpd = "–" if mark == "‡" else _fmt(r["bpd"], ".4f")  # a density's "bits" are no bits (older JSONs)
        fid = (f"{_fmt(r['fid'], '.2f')} ({_fmt(r['fid_floor'], '.2f')}), n = {r['fid_samples']}"
               if r["fid"] is not None else "–")
        lines.append(f"| {r['dataset']} | {r['model']} | {_fmt(r['epochs'], 'd')} | {_fmt(r['test_images'], 'd')} | "
                     f"{_fmt(r['neg_elbo'], '.2f')} = "
                     f"{_fmt(r['recon'], '.2f')} + {_fmt(r['kl'], '.2f')} | {nll} | {bpd} | {fid} | "
                     f"{_fmt(r['acc_recon'], '.4f')} | {_fmt(r['samples_per_s'], 'd')} |")
    used = {_mark(r) for r in rows if r["nll"] is not None} - {""}
    lines += [f"\n{mark} {MARKS[mark]}" for mark in sorted(used)]
    return "\n".join(lines)


def write_results(models_dir, results_dir, machine: str, commands: list[str]) -> Path:
    rows = table_rows(models_dir)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join([
        "# Results", "", f"Rendered on {machine}, {when}, from the `*_eval.json` files in `{models_dir}/`.", "",
        markdown_table(rows), "",
        "Fréchet distance: features of the cached per-dataset CNN (vaelab/evaluation/classifier.py), n generated samples "
        "vs the first n test images; the floor in brackets is train vs test images at the same n.", "",
        "Each row was measured by:", "",
        *(f"    {r['command']}    # {r['date']}" for r in rows if r["command"]), "",
        "`make results` runs:", "", *(f"    {c}" for c in commands), ""])
    return artifacts.write_bytes(Path(results_dir) / "results.md", text.encode())
