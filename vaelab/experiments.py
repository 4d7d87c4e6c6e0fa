"""One :class:`Experiment` per dataset, and the train/generate flows every script shares.

An experiment says only what differs between datasets: its params class, its data loader, its model
builder and its image shape. ``mnist_train.py`` is then one line: ``cli.run(train_command, MNIST,
mnist_params)``. Keras is imported inside the functions, never at import time.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vaelab import artifacts, cli, discretized, distribute
from vaelab import params as params_mod
from vaelab.errors import UserError


@dataclass(frozen=True)
class Experiment:
    name: str
    params_cls: type[params_mod.Params]
    load_data: Callable  # (data_dir, limit) -> vaelab.data.Dataset
    build_vae: Callable  # params -> vaelab.models.VAE
    image_shape: Callable  # params -> (H, W, C)
    train_script: str
    flatten: bool = False  # dense models take (N, H*W*C)
    # Architectures for model files Keras 3 cannot read whole (Keras 2.0 HDF5): params -> model.
    rebuild_encoder: Callable | None = None  # x -> z_mean
    rebuild_decoder: Callable | None = None
    # Callbacks beyond the CSV log, TensorBoard and NaN guard: (params, files) -> list.
    callbacks: Callable | None = None
    # What to say (and save) about the test set after training: (test metrics, history, params, files).
    report: Callable | None = None
    # Conv datasets stay uint8 in memory and are scaled per batch (vaelab.data.image_batches).
    batched: bool = False
    # params -> extra keyword arguments of load_data (e.g. Caltech101's resize mode).
    data_options: Callable | None = None
    # (new, old) prefix starts: model files named the original scripts' way are found too.
    legacy_prefixes: tuple[tuple[str, str], ...] = ()
    # Train with vaelab.checkpoints.compile_options' fast path (TensorFlow: XLA, several steps per call)
    # unless --no-jit. Per experiment: XLA made the binarized MLP (batch 100) 3.6x slower.
    fast_path: bool = False
    # The backend this experiment trains fastest on, used when KERAS_BACKEND is unset (and no TensorFlow-only
    # option asks for TensorFlow): benchmarks/versus.py measured the dense MNIST VAE faster on JAX.
    backend: str | None = None

    def dataset(self, params, data_dir, limit):
        """The dataset these params were (or will be) trained on."""
        return self.load_data(data_dir, limit, **(self.data_options(params) if self.data_options else {}))

    def files(self, params, models_dir, model: str | None = None) -> artifacts.ModelFiles:
        """The model files named by ``--model`` (prefix or path), else by the params."""
        if not model:
            return self._existing(artifacts.ModelFiles(Path(models_dir), params.model_prefix()))
        path = Path(model)
        prefix = re.sub(r"_(vae|encoder|decoder|generator|history|params)(\.h5|\.pkl|\.json|\.keras)?$", "",
                        path.name)
        folder = path.parent if str(path.parent) not in ("", ".") else Path(models_dir)
        return artifacts.ModelFiles(folder, prefix)

    def _existing(self, files: artifacts.ModelFiles) -> artifacts.ModelFiles:
        """``files``, or the same model under a legacy prefix when only that one exists."""
        if files.decoder_path().exists():
            return files
        for new, old in self.legacy_prefixes:
            if files.prefix.startswith(new):
                legacy = artifacts.ModelFiles(files.models_dir, old + files.prefix[len(new):])
                if legacy.decoder_path().exists():
                    return legacy
        return files

    def train_hint(self, params) -> str:
        defaults = self.params_cls()
        changed = [f"--{k.replace('_', '-')} {v}" for k, v in params.to_dict().items()
                   if k != "dataset" and getattr(defaults, k) != v]
        return " ".join(["python", self.train_script, *changed])

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """Images in the model's input layout (uint8 images scaled to float32 in [0, 1])."""
        if x.dtype == np.uint8:
            from vaelab.data import to_float

            x = to_float(x)
        return x.reshape(len(x), -1) if self.flatten else x


def _mnist_data(data_dir, limit):
    from vaelab.data import load_mnist

    return load_mnist(data_dir, limit)


def _dense_vae(params):
    from vaelab.models import build_dense_vae

    return build_dense_vae(params)


