"""The evaluate stage: score a saved model on its test set, print a table and write ``<prefix>_eval.json``.

One entry point for every dataset: ``python evaluate.py --dataset mnist_binarized --k 5000``. The dataset
picks the :class:`~vaelab.experiments.Experiment` (its data, its params, its model names); the numbers come
from :mod:`vaelab.metrics`:

- the test ELBO in nats, split into reconstruction and KL (kl_weight 1, whatever the model trained with), and
  the KL of each stochastic layer with its active units (Burda et al.: posterior-mean variance over the test
  images above 0.01), which shows a collapsed layer;
- the importance-weighted NLL bound with k samples per image (Burda et al. 2015), with its standard error
  over the test images, and the same in bits per dimension;
- with ``--fid``, the Fréchet distance of generated samples to the test images in the features of a small
  per-dataset classifier (:mod:`vaelab.classifier`), and that classifier's accuracy on reconstructions.

A Bernoulli decoder on grey-level images gives a cross-entropy, not a likelihood: the table says so, and
``mnist_binarized`` is the setup whose numbers compare with the literature.
"""

from __future__ import annotations

import argparse
import datetime
import math
import platform
import time
from pathlib import Path

import numpy as np

from vaelab import artifacts, cli
from vaelab import experiments as experiments_mod
from vaelab.errors import UserError
from vaelab.experiments import model_inputs
from vaelab.train import check_writable
from vaelab.trained import load_vae


def params_module_for(exp):
    """The params module users edit for ``exp`` (``mnist_params``), read inside the error boundary; None when it
    is not there."""
    from vaelab import paramsfile

    return paramsfile.read_module(exp.params_module, missing_ok=True)


def is_binary(x: np.ndarray) -> bool:
    return bool(np.all((x == 0) | (x == 1)))


def evaluate_model(vae, x: np.ndarray, k: int, seed: int = 0, elbo_samples: int = 1, verbose: int = 1
                   ) -> dict:
    """ELBO terms and the IWAE NLL (means over ``x``, nats), with standard errors, and bits/dim when the
    likelihood is a probability of these images."""
    from vaelab import metrics

    discrete = vae.likelihood.is_probability_of(x)
    dims = int(np.prod(x.shape[1:]))
    started = time.perf_counter()
    terms = metrics.elbo(vae, x, samples=elbo_samples, seed=seed)
    elbo_seconds = time.perf_counter() - started
    result = {
        "test_images": int(len(x)),
        "dims": dims,
        "elbo_nats": float(terms["elbo"].mean()),
        "elbo_stderr": float(terms["elbo"].std() / math.sqrt(len(x))),
        **({"elbo_bits_per_dim": metrics.bits_per_dim(-terms["elbo"].mean(), dims)} if discrete else {}),
        "reconstruction_nats": float(terms["reconstruction"].mean()),
        "kl_nats": float(terms["kl"].mean()),
        "elbo_seconds": round(elbo_seconds, 2),
        "latent_layers": metrics.latent_layers(vae, x, seed=seed),
        "likelihood": vae.likelihood.name,
        "binary_data": is_binary(x),
    }
    if k:
        started = time.perf_counter()
        log_px = metrics.iwae_log_likelihood(vae, x, k=k, seed=seed, verbose=verbose)
        result.update({
            "k": int(k),
            "iwae_nll_nats": float(-log_px.mean()),
            "iwae_nll_stderr": float(log_px.std() / math.sqrt(len(x))),
            **({"iwae_bits_per_dim": metrics.bits_per_dim(-log_px.mean(), dims)} if discrete else {}),
            "iwae_seconds": round(time.perf_counter() - started, 2),
        })
    return result


