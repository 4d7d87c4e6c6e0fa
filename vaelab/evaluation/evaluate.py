"""The evaluate stage: score a saved model on its test set, print a table and write ``<prefix>_eval.json``.

One entry point for every dataset: ``python evaluate.py --dataset mnist_binarized --k 5000``. The dataset
picks the :class:`~vaelab.config.experiments.Experiment` (its data, its params, its model names); the numbers come
from :mod:`vaelab.evaluation.metrics`:

- the test ELBO in nats, split into reconstruction and KL (kl_weight 1, whatever the model trained with), and
  the KL of each stochastic layer with its active units (Burda et al.: posterior-mean variance over the test
  images above 0.01), which shows a collapsed layer;
- the importance-weighted NLL bound with k samples per image (Burda et al. 2015), with its standard error
  over the test images, and the same in bits per dimension;
- with ``--fid``, the Fréchet distance of generated samples to the test images in the features of a small
  per-dataset classifier (:mod:`vaelab.evaluation.classifier`), and that classifier's accuracy on reconstructions.

A Bernoulli decoder on grey-level images gives a cross-entropy, not a likelihood: the table says so, and
``mnist_binarized`` is the setup whose numbers compare with the literature.
"""

from __future__ import annotations

import datetime
import math
import platform
import time

import numpy as np



def is_binary(x: np.ndarray) -> bool:
    return bool(np.all((x == 0) | (x == 1)))


def evaluate_model(vae, x: np.ndarray, k: int, seed: int = 0, elbo_samples: int = 1, verbose: int = 1
                   ) -> dict:
    """ELBO terms and the IWAE NLL (means over ``x``, nats), with standard errors, and bits/dim when the
    likelihood is a probability of these images."""
    from vaelab.evaluation import metrics

    images = x[..., :-1] if vae.conditional else x  # a conditional model's inputs end in their labels
    discrete = vae.likelihood.is_probability_of(images)
    dims = int(np.prod(images.shape[1:]))
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
        "binary_data": is_binary(images),
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
    from vaelab.evaluation.metrics import layer_summary

    rows = [("-ELBO", f"{-r['elbo_nats']:.2f} nats = reconstruction {r['reconstruction_nats']:.2f} "
                      f"+ KL {r['kl_nats']:.2f}  (standard error {r['elbo_stderr']:.2f})"
                      + (f" = {r['elbo_bits_per_dim']:.4f} bits/dim" if "elbo_bits_per_dim" in r else ""))]
    rows += [(f"KL, {layer['layer']} latent", layer_summary(layer)) for layer in r.get("latent_layers", [])]
    if "iwae_nll_nats" in r:
        bits = f" = {r['iwae_bits_per_dim']:.4f} bits/dim" if "iwae_bits_per_dim" in r else ""
        rows.append((f"NLL, IWAE k = {r['k']}", f"{r['iwae_nll_nats']:.2f} nats{bits}  "
                                                f"(standard error {r['iwae_nll_stderr']:.2f})"))
    if "fid" in r:
        on = "validation" if r.get("split") == "validation" else "test"
        rows.append(("Fréchet distance", f"{r['fid']:.2f} samples vs {on}, {r['fid_reconstructions']:.2f} "
                                         f"reconstructions vs {on}, {r['fid_train_vs_test']:.2f} train vs {on} "
                                         f"({r['fid_samples']} images each, {r['fid_features']}-d features of "
                                         f"{r['classifier']})"))
        rows.append(("classifier accuracy", f"{r['classifier_accuracy_reconstructions']:.4f} on reconstructions, "
                                            f"{r['classifier_accuracy_test']:.4f} on the {on} images"
                     + (f", {r['conditional_accuracy']:.4f} on samples of the classes asked for"
                        if "conditional_accuracy" in r else "")))
        if r.get("fid_validation_by_temperature"):
            sweep = ", ".join(f"{t}: {d:.2f}" for t, d in r["fid_validation_by_temperature"].items())
            rows.append(("temperature", f"{r['fid_temperature']:g}, chosen on {r['fid_validation_images']} "
                                        f"validation images (Fréchet distance by temperature: {sweep})"))
        elif "fid_temperature" in r:
            rows.append(("temperature", f"{r['fid_temperature']:g} (the lower latents of the samples)"))
        if r.get("conditional_fid_per_class"):
            per = r["conditional_fid_per_class"]
            rows.append(("Fréchet distance per class", ", ".join(f"{c}: {v:.1f}" for c, v in per.items())))
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
