"""Fashion-MNIST's class-mean morphs: decode ``mean_A + alpha * mean_B`` (or the line between the two class means),
the decoded class means, test images over their reconstructions and a panel of samples.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vaelab.cli import options as cli
from vaelab.cli.generate import check_web_port
from vaelab.config import params as params_mod
from vaelab.core.errors import UserError
from vaelab.api.train import train
from vaelab.core.artifacts import check_writable
from vaelab.api import trained_vq
from vaelab.api.trained import Trained, load_trained
from vaelab.data.classes import class_index, class_slug


MORPH_MODES = ("morph", "interpolate")
# Pairs drawn when no --from/--to is given: (A, B) decodes mean_A + alpha * mean_B.
DEFAULT_MORPH_PAIRS = (("t-shirt", "dress"), ("sneaker", "ankle-boot"), ("sandal", "sneaker"), ("trouser", "bag"))


def add_morph_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    g = p.add_argument_group("morphing")
    g.add_argument("--from", dest="from_", action="append", default=[], metavar="A",
                   help="class to start from: a name (dress, t-shirt, ankle-boot, ...) or an index 0-9; "
                        "repeatable, paired in order with --to")
    g.add_argument("--to", action="append", default=[], metavar="B",
                   help="class whose mean is added (morph) or reached (interpolate); repeatable")
    g.add_argument("--mode", choices=MORPH_MODES, default="morph",
                   help="morph: mean_A + alpha * mean_B, alpha in [0, alpha_max]; interpolate: "
                        "(1 - alpha) * mean_A + alpha * mean_B, alpha in [0, 1] (default: morph)")
    g.add_argument("--train", action="store_true", help="train the model first when it does not exist yet")
    cli.add_model_option(g, "fashion_mnist_ld_3_e_18")
    g.add_argument("--show", action="store_true", help="also open the figures in windows (needs a display)")
    cli.add_explore_option(g)
    return p


def morph_pairs(froms: list[str], tos: list[str], class_names: tuple[str, ...]) -> list[tuple[int, int]]:
    """The (A, B) class indices of ``--from``/``--to`` given in order, or the default pairs when none."""

    if len(froms) != len(tos):
        raise UserError(f"give --from and --to the same number of times (got {len(froms)} --from and "
                        f"{len(tos)} --to); they pair up in order")
    pairs = list(zip(froms, tos)) or list(DEFAULT_MORPH_PAIRS)
    return [(class_index(a, class_names), class_index(b, class_names)) for a, b in pairs]


def morph_latents(means: np.ndarray, a: int, b: int, mode: str, n: int, alpha_max: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(alphas, z)`` of one strip from class ``a`` to ``b``; ``z[0]`` is exactly ``means[a]``.

    ``morph``: ``means[a] + alpha * means[b]`` for ``n`` alphas in ``[0, alpha_max]``;
    ``interpolate``: ``(1 - alpha) * means[a] + alpha * means[b]`` for ``n`` alphas in ``[0, 1]``.
    """
    from vaelab.explore import latent

    if mode not in MORPH_MODES:
        raise ValueError(f"mode must be one of {MORPH_MODES}, got {mode!r}")
    for c in (a, b):
        if not np.all(np.isfinite(means[c])):
            raise UserError(f"class {c} has no images to average (is --limit too small?)")
    alphas = np.linspace(0.0, alpha_max if mode == "morph" else 1.0, n)
    fn = latent.morph if mode == "morph" else latent.interpolate
    return alphas, fn(means[a], means[b], alphas)


def morph_control(means: np.ndarray, class_names, mode: str, alpha_max: float, pair: tuple[int, int]):
    """The explorer's class A / class B / alpha sliders for ``--mode`` (morph or interpolate), starting at ``pair``."""
    from vaelab.explore import explorer
    from vaelab.explore import latent

    fn, formula = ((latent.morph, "mean({a}) + α · mean({b})") if mode == "morph"
                   else (latent.interpolate, "(1 − α) · mean({a}) + α · mean({b})"))
    return explorer.Morph(lambda a, b, alpha: fn(means[a], means[b], [alpha])[0], class_names,
                          alpha_max=alpha_max if mode == "morph" else 1.0, a=pair[0], b=pair[1], formula=formula)