def _dense_mean_encoder(p):
    from vaelab.models import build_dense_encoder, mean_encoder

    return mean_encoder(build_dense_encoder(p.original_dim, p.intermediate_dim, p.latent_dim))


def _dense_decoder(p):
    from vaelab.models import build_dense_decoder

    return build_dense_decoder(p.latent_dim, p.intermediate_dim, p.original_dim)


MNIST = Experiment("mnist", params_mod.MnistParams, _mnist_data, _dense_vae, lambda p: (28, 28, 1),
                   "mnist_train.py", flatten=True, rebuild_encoder=_dense_mean_encoder,
                   rebuild_decoder=_dense_decoder, fast_path=True, backend="jax")


def _cifar10_data(data_dir, limit):
    from vaelab.data import load_cifar10

    return load_cifar10(data_dir, limit)


def _caltech101_data(size: int):
    def load(data_dir, limit, fit="crop"):
        from vaelab import caltech101

        return caltech101.load(data_dir, size, fit, limit)

    return load


def _conv_vae(params):
    from vaelab.models import build_conv_vae

    return build_conv_vae(params)


def _conv_mean_encoder(p):
    from vaelab.models import build_conv_encoder, mean_encoder

    return mean_encoder(build_conv_encoder(p))


def _conv_decoder(p):
    from vaelab.models import build_conv_decoder

    return build_conv_decoder(p)


def _conv_image_shape(p):
    return (p.img_rows, p.img_cols, p.img_chns)


def _conv_experiment(name, params_cls, load_data, train_script, **kwargs) -> Experiment:
    return Experiment(name, params_cls, load_data, _conv_vae, _conv_image_shape, train_script,
                      rebuild_encoder=_conv_mean_encoder, rebuild_decoder=_conv_decoder, batched=True, **kwargs)


CIFAR10 = _conv_experiment("cifar10", params_mod.Cifar10Params, _cifar10_data, "cifar10_train.py")
# The original scripts named the Caltech101 models object101_…; both spellings below are read.
CALTECH101_92 = _conv_experiment(
    "caltech101_92", params_mod.Caltech101_92Params, _caltech101_data(92), "caltech101_92_train.py",
    data_options=lambda p: {"fit": p.fit},
    legacy_prefixes=(("caltech101_92_", "object101_92_"), ("caltech101_92_", "object101_")))
CALTECH101_128 = _conv_experiment(
    "caltech101_128", params_mod.Caltech101_128Params, _caltech101_data(128), "caltech101_128_train.py",
    data_options=lambda p: {"fit": p.fit},
    legacy_prefixes=(("caltech101_128_", "object101_128_"), ("caltech101_128_", "object101_")))


# --- training -------------------------------------------------------------------------------------


