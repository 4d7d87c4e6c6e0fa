"""The evaluation of a vq model (``architecture = "vq"``): reconstruction, codebook usage, the two-stage bound and
the Fréchet distance of its PixelCNN samples.

A VQ-VAE's posterior q(c | x) is one-hot on the encoder's codes c(x), so its entropy is 0 and the ELBO with the
PixelCNN prior p(c) is exact to write down:

    log p(x) >= E_q[log p(x | c) + log p(c) - log q(c | x)] = log p(x | z_q(x)) + log p_PixelCNN(c(x)),

so ``-log p(x | z_q(x)) - log p_PixelCNN(c(x))`` is an upper bound on the negative log-likelihood (nats per image),
reported in bits/dim where the likelihood is a probability of the test images (binarized pixels under the
Bernoulli, 8-bit pixels under the discretized logistic). It needs the PixelCNN (fitted on first use and saved
beside the model); without it only the reconstruction terms are reported.
"""

from __future__ import annotations

import math
import time

import numpy as np


def codebook_usage(codes: np.ndarray, k: int) -> dict:
    """Perplexity ``exp(H)`` of the codes' frequencies (K when all are used equally) and the codes used at all."""
    counts = np.bincount(np.asarray(codes).reshape(-1), minlength=k).astype(np.float64)
    p = counts / max(counts.sum(), 1.0)
    entropy = -float(np.sum(p[p > 0] * np.log(p[p > 0])))
    return {"codebook_perplexity": math.exp(entropy), "codebook_used": int(np.sum(counts > 0)), "codebook_size": k}


def evaluate_vq(vae, x: np.ndarray, prior=None) -> dict:
    """Reconstruction NLL (nats, and bits/dim where defined), mean squared error, codebook usage of the test
    images ``x``; with ``prior`` (a fitted :class:`vaelab.models.samplers.PixelCnn`) the prior's NLL of their
    codes and the two-stage bound (module docstring)."""
    from vaelab.evaluation.evaluate import is_binary
    from vaelab.evaluation.metrics import bits_per_dim

    started = time.perf_counter()
    log_px, codes = vae.log_px_given_codes(x)
    x_hat = vae.reconstruct(x)
    dims = int(np.prod(x.shape[1:]))
    discrete = vae.likelihood.is_probability_of(x)
    result = {
        "test_images": len(x), "dims": dims, "likelihood": vae.likelihood.name, "binary_data": is_binary(x),
        "architecture": "vq", "code_map": list(codes.shape[1:]),
        "reconstruction_nats": float(-log_px.mean()),
        "reconstruction_stderr": float(log_px.std() / math.sqrt(len(x))),
        **({"reconstruction_bits_per_dim": bits_per_dim(-log_px.mean(), dims)} if discrete else {}),
        "mse": float(np.mean((np.asarray(x, dtype=np.float64) - x_hat) ** 2)),
        **codebook_usage(codes, vae.codebook_size),
    }
    if prior is not None:
        log_pc = prior.log_prob(codes)
        bound = -(log_px + log_pc)
        result.update({
            "prior_nats": float(-log_pc.mean()),
            "prior_bits_per_code": float(-log_pc.mean() / (codes[0].size * math.log(2.0))),
            "two_stage_nll_nats": float(bound.mean()),
            "two_stage_nll_stderr": float(bound.std() / math.sqrt(len(x))),
            **({"two_stage_bits_per_dim": bits_per_dim(bound.mean(), dims)} if discrete else {}),
        })
    result["vq_seconds"] = round(time.perf_counter() - started, 2)
    return result