def table(title: str, rows: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join([title, *(f"  {name:<{width}}  {value}" for name, value in rows)])


def result_rows(r: dict) -> list[tuple[str, str]]:
    from vaelab.metrics import layer_summary

    rows = [("-ELBO", f"{-r['elbo_nats']:.2f} nats = reconstruction {r['reconstruction_nats']:.2f} "
                      f"+ KL {r['kl_nats']:.2f}  (standard error {r['elbo_stderr']:.2f})"
                      + (f" = {r['elbo_bits_per_dim']:.4f} bits/dim" if "elbo_bits_per_dim" in r else ""))]
    rows += [(f"KL, {layer['layer']} latent", layer_summary(layer)) for layer in r.get("latent_layers", [])]
    if "iwae_nll_nats" in r:
        bits = f" = {r['iwae_bits_per_dim']:.4f} bits/dim" if "iwae_bits_per_dim" in r else ""
        rows.append((f"NLL, IWAE k = {r['k']}", f"{r['iwae_nll_nats']:.2f} nats{bits}  "
                                                f"(standard error {r['iwae_nll_stderr']:.2f})"))
    if "fid" in r:
        rows.append(("Fréchet distance", f"{r['fid']:.2f} samples vs test, {r['fid_reconstructions']:.2f} "
                                         f"reconstructions vs test, {r['fid_train_vs_test']:.2f} train vs test "
                                         f"({r['fid_samples']} images each, {r['fid_features']}-d features of "
                                         f"{r['classifier']})"))
        rows.append(("classifier accuracy", f"{r['classifier_accuracy_reconstructions']:.4f} on reconstructions, "
                                            f"{r['classifier_accuracy_test']:.4f} on the test images"))
    if not r["binary_data"] and r["likelihood"] == "bernoulli":
        rows.append(("note", "Bernoulli decoder on non-binary pixels: a cross-entropy, not a likelihood "
                             "(--dataset mnist_binarized gives comparable numbers)"))
    return rows


def machine() -> dict:
    import os

    import keras

    return {"backend": keras.backend.backend(), "keras": keras.__version__, "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def shareable_command(argv) -> str:
    """The command recorded in ``<prefix>_eval.json`` (and so in ``results/results.md``): ``python evaluate.py``
    and ``argv``, with every data, models, results, model or output path of this machine (absolute, in a home
    folder, or outside the project) written as ``DIR``, so committed results name no developer's folders."""
    return " ".join(["python evaluate.py", *cli.shareable_argv(argv)])


def evaluate_command(argv) -> int:
    """``evaluate.py``: parse, load, score, print the table and write ``<models-dir>/<prefix>_eval.json``."""
    names = experiments_mod.DATASETS
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--dataset", choices=sorted(names), default="mnist")
    known, _ = pre.parse_known_args(argv)
    exp = names[known.dataset]
    module = params_module_for(exp)
    p = cli.parser("Score a trained VAE on its test set: ELBO, importance-weighted NLL (and with --fid the "
                   "Fréchet distance); print a table and write <prefix>_eval.json in --models-dir.",
                   exp.params_cls, module, extra_flags=False)
    g = p.add_argument_group("evaluation")
    g.add_argument("--dataset", choices=sorted(names), default="mnist", help="which experiment (default: mnist)")
    cli.add_model_option(g, "ld_2_id_512_e_60")
    g.add_argument("--k", type=int, default=1000, help="importance samples per test image (default 1000; "
                                                       "5000 for publication numbers; 0 skips the IWAE bound)")
    g.add_argument("--elbo-samples", type=int, default=1, help="latent samples per image for the ELBO's "
                                                               "reconstruction term (default 1)")
    g.add_argument("--fid", action="store_true", help="also the Fréchet distance and classifier accuracy")
    g.add_argument("--fid-samples", type=int, default=10000, help="generated samples for --fid (default 10000)")
    g.add_argument("--eval-seed", type=int, default=0, help="seed of the evaluation noise (default 0)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--out", metavar="PATH", help="write the JSON here instead of <models-dir>/<prefix>_eval.json "
                                                 "(e.g. a k = 5000 run on a --limit subset beside the full one)")
    args = p.parse_args(argv)
    if args.k < 0 or args.elbo_samples < 1 or args.fid_samples < 2:
        raise UserError("--k must be >= 0, --elbo-samples >= 1 and --fid-samples >= 2")
    params = cli.params_from_args(exp.params_cls, module, args)
    check_writable(args.models_dir)
    vae, files, params = load_vae(exp, params, args.models_dir, args.model)
    params = params.with_generation_choices(args)  # --sampler, --gmm-components: how to generate, not the model
    data = exp.dataset(params, args.data_dir, args.limit)
    x = model_inputs(data.x_test, len(vae.encoder.inputs[0].shape) == 2)
    print(f"{exp.name}: {files.prefix} on {len(x)} test images from {data.source}")
    result = {"dataset": exp.name, "model": files.prefix, "params": params.to_dict(), "seed": args.eval_seed,
              "command": shareable_command(argv)}
    result.update(evaluate_model(vae, x, args.k, args.eval_seed, args.elbo_samples, verbose=0 if args.quiet else 1))
    if args.fid:
        from vaelab import classifier

        result.update(classifier.generation_quality(exp, vae, params, files, args.data_dir, args.models_dir,
                                                    args.fid_samples, sampler=args.sampler, seed=args.eval_seed,
                                                    limit=args.limit))
    result["machine"] = machine()
    print(table(f"{exp.name} {files.prefix} ({result['test_images']} test images)", result_rows(result)))
    out = Path(args.out) if args.out else Path(files.models_dir) / f"{files.prefix}_eval.json"
    path = artifacts.save_json(result, out)
    print(f"saved {path}")
    return 0