def check_writable(directory) -> Path:
    """Create ``directory`` if needed and make sure files can be written there, before any long work."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".vaelab-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write to {directory}: {e.strerror or e}; pass a writable directory") from None
    return directory


def choose_backend(exp: Experiment, args) -> str | None:
    """Set KERAS_BACKEND to ``exp.backend`` unless the user chose one (KERAS_BACKEND always wins), Keras is
    already imported (its backend is fixed then), the backend is not installed, or ``--distribute`` (whose
    multi-worker mode needs TensorFlow) is used. Returns the backend set, or None."""
    import importlib.util
    import os
    import sys

    if (not exp.backend or "KERAS_BACKEND" in os.environ or "keras" in sys.modules
            or getattr(args, "distribute", "none") != "none" or importlib.util.find_spec(exp.backend) is None):
        return None
    os.environ["KERAS_BACKEND"] = exp.backend
    return exp.backend


def train_command(exp: Experiment, params_module, argv) -> int:
    """Parse the command line, train, save every artifact and report the test loss."""
    p = cli.parser(f"Train the {exp.name} VAE and save it in --models-dir.", exp.params_cls, params_module)
    args = cli.add_train_options(p).parse_args(argv)
    params = cli.params_from_args(exp.params_cls, params_module, args)
    choose_backend(exp, args)
    train_and_save(exp, params, args.data_dir, args.models_dir, args.limit, options=args, argv=argv)
    return 0


def train_and_save(exp: Experiment, params, data_dir, models_dir, limit=None, options=None,
                   argv=()) -> artifacts.ModelFiles:
    """Train ``exp``'s VAE with ``params``, save every artifact and report the test loss; returns the files.

    ``options`` holds the train-only command-line options (:func:`vaelab.cli.add_train_options`: resume,
    checkpoints, devices, precision); ``None`` means their defaults.
    """
    opts = options if options is not None else cli.add_train_options(argparse.ArgumentParser()).parse_args([])
    distribute.check_request(opts.distribute, opts.devices)
    files = artifacts.ModelFiles(Path(models_dir), params.model_prefix())  # new names, never a legacy one
    check_writable(files.models_dir)
    data = exp.dataset(params, data_dir, limit)
    print(f"{exp.name}: {len(data.x_train)} training and {len(data.x_test)} test images from {data.source}")
    expected = tuple(exp.image_shape(params))
    if data.image_shape != expected and not exp.flatten:
        raise UserError(f"{data.source}: images are {data.image_shape}, the model needs {expected}")

    from vaelab import checkpoints, training

    # Build, compile, fit, save and evaluate in the strategy's scope; only the chief keeps its files.
    with distribute.session(opts.distribute, opts.devices, opts.mixed_precision, params.batch_size) as plan:
        training.seed_everything(params.seed)
        vae = plan.adapt(exp.build_vae(params))
        exact = plan.mode == "none"
        x_train, x_test = plan.even(data.x_train), plan.even(data.x_test, "test")
        if exp.batched and exact:  # uint8 in memory, scaled batch by batch
            from vaelab.data import image_batches

            x_test, transform = image_batches(x_test, params.batch_size), exp.inputs
        else:
            x_train, x_test, transform = exp.inputs(x_train), exp.inputs(x_test), None
        out = plan.files(files)
        extra = exp.callbacks(params, out) if exp.callbacks else ()
        history = checkpoints.fit_resumable(vae, x_train, x_test, params, out, resume=opts.resume,
                                            every=opts.checkpoint_every, script=exp.train_script, argv=argv,
                                            deterministic=getattr(options, "seed", None) is not None,
                                            exact_order=exact, extra_callbacks=extra, transform=transform,
                                            fast=exp.fast_path and not getattr(opts, "no_jit", False))
        for path in checkpoints.save_final(vae, history, params, out, exp.train_script, argv):
            if plan.chief:
                print(f"saved {path}")
        test = training.evaluate(vae, x_test, params.batch_size)
    if exp.report:
        exp.report(test, history, params, files)
    else:
        print(f"test: loss {test['loss']:.2f} = reconstruction {test['reconstruction_loss']:.2f} "
              f"+ {params.kl_weight:g} x KL {test['kl_loss']:.2f} (nats per image)")
        if vae.reconstruction == discretized.NAME and vae.kl_weight == 1:  # the loss is then the -ELBO
            from vaelab.metrics import bits_per_dim

            dims = math.prod(exp.image_shape(params))
            print(f"test: -ELBO {bits_per_dim(test['loss'], dims):.4f} bits/dim (8-bit pixels, discretized "
                  "logistic likelihood)")
    print(f"peak memory (RSS): {training.peak_rss_mb():.0f} MB")
    return files


# --- generating -----------------------------------------------------------------------------------


@dataclass
class Trained:
    """A trained model's encoder (x -> z_mean) and decoder, with the params that made it."""

    exp: Experiment
    params: params_mod.Params
    files: artifacts.ModelFiles
    encoder: object
    decoder: object

    @property
    def latent_dim(self) -> int:
        return int(self.decoder.inputs[0].shape[-1])

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.exp.image_shape(self.params))

    def decode(self, z) -> np.ndarray:
        from vaelab.latent import decode

        return decode(self.decoder, z, self.image_shape)

    def encode(self, x) -> np.ndarray:
        from vaelab.latent import encode

        return encode(self.encoder, self.exp.inputs(x))

    def manifold(self, n: int, scale: float = 1.0, fixed: tuple[float, ...] = ()) -> np.ndarray:
        """The decoded n x n grid over the prior's quantiles of z[0], z[1] (other dims at ``fixed``)."""
        from vaelab.latent import manifold_latents, tile

        return tile(self.decode(manifold_latents(n, scale, fixed)), n, n)

    def result(self, results_dir, what: str, ext: str = "png") -> Path:
        return Path(results_dir) / f"{self.files.prefix}_{what}.{ext}"


