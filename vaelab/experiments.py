"""One :class:`Experiment` per dataset, and the train/generate flows every script shares.

An experiment says only what differs between datasets: its params class, its data loader, its model
builder and its image shape. ``mnist_train.py`` is then one line: ``cli.run(train_command, MNIST,
mnist_params)``. Keras is imported inside the functions, never at import time.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vaelab import artifacts, cli
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
    # Conv datasets stay uint8 in memory and are scaled per batch (vaelab.data.image_batches).
    batched: bool = False
    # params -> extra keyword arguments of load_data (e.g. Caltech101's resize mode).
    data_options: Callable | None = None
    # (new, old) prefix starts: model files named the original scripts' way are found too.
    legacy_prefixes: tuple[tuple[str, str], ...] = ()

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
                   rebuild_decoder=_dense_decoder)


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


def train_command(exp: Experiment, params_module, argv) -> int:
    """Parse the command line, train, save every artifact and report the test loss."""
    p = cli.parser(f"Train the {exp.name} VAE and save it in --models-dir.", exp.params_cls, params_module)
    args = p.parse_args(argv)
    params = cli.params_from_args(exp.params_cls, params_module, args)
    files = artifacts.ModelFiles(Path(args.models_dir), params.model_prefix())
    check_writable(files.models_dir)
    data = exp.dataset(params, args.data_dir, args.limit)
    print(f"{exp.name}: {len(data.x_train)} training and {len(data.x_test)} test images from {data.source}")
    expected = tuple(exp.image_shape(params))
    if data.image_shape != expected and not exp.flatten:
        raise UserError(f"{data.source}: images are {data.image_shape}, the model needs {expected}")

    from vaelab import training

    training.seed_everything(params.seed)
    vae = exp.build_vae(params)
    if exp.batched:
        from vaelab.data import image_batches

        x_train = image_batches(data.x_train, params.batch_size, shuffle=True, seed=params.seed)
        x_test = image_batches(data.x_test, params.batch_size)
    else:
        x_train, x_test = exp.inputs(data.x_train), exp.inputs(data.x_test)
    history = training.fit(vae, x_train, x_test, params, files)
    for path in training.save_trained(vae, history, params, files):
        print(f"saved {path}")
    test = training.evaluate(vae, x_test, params.batch_size)
    print(f"test: loss {test['loss']:.2f} = reconstruction {test['reconstruction_loss']:.2f} "
          f"+ {params.kl_weight:g} x KL {test['kl_loss']:.2f} (nats per image)")
    print(f"peak memory (RSS): {training.peak_rss_mb():.0f} MB")
    return 0


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
    if trained.latent_dim != params.latent_dim:
        raise UserError(f"{files.decoder_path()} has latent dim {trained.latent_dim}, the params say "
                        f"{params.latent_dim}; pass --latent-dim {trained.latent_dim} or another --model")
    return trained


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
    return load_trained(exp, params, args.models_dir, args.model)


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


# --- generating images from conv models -----------------------------------------------------------


def random_grid(trained: Trained, n: int, results_dir) -> Path:
    """An n x n grid of images decoded from z ~ N(0, I) (seeded by the model's params)."""
    from vaelab import latent, plots

    z = latent.random_latents(n * n, trained.latent_dim, trained.params.seed)
    grid = latent.tile(trained.decode(z), n, n)
    return plots.image_grid(grid, trained.result(results_dir, "random_normal"),
                            title=f"{trained.files.prefix}: {n}x{n} samples, z ~ N(0, I)",
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
