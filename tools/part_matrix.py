#!/usr/bin/env python3
"""The part matrix: does every family x architecture train, save and load on every dataset's image size and backend?

For each backend installed (a child process per backend, ``KERAS_BACKEND`` set) and each family x architecture x
dataset, build the dataset's VAE with small widths and its own likelihood, train two steps on random images (with
random labels for the conditional family), save the VAE, encoder and decoder (.h5), load them in safe mode and
check that the reloaded decoder gives the same images (the conditional one: for two different labels, which must
give different images). Prints a Markdown table (``ok``, or the one-line reason a combination cannot be made,
or the error).

Families (``--families``): ``plain`` (N(0, I) prior, unconditional), ``conditional`` (``--conditional``),
``mog`` and ``vamp`` (``--prior mog|vamp``, 4 components); the discrete latents are the ``vq`` architecture.

    python tools/part_matrix.py                    # the plain family, every backend installed
    python tools/part_matrix.py --families conditional,mog,vamp
    python tools/part_matrix.py --backends tensorflow --architectures resnet,hierarchical
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SMALL = {"filters": 4, "intermediate_dim": 16, "latent_dim": 3, "blocks": 1, "latent_channels": 2,
         "hidden_dims": "", "batch_size": 4, "codebook_size": 8, "codebook_dim": 3}
FAMILIES = {"plain": {}, "conditional": {"conditional": True}, "mog": {"prior": "mog", "prior_components": 4},
            "vamp": {"prior": "vamp", "prior_components": 4}}


def one(dataset: str, architecture: str, family: str = "plain") -> str:
    """Train, save and reload one combination; 'ok (seconds)' or the reason it cannot."""
    import dataclasses

    import keras
    import numpy as np

    from vaelab.core import artifacts
    from vaelab.models import saving
    from vaelab.core.errors import UserError
    from vaelab.config.experiments import DATASETS, model_inputs
    from vaelab.models.vae import build_vae, image_decoder, mean_encoder
    from vaelab.config.params import Params

    exp = DATASETS[dataset]
    started = time.perf_counter()
    try:
        fields = {f.name for f in dataclasses.fields(Params)}
        params = exp.params_cls(**{k: v for k, v in SMALL.items() if k in fields}, architecture=architecture,
                                **FAMILIES[family])
    except UserError as e:
        return f"cannot: {e}"
    keras.utils.set_random_seed(0)
    vae = build_vae(params, exp.image_shape, binarize=exp.binarize)
    vae.compile(optimizer="adam")
    flat = len(vae.encoder.inputs[0].shape) == 2
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, *exp.image_shape), dtype=np.uint8)
    labels = None
    if params.conditional:
        from vaelab.models.conditional import pack

        labels = rng.integers(0, vae.n_classes, 8)
        x = model_inputs(pack(images, labels), flat, packed=True)
    else:
        x = model_inputs(images, flat)
    loss = vae.fit(x, batch_size=4, epochs=1, verbose=0).history["loss"][-1]
    if not np.isfinite(loss):
        return f"loss {loss}"
    if getattr(vae, "discrete", False):  # vq: images -> code maps -> images
        from vaelab.models.vq import code_decoder, code_encoder

        encoder, decoder = code_encoder(vae), code_decoder(vae)
        z = np.random.default_rng(1).integers(0, params.codebook_size, (2, *vae.code_shape)).astype("int32")
    else:
        encoder, decoder = mean_encoder(vae.encoder), image_decoder(vae)
        z = np.random.default_rng(1).standard_normal((2, params.latent_dim)).astype("float32")
    if labels is not None:  # the same code with two labels: the decoder's input is [z, label]
        z = [np.repeat(z[:1], 2, axis=0), np.array([[0], [vae.n_classes - 1]], dtype="int32")]

    def draw(model):
        return keras.ops.convert_to_numpy(model(z))

    with tempfile.TemporaryDirectory() as d:
        for name, model in (("vae", vae), ("encoder", encoder), ("decoder", decoder)):
            artifacts.save_model(model, Path(d) / f"{name}.h5")
        again = saving.load_model(Path(d) / "decoder.h5")
        before, after = draw(decoder), draw(again)
        same = np.allclose(after, before, atol=1e-5)
        saving.load_model(Path(d) / "vae.h5")
        saving.load_model(Path(d) / "encoder.h5")
    if labels is not None and np.abs(before[0] - before[1]).max() < 1e-6:
        return "the label does not change the image"
    return f"ok ({time.perf_counter() - started:.0f} s)" if same else "reloaded decoder differs"


def child(datasets: list[str], architectures: list[str], families: list[str]) -> dict:
    out = {}
    for family in families:
        for arch in architectures:
            for dataset in datasets:
                key = f"{family}/{arch}/{dataset}"
                try:
                    out[key] = one(dataset, arch, family)
                except Exception as e:  # noqa: BLE001 - the table reports any failure
                    out[key] = f"error: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
    return out


def main() -> int:
    from vaelab.models import registry as parts
    from vaelab.config.experiments import DATASETS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="tensorflow,jax,torch")
    p.add_argument("--architectures", default=",".join(parts.ARCHITECTURES))
    p.add_argument("--datasets", default=",".join(n for n in DATASETS if n != "mnist_binarized"))
    p.add_argument("--families", default="plain", help="comma-separated, of: " + ", ".join(FAMILIES))
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    datasets, architectures = args.datasets.split(","), args.architectures.split(",")
    families = args.families.split(",")
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        p.error(f"unknown families {unknown}; choose from {list(FAMILIES)}")
    if args.child:
        print(json.dumps(child(datasets, architectures, families)))
        return 0
    results = {}
    for backend in args.backends.split(","):
        if importlib.util.find_spec({"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]) is None:
            continue
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
        proc = subprocess.run([sys.executable, __file__, "--child", "--datasets", args.datasets, "--architectures",
                               args.architectures, "--families", args.families], env=env, capture_output=True,
                              text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        results[backend] = json.loads(lines[-1]) if lines else {"all": f"failed: {proc.stderr.strip()[-300:]}"}
    backends = list(results)
    print("| family | architecture | dataset | " + " | ".join(backends) + " |")
    print("|---|---|---|" + "---|" * len(backends))
    for family in families:
        for arch in architectures:
            for dataset in datasets:
                key = f"{family}/{arch}/{dataset}"
                print(f"| {family} | {arch} | {dataset} | "
                      + " | ".join(results[b].get(key, results[b].get("all", "?")) for b in backends) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