def load_trained(exp: Experiment, params, models_dir, model: str | None = None) -> Trained:
    """Load encoder and decoder; the params sidecar beside them (if any) overrides ``params``."""
    files = exp.files(params, models_dir, model)
    if files.params_json.exists():
        params = params_mod.load_json(exp.params_cls, files.params_json)
    hint = exp.train_hint(params)

    def rebuild(builder):
        return (lambda: builder(params)) if builder else None

    decoder = artifacts.load_model(files.decoder_path(), hint, rebuild(exp.rebuild_decoder))
    encoder = artifacts.load_model(files.encoder, hint, rebuild(exp.rebuild_encoder))
    trained = Trained(exp, params, files, encoder, decoder)
    check_architecture(trained)
    if trained.latent_dim != params.latent_dim:
        raise UserError(f"{files.decoder_path()} has latent dim {trained.latent_dim}, the params say "
                        f"{params.latent_dim}; pass --latent-dim {trained.latent_dim} or another --model")
    return trained


def _shape(tensors) -> tuple:
    first = tensors[0] if isinstance(tensors, (list, tuple)) else tensors
    return tuple(first.shape[1:])


def check_architecture(trained: Trained) -> None:
    """The decoder must map (d,) to this experiment's images and the encoder images to (d,).

    Catches another model's file under this name (an encoder saved as the decoder, another dataset's
    model) with a one-line error instead of a shape error deep inside predict.
    """
    image = trained.image_shape
    pixels = int(np.prod(image))
    checks = ((trained.files.decoder_path(), trained.decoder, "decoder", "(d,) -> " + str(image)),
              (trained.files.encoder, trained.encoder, "encoder", f"{image} or ({pixels},) -> (d,)"))
    dec_in, dec_out = _shape(trained.decoder.inputs), _shape(trained.decoder.outputs)
    enc_in, enc_out = _shape(trained.encoder.inputs), _shape(trained.encoder.outputs)
    fits = {"decoder": len(dec_in) == 1 and None not in dec_out and int(np.prod(dec_out)) == pixels,
            "encoder": len(enc_out) == 1 and None not in enc_in and int(np.prod(enc_in)) == pixels
            and enc_out == dec_in}
    for path, model, role, expected in checks:
        if not fits[role]:
            found = f"{_shape(model.inputs)} -> {_shape(model.outputs)}"
            raise UserError(f"{path} is not a {trained.exp.name} {role}: it maps {found}, a {role} maps {expected}; "
                            "it is another model's file: pick the right one with --model, or train again")


def check_requested_latent_dim(trained: Trained, args) -> None:
    """An explicit ``--latent-dim`` must agree with the model that is loaded (its params file wins otherwise)."""
    asked = getattr(args, "latent_dim", None)
    if asked is not None and asked != trained.latent_dim:
        raise UserError(f"--latent-dim {asked} was given, but {trained.files.prefix} has latent dim "
                        f"{trained.latent_dim}; drop --latent-dim or pick another model with --model")


def require_latent_dim(trained: Trained, dims: tuple[int, ...], script: str) -> None:
    if trained.latent_dim not in dims:
        raise UserError(f"{script} needs a model with latent dim {' or '.join(map(str, dims))}; "
                        f"{trained.files.prefix} has {trained.latent_dim} (use mnist_generate.py for any dim)")


def generate_parser(exp: Experiment, params_module, description: str) -> argparse.ArgumentParser:
    return cli.add_generate_options(cli.parser(description, exp.params_cls, params_module))


def start_generate(exp: Experiment, params_module, args) -> Trained:
    """Common start of every generate script: params, plotting backend, model."""
    from vaelab import plots

    params = cli.params_from_args(exp.params_cls, params_module, args)
    plots.setup(args.show)
    check_writable(args.results_dir)
    trained = load_trained(exp, params, args.models_dir, args.model)
    check_requested_latent_dim(trained, args)
    return trained