def load_or_train(exp, params_module, args) -> tuple[params_mod.Params, Trained]:
    """The command line's params and the trained model, training it first with ``--train`` when it is missing
    (without ``--train``, the model of that name shipped with the project is used when there is one).

    The params returned are the command line's (figure entries such as ``amount_to_generate`` come from
    them); the model's own architecture comes from the params JSON saved beside it.
    """
    from vaelab.explore import plots

    params = cli.params_from_args(exp.params_cls, params_module, args)
    if params.architecture == "vq":
        raise UserError("the morphs move along class means in a continuous latent space, which a vq model (a map "
                        "of discrete codes) has not; use a continuous model")
    check_web_port(args)
    plots.setup(args.show)
    check_writable(args.results_dir)
    files = exp.files(params, args.models_dir, args.model, shipped=not args.train)
    missing = [p for p in (files.encoder, files.decoder_path()) if not p.exists()]
    if missing:
        if not args.train:
            raise UserError(f"no trained model {files.models_dir / files.prefix}_*.h5 ({missing[0].name} is "
                            f"missing); pass --train to train it first, or run: {exp.train_hint(params)}")
        if args.model:
            raise UserError(f"--train makes the model the params name ({params.model_prefix()}); "
                            f"drop --model {args.model} or train that model separately")
        print(f"no trained model {files.models_dir / files.prefix}_*.h5; training it first (--train)")
        train(exp, params, args.data_dir, args.models_dir, args.limit, results_dir=args.results_dir)
    trained = load_trained(exp, params, args.models_dir, args.model, shipped=not args.train)
    if trained.discrete:
        raise trained_vq.refuse(trained, "the morphs (class means in a continuous latent space)")
    trained.params = trained.params.with_generation_choices(args)
    return params, trained


def first_of_each_class(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Index of the first example of each class present, in class order."""
    y = np.asarray(y)
    return np.array([int(np.argmax(y == c)) for c in range(n_classes) if np.any(y == c)], dtype=int)


def save_reconstructions(trained: Trained, x: np.ndarray, y: np.ndarray, class_names, results_dir) -> Path:
    """One test image per class over its reconstruction, decoded from z_mean (no sampling noise)."""
    from vaelab.explore import plots

    idx = first_of_each_class(y, len(class_names))
    labels = y[idx] if trained.conditional else None
    recon = trained.decode(trained.encode(x[idx], labels), labels)
    titles = [class_names[y[i]] for i in idx] + ["reconstructed"] * len(idx)
    return plots.panels(np.concatenate([x[idx], recon]), trained.result(results_dir, "reconstructions"),
                        titles=titles, rows=2,
                        suptitle=f"{trained.files.prefix}: test images (top) and their reconstructions")


def save_samples(trained: Trained, n: int, results_dir, sampler, per_row: int = 10) -> Path:
    """``n`` images decoded from latent vectors of ``sampler`` (seeded by the model's params)."""
    from vaelab.explore import plots

    labels = np.arange(n) % trained.params.N_CLASSES if trained.conditional else None  # every class in turn
    z = sampler.sample(n, trained.latent_dim, trained.params.seed, labels=labels)
    return plots.panels(trained.decode(z, labels), trained.result(results_dir, "generated"),
                        rows=int(np.ceil(n / per_row)),
                        suptitle=f"{trained.files.prefix}: {n} images decoded from z ~ {sampler.describe()}")


def save_class_means(trained: Trained, means: np.ndarray, class_names, results_dir) -> Path:
    """The decoded mean z_mean of each class (classes with no images are left out)."""
    from vaelab.explore import plots

    present = [c for c in range(len(class_names)) if np.all(np.isfinite(means[c]))]
    return plots.panels(trained.decode(means[present]), trained.result(results_dir, "class_means"),
                        titles=[class_names[c] for c in present],
                        suptitle=f"{trained.files.prefix}: decoded class mean of z_mean")


def save_morph_strip(trained: Trained, means: np.ndarray, a: int, b: int, class_names, mode: str, n: int,
                     alpha_max: float, results_dir, per_row: int = 10) -> Path:
    """One strip of decoded latents from class ``a`` towards ``b``, each panel titled with its alpha."""
    from vaelab.explore import plots

    alphas, z = morph_latents(means, a, b, mode, n, alpha_max)
    na, nb = class_slug(class_names[a]), class_slug(class_names[b])
    if mode == "morph":
        what, title = f"morph_{na}_plus_{nb}", f"mean({class_names[a]}) + α · mean({class_names[b]})"
    else:
        what = f"interpolate_{na}_to_{nb}"
        title = f"(1 − α) · mean({class_names[a]}) + α · mean({class_names[b]})"
    return plots.panels(trained.decode(z), trained.result(results_dir, what),
                        titles=[f"α = {v:.2f}" for v in alphas], rows=int(np.ceil(n / per_row)),
                        suptitle=f"{trained.files.prefix}: {title}")


def save_styles_by_class(trained: Trained, x: np.ndarray, y: np.ndarray, class_names, results_dir,
                         n_styles: int = 6) -> Path:
    """A conditional model's style/content split: the code (style) of each of the first ``n_styles`` test
    images, decoded as every class (one row per style, one column per class; the test image on the left)."""
    from vaelab.explore import plots

    n_styles = min(n_styles, len(x))
    codes = trained.encode(x[:n_styles], y[:n_styles])
    k = len(class_names)
    rows = [np.concatenate([x[i:i + 1], trained.decode(np.repeat(codes[i:i + 1], k, axis=0), np.arange(k))])
            for i in range(n_styles)]
    titles = (["test image"] + list(class_names)) + [""] * ((k + 1) * (n_styles - 1))
    return plots.panels(np.concatenate(rows), trained.result(results_dir, "styles_by_class"), titles=titles,
                        rows=n_styles, suptitle=f"{trained.files.prefix}: the style (z) of each test image "
                                                f"(left) decoded as every class")