def result_rows(r: dict) -> list[tuple[str, str]]:
    """The table of a vq model's ``evaluate.py``."""
    bits = f" = {r['reconstruction_bits_per_dim']:.4f} bits/dim" if "reconstruction_bits_per_dim" in r else ""
    rows = [("-log p(x | z_q(x))", f"{r['reconstruction_nats']:.2f} nats{bits}  (standard error "
                                   f"{r['reconstruction_stderr']:.2f}); MSE {r['mse']:.5f}"),
            ("codebook", f"perplexity {r['codebook_perplexity']:.1f}, {r['codebook_used']} of {r['codebook_size']} "
                         f"codes used on the test set ({'x'.join(map(str, r['code_map']))} codes per image)")]
    if "two_stage_nll_nats" in r:
        bits = f" = {r['two_stage_bits_per_dim']:.4f} bits/dim" if "two_stage_bits_per_dim" in r else ""
        rows += [("-log p_PixelCNN(codes)", f"{r['prior_nats']:.2f} nats ({r['prior_bits_per_code']:.3f} bits per "
                                            "code)"),
                 ("two-stage bound on NLL", f"{r['two_stage_nll_nats']:.2f} nats{bits}  (standard error "
                                            f"{r['two_stage_nll_stderr']:.2f})")]
    if "fid" in r:
        rows.append(("Fréchet distance", f"{r['fid']:.2f} samples ({r['fid_sampler']}) vs test, "
                                         f"{r['fid_reconstructions']:.2f} reconstructions vs test, "
                                         f"{r['fid_train_vs_test']:.2f} train vs test ({r['fid_samples']} images "
                                         f"each, {r['fid_features']}-d features of {r['classifier']})"))
        rows.append(("classifier accuracy", f"{r['classifier_accuracy_reconstructions']:.4f} on reconstructions, "
                                            f"{r['classifier_accuracy_test']:.4f} on the test images"))
    if not r["binary_data"] and r["likelihood"] == "bernoulli":
        rows.append(("note", "Bernoulli decoder on non-binary pixels: a cross-entropy, not a likelihood"))
    return rows


def generation_quality(exp, vae, params, files, data_dir, models_dir, n_samples: int = 10000,
                       sampler: str | None = None, seed: int = 0, limit: int | None = None,
                       split: str = "test") -> dict:
    """:func:`vaelab.evaluation.classifier.generation_quality` for a vq model: code maps of ``sampler`` (the
    PixelCNN by default) decoded, against the test images, in the features of the dataset's classifier."""
    from vaelab.config.experiments import DATASETS
    from vaelab.evaluation import metrics
    from vaelab.evaluation.classifier import accuracy_of, features, load_or_train
    from vaelab.models import registry as parts
    from vaelab.models import samplers

    name = exp.classifier or exp.name
    full = DATASETS[name].dataset(params, data_dir, None)
    model, _ = load_or_train(name, full, models_dir, seed=seed)
    data = DATASETS[name].scored(full, params, split).limit(limit)
    own = exp.scored(exp.dataset(params, data_dir, None), params, split)
    chosen = samplers.load_or_fit(parts.sampler(params, sampler), files,
                                  lambda: vae.encode_codes(_floats(own.x_train)), seed=params.seed)
    n = min(n_samples, len(data.x_test), len(data.x_train))
    if chosen.name == "uniform":
        codes = np.random.default_rng(seed).integers(0, vae.codebook_size, size=(n, *vae.code_shape))
    else:
        codes = chosen.sample(n, None, seed)
    samples = _decoded(vae, codes)
    recon = vae.reconstruct(_floats(own.limit(limit).x_test))
    real = features(model, data.x_test[:n])
    return {
        "fid": metrics.frechet_distance(real, features(model, samples)),
        "fid_samples": n, "fid_sampler": chosen.name, "fid_features": int(real.shape[1]),
        "fid_reconstructions": metrics.frechet_distance(real, features(model, recon[:n])),
        "fid_train_vs_test": metrics.frechet_distance(real, features(model, data.x_train[:n])),
        "classifier": f"classifier_{name}.h5",
        "classifier_accuracy_test": accuracy_of(model, data.x_test, data.y_test),
        "classifier_accuracy_reconstructions": accuracy_of(model, recon, data.y_test[:len(recon)]),
    }


def _floats(x: np.ndarray) -> np.ndarray:
    from vaelab.config.experiments import model_inputs

    return model_inputs(x, flat=False)


def _decoded(vae, codes, batch_size: int = 500) -> np.ndarray:
    from keras import ops

    return np.concatenate([ops.convert_to_numpy(vae.likelihood.mean(vae.decode_params(codes[i:i + batch_size])))
                           for i in range(0, len(codes), batch_size)])