def save_vector_image(trained: Trained, z: np.ndarray, results_dir) -> Path:
    """Decode one latent vector and save it as ``<prefix>_z_<v0>_<v1>….png``."""
    from vaelab import plots

    label = "_".join(f"{v:g}" for v in z)
    image = trained.decode(z[None, :])
    return plots.panels(image, trained.result(results_dir, f"z_{label}"),
                        titles=[f"z = ({', '.join(f'{v:g}' for v in z)})"])


def decode_vectors_and_prompt(trained: Trained, args) -> None:
    """Save the ``--z`` vectors, then run the prompt unless ``--no-prompt``."""
    from vaelab import prompts

    for text in args.z:
        try:
            z = prompts.parse_latent(text, trained.latent_dim)
        except prompts.ParseError as e:
            raise UserError(f"--z {text!r}: {e}") from None
        save_vector_image(trained, z, args.results_dir)
    if not args.no_prompt:
        prompts.latent_prompt(trained.latent_dim, lambda z: save_vector_image(trained, z, args.results_dir))


def test_set_scatter(trained: Trained, data_dir, limit, results_dir, what: str = "latent") -> Path:
    """Encode the test set and save its latent scatter coloured by class."""
    from vaelab import plots

    data = trained.exp.dataset(trained.params, data_dir, limit)
    z = trained.encode(data.x_test)
    return plots.latent_scatter(z, data.y_test, data.class_names, trained.result(results_dir, what),
                                title=f"{trained.files.prefix}: test set z_mean ({len(z)} images)")


# --- Fashion-MNIST --------------------------------------------------------------------------------


def _fashion_data(data_dir, limit):
    from vaelab.data import load_fashion_mnist

    return load_fashion_mnist(data_dir, limit)


def _fashion_vae(params):
    from vaelab.models import build_fashion_vae

    return build_fashion_vae(params)


def _fashion_callbacks(params, files):
    from vaelab.training import early_stopping_callbacks

    return early_stopping_callbacks(params, files)


def mse_report(test: dict, history: dict, params, files: artifacts.ModelFiles) -> dict:
    """Print and save (``…_test.json``) the test MSE per pixel, KL, epochs run and seconds per epoch.

    The loss is ``rmse_multiplier * MSE + kl_multiplier * KL``, so MSE is the reconstruction term divided
    by ``rmse_multiplier``; KL is in nats per image.
    """
    mse = test["reconstruction_loss"] / params.rmse_multiplier if params.rmse_multiplier else float("nan")
    val = history.get("val_loss", [])
    seconds = history.get("epoch_seconds", [])
    summary = {
        "test_loss": test["loss"], "test_mse": mse, "test_kl": test["kl_loss"],
        "test_reconstruction_term": test["reconstruction_loss"],
        "epochs_run": len(history.get("loss", [])), "epochs_max": params.epochs,
        "best_epoch": int(np.argmin(val)) + 1 if val else None,
        "best_val_loss": float(np.min(val)) if val else None,
        "seconds_per_epoch": float(np.mean(seconds)) if seconds else None,
        "seconds_total": float(np.sum(seconds)) if seconds else None,
    }
    path = artifacts.save_json(summary, files.test_json)
    print(f"test: loss {test['loss']:.2f} = {params.rmse_multiplier:g} x MSE {mse:.5f} "
          f"+ {params.kl_multiplier:g} x KL {test['kl_loss']:.2f} (KL in nats per image)")
    best = f", best epoch {summary['best_epoch']} (weights restored)" if val else ""
    timing = f", {summary['seconds_per_epoch']:.1f} s/epoch" if seconds else ""
    print(f"epochs run {summary['epochs_run']} of {params.epochs}{best}{timing}")
    print(f"saved {path}")
    return summary


FASHION_MNIST = Experiment("fashion_mnist", params_mod.FashionMnistParams, _fashion_data, _fashion_vae,
                           lambda p: (p.img_height, p.img_width, 1), "fashion_mnist_train.py",
                           callbacks=_fashion_callbacks, report=mse_report)


# --- morphing between classes ---------------------------------------------------------------------

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
    g.add_argument("--model", metavar="PREFIX",
                   help="model file prefix in --models-dir (e.g. fashion_mnist_ld_3_e_18), or a path to it; "
                        "default: the prefix the params give")
    g.add_argument("--show", action="store_true", help="also open the figures in windows (needs a display)")
    return p


def morph_pairs(froms: list[str], tos: list[str], class_names: tuple[str, ...]) -> list[tuple[int, int]]:
    """The (A, B) class indices of ``--from``/``--to`` given in order, or the default pairs when none."""
    from vaelab.data import class_index

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
    from vaelab import latent

    if mode not in MORPH_MODES:
        raise ValueError(f"mode must be one of {MORPH_MODES}, got {mode!r}")
    for c in (a, b):
        if not np.all(np.isfinite(means[c])):
            raise UserError(f"class {c} has no images to average (is --limit too small?)")
    alphas = np.linspace(0.0, alpha_max if mode == "morph" else 1.0, n)
    fn = latent.morph if mode == "morph" else latent.interpolate
    return alphas, fn(means[a], means[b], alphas)


def load_or_train(exp: Experiment, params_module, args) -> tuple[params_mod.Params, Trained]:
    """The command line's params and the trained model, training it first with ``--train`` when it is missing.

    The params returned are the command line's (figure entries such as ``amount_to_generate`` come from
    them); the model's own architecture comes from the params JSON saved beside it.
    """
    from vaelab import plots

    params = cli.params_from_args(exp.params_cls, params_module, args)
    plots.setup(args.show)
    check_writable(args.results_dir)
    files = exp.files(params, args.models_dir, args.model)
    missing = [p for p in (files.encoder, files.decoder_path()) if not p.exists()]
    if missing:
        if not args.train:
            raise UserError(f"no trained model {files.models_dir / files.prefix}_*.h5 ({missing[0].name} is "
                            f"missing); pass --train to train it first, or run: {exp.train_hint(params)}")
        if args.model:
            raise UserError(f"--train makes the model the params name ({params.model_prefix()}); "
                            f"drop --model {args.model} or train that model separately")
        print(f"no trained model {files.models_dir / files.prefix}_*.h5; training it first (--train)")
        train_and_save(exp, params, args.data_dir, args.models_dir, args.limit)
    return params, load_trained(exp, params, args.models_dir, args.model)


def first_of_each_class(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Index of the first example of each class present, in class order."""
    y = np.asarray(y)
    return np.array([int(np.argmax(y == c)) for c in range(n_classes) if np.any(y == c)], dtype=int)


def save_reconstructions(trained: Trained, x: np.ndarray, y: np.ndarray, class_names, results_dir) -> Path:
    """One test image per class over its reconstruction, decoded from z_mean (no sampling noise)."""
    from vaelab import plots

    idx = first_of_each_class(y, len(class_names))
    recon = trained.decode(trained.encode(x[idx]))
    titles = [class_names[y[i]] for i in idx] + ["reconstructed"] * len(idx)
    return plots.panels(np.concatenate([x[idx], recon]), trained.result(results_dir, "reconstructions"),
                        titles=titles, rows=2,
                        suptitle=f"{trained.files.prefix}: test images (top) and their reconstructions")


def save_samples(trained: Trained, n: int, results_dir, per_row: int = 10) -> Path:
    """``n`` images decoded from z ~ N(0, I) (seeded by the model's params)."""
    from vaelab import latent, plots

    z = latent.random_latents(n, trained.latent_dim, trained.params.seed)
    return plots.panels(trained.decode(z), trained.result(results_dir, "generated"),
                        rows=int(np.ceil(n / per_row)),
                        suptitle=f"{trained.files.prefix}: {n} images decoded from z ~ N(0, I)")


def save_class_means(trained: Trained, means: np.ndarray, class_names, results_dir) -> Path:
    """The decoded mean z_mean of each class (classes with no images are left out)."""
    from vaelab import plots

    present = [c for c in range(len(class_names)) if np.all(np.isfinite(means[c]))]
    return plots.panels(trained.decode(means[present]), trained.result(results_dir, "class_means"),
                        titles=[class_names[c] for c in present],
                        suptitle=f"{trained.files.prefix}: decoded class mean of z_mean")


def save_morph_strip(trained: Trained, means: np.ndarray, a: int, b: int, class_names, mode: str, n: int,
                     alpha_max: float, results_dir, per_row: int = 10) -> Path:
    """One strip of decoded latents from class ``a`` towards ``b``, each panel titled with its alpha."""
    from vaelab import plots
    from vaelab.data import class_slug

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


# --- generating images from conv models -----------------------------------------------------------


def random_grid(trained: Trained, n: int, results_dir, uniform: bool = False) -> Path:
    """An n x n grid of images decoded from z ~ N(0, I), or from z uniform on [-2, 2]^d with ``uniform``
    (seeded by the model's params); saved as ``<prefix>_random_normal.png`` / ``_random_uniform.png``."""
    from vaelab import latent, plots

    z = latent.random_latents(n * n, trained.latent_dim, trained.params.seed, uniform=uniform)
    grid = latent.tile(trained.decode(z), n, n)
    kind, law = ("uniform", "U(-2, 2)") if uniform else ("normal", "N(0, I)")
    return plots.image_grid(grid, trained.result(results_dir, f"random_{kind}"),
                            title=f"{trained.files.prefix}: {n}x{n} samples, z ~ {law}",
                            max_size=_native_inches(grid))


def reconstructions(trained: Trained, data_dir, limit, n: int, results_dir) -> Path:
    """The first ``n`` test images (top row) over their reconstructions decoded from z_mean (bottom row)."""
    from vaelab import latent, plots

    data = trained.exp.dataset(trained.params, data_dir, limit)
    x = trained.exp.inputs(data.x_test[:n])
    if len(x) == 0:
        raise UserError("the test set is empty; nothing to reconstruct")
    x = x.reshape((len(x), *trained.image_shape))
    x_hat = trained.decode(trained.encode(x))
    grid = latent.tile(np.concatenate([x, x_hat]), 2, len(x))
    return plots.image_grid(grid, trained.result(results_dir, "reconstructions"),
                            title=f"{trained.files.prefix}: test images (top) and reconstructions (bottom)",
                            max_size=_native_inches(grid))


def _native_inches(grid: np.ndarray) -> float:
    """Figure width that shows a colour grid at about its own resolution (100 dpi): small grids (CIFAR-10)
    are enlarged to 8 inches so that 32 px images stay readable, large ones (10 x 128 px) capped at 9.5
    inches so that a grid of photos stays under 1 MB of PNG."""
    return max(8.0, min(9.5, grid.shape[1] / 100))


def image_generate_command(variants: dict, default_grid: int, description: str, argv) -> int:
    """The generate script of the conv datasets: random grid, reconstructions, the 2-D latent scatter,
    ``--z`` vectors and the prompt.

    ``variants`` maps an image size to ``(Experiment, params module)``; with more than one, ``--size``
    picks the model (``caltech101_generate.py --size 128``).
    """
    from vaelab import plots

    sizes = sorted(variants)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--size", type=int, choices=sizes, default=sizes[0])
    size = pre.parse_known_args(argv)[0].size if len(sizes) > 1 else sizes[0]
    exp, params_module = variants[size]
    p = generate_parser(exp, params_module, description)
    if len(sizes) > 1:
        p.add_argument("--size", type=int, choices=sizes, default=sizes[0],
                       help=f"image size of the model (default: {sizes[0]})")
    p.add_argument("--grid", type=int, default=default_grid,
                   help=f"grid size N x N of random samples (default: {default_grid})")
    p.add_argument("--n-reconstructions", type=int, default=10, metavar="N",
                   help="test images to reconstruct (default: 10)")
    args = p.parse_args(argv)
    if args.grid < 1 or args.n_reconstructions < 1:
        raise UserError("--grid and --n-reconstructions must be >= 1")
    trained = start_generate(exp, params_module, args)
    random_grid(trained, args.grid, args.results_dir)
    reconstructions(trained, args.data_dir, args.limit, args.n_reconstructions, args.results_dir)
    if trained.latent_dim == 2:
        test_set_scatter(trained, args.data_dir, args.limit, args.results_dir)
    decode_vectors_and_prompt(trained, args)
    plots.finish()
    return 0
