"""The registry of datasets: one :class:`Experiment` per dataset, listed once in :data:`DATASETS`.

An experiment says only what belongs to a dataset: its params class (defaults, file names, image size), how its
data is read, its scripts and params module, and the file names of the original scripts' models. What model is
trained on it is the params' choice of parts (:mod:`vaelab.models.registry`). Adding a dataset is one entry here and a
params class (docs/add_your_own.md). Keras is imported inside the functions, never at import time.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vaelab.core import artifacts
from vaelab.config import conv_params
from vaelab.config import params as params_mod
from vaelab.core.errors import UserError

# Small trained models that come with the project (encoder, decoder and params only), so the generate scripts
# have something to show before any training; vaelab/pretrained/README.md says how each was trained (the
# folder is package data, installed with the package).
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "pretrained"


def shipped_model(prefix: str) -> artifacts.ModelFiles | None:
    """The model of ``prefix`` in :data:`SHIPPED_DIR`, else the one whose name differs only in its epoch count
    (``…_e_12`` for ``…_e_100``): the same architecture and data, trained shorter; None when there is none."""
    exact = artifacts.ModelFiles(SHIPPED_DIR, prefix)
    if exact.decoder_path().exists():
        return exact

    def any_epochs(name):
        return re.sub(r"_e_\d+", "_e_N", name)

    for path in sorted(SHIPPED_DIR.glob("*_decoder.h5")):
        candidate = path.name[: -len("_decoder.h5")]
        if any_epochs(candidate) == any_epochs(prefix):
            return artifacts.ModelFiles(SHIPPED_DIR, candidate)
    return None


@dataclass(frozen=True)
class Experiment:
    name: str
    params_cls: type[params_mod.Params]
    load_data: Callable  # (data_dir, limit, **data_options) -> vaelab.data.datasets.Dataset
    train_script: str
    params_module: str  # the module users edit, beside the scripts
    # Dynamic binarization: every training image is redrawn as Bernoulli(grey level) at each step.
    binarize: bool = False
    # params -> extra keyword arguments of load_data (e.g. Caltech101's resize mode).
    data_options: Callable | None = None
    # (new, old) prefix starts: model files named the original scripts' way are found too.
    legacy_prefixes: tuple[tuple[str, str], ...] = ()
    # What to print (and save) about the test set after training: (test metrics, history, params, files).
    report: Callable | None = None
    # The dataset whose classifier scores generated images (binarized MNIST uses MNIST's); default its own.
    classifier: str | None = None
    # Train with the fast path (vaelab.training.loop.compile_options) unless --no-jit.
    fast_path: bool = False
    # The backend this experiment trains fastest on, used when KERAS_BACKEND is unset (and no TensorFlow-only
    # option asks for TensorFlow): benchmarks/versus.py measured the dense MNIST VAE faster on JAX.
    backend: str | None = None
    # The validation split held out from the training set (vaelab.data.splits): the last fraction of it, or of
    # each class's images.
    validation_fraction: float = 1 / 6
    validation_per_class: bool = False

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.params_cls.IMAGE_SHAPE

    def dataset(self, params, data_dir, limit=None):
        """The dataset these params were (or will be) trained on: every data load goes through here."""
        return self.load_data(data_dir, limit, **(self.data_options(params) if self.data_options else {}))

    def with_validation(self, data, params, validate_on: str | None = None):
        """``data`` with its validation images (``validate_on``, else ``params.validate_on``: held out from the
        training set, or the test set); binarized MNIST's held-out images are binarized once, with their own
        fixed seed, as its test images are."""
        from vaelab.data import splits

        prepare = None
        if self.binarize:
            from vaelab.data.binarized import VALIDATION_BINARIZATION_SEED, static_binarization

            def prepare(x):
                return static_binarization(x, seed=VALIDATION_BINARIZATION_SEED)

        return splits.with_validation(data, validate_on or params.validate_on, self.validation_fraction,
                                      self.validation_per_class,
                                      prepare)

    def scored(self, data, params, split: str = "test"):
        """``data`` as ``evaluate.py --split`` scores it: unchanged for ``"test"``; for ``"validation"`` the
        images held out of the training set stand in the test set's place (and leave the training set), so
        the pilots that choose a preset are scored without reading the test set."""
        if split == "test":
            return data
        if split != "validation":
            raise UserError(f"--split must be test or validation, got {split!r}")
        held = self.with_validation(data, params, validate_on="split")
        return dataclasses.replace(held, x_test=held.x_val, y_test=held.y_val, x_val=None, y_val=None,
                                   source=f"{data.source}, the validation split ({held.validation})")

    def files(self, params, models_dir, model: str | None = None, shipped: bool = False) -> artifacts.ModelFiles:
        """The model files named by ``--model`` (prefix, path or directory), else by the params; with ``shipped``,
        the model of that name in :data:`SHIPPED_DIR` (or one of that name but another epoch count) when
        ``models_dir`` has none (said in one line)."""
        if not model:
            found = self._existing(artifacts.ModelFiles(Path(models_dir), params.model_prefix()))
            bundled = shipped_model(found.prefix) if shipped and not found.decoder_path().exists() else None
            if bundled:
                print(f"note: {models_dir} has no {found.prefix}; using {bundled.prefix} shipped in "
                      f"{SHIPPED_DIR.name}/ (how it was trained: {SHIPPED_DIR.name}/README.md; train your own: "
                      f"{self.train_hint(params)})")
                return bundled
            return found
        path = Path(model)
        if path.is_dir():
            return self._in_directory(path, params)
        prefix = re.sub(r"_(vae|encoder|decoder|generator|history|params)(\.h5|\.pkl|\.json|\.keras)?$", "",
                        path.name)
        if path.is_file() and prefix == path.name:  # an existing file that no training names so
            raise UserError(f"--model {path} is a file, but not one of a model's files (<prefix>_decoder.h5, "
                            "_encoder.h5, _vae.h5, as training writes them); pass one of those, the prefix or "
                            "the directory that holds them")
        folder = path.parent if str(path.parent) not in ("", ".") else Path(models_dir)
        return artifacts.ModelFiles(folder, prefix)

    def _in_directory(self, folder: Path, params) -> artifacts.ModelFiles:
        """``--model DIR``: the model the params name in DIR, else the only model of this dataset there.

        A model is a ``<prefix>_decoder.h5`` (or the original scripts' ``_generator.h5``); one whose params
        file names another dataset is not counted.
        """
        named = self._existing(artifacts.ModelFiles(folder, params.model_prefix()))
        if named.decoder_path().exists():
            return named
        prefixes = sorted({p.name.rsplit("_", 1)[0] for pattern in ("*_decoder.h5", "*_generator.h5")
                           for p in folder.glob(pattern)})
        mine = [p for p in prefixes if self._may_be_mine(artifacts.ModelFiles(folder, p))]
        if len(mine) == 1:
            print(f"--model {folder}: using {mine[0]}, the only {self.name} model there")
            return artifacts.ModelFiles(folder, mine[0])
        if not mine:
            raise UserError(f"--model {folder}: no {self.name} model in this directory (no …_decoder.h5 or "
                            f"…_generator.h5); pass the directory that holds it, or a model's path")
        listed = ", ".join(mine[:6]) + (f" and {len(mine) - 6} more" if len(mine) > 6 else "")
        raise UserError(f"--model {folder}: {len(mine)} {self.name} models there ({listed}) and none is the one "
                        f"the params name ({params.model_prefix()}); pick one: --model {folder / mine[0]}")

    def _may_be_mine(self, files: artifacts.ModelFiles) -> bool:
        """False only when the model's params file says it was made for another dataset."""
        if not files.params_json.exists():
            return True
        try:
            return json.loads(files.params_json.read_text()).get("dataset") == self.params_cls.DATASET
        except (OSError, ValueError, AttributeError):
            return True  # loading it will say what is wrong

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
        """The command line that trains the model these params describe."""
        defaults = params.defaults()
        changed = [f"--{k.replace('_', '-')} {v}" for k, v in params.to_dict().items()
                   if k not in ("dataset", "preset") and getattr(defaults, k) != v]
        preset = [f"--preset {params.preset}"] if params.preset else []
        return " ".join(["python", self.train_script, *preset, *changed])


def model_inputs(x: np.ndarray, flat: bool, packed: bool = False) -> np.ndarray:
    """Images in a model's input layout: uint8 scaled to float32 in [0, 1], flattened for ``flat`` encoders.
    ``packed``: the images carry their labels as a last channel (a conditional model's inputs,
    :func:`vaelab.models.conditional.pack`), which flattening puts after the pixels."""
    if x.dtype == np.uint8:
        from vaelab.data.datasets import to_float

        x = to_float(x)
    if packed and flat and x.ndim == 4:
        return np.concatenate([x[..., :-1].reshape(len(x), -1), x[:, 0, 0, -1:]], axis=1)
    return x.reshape(len(x), -1) if flat else x


# --- loaders ----------------------------------------------------------------------------------------


def _mnist(data_dir, limit):
    from vaelab.data.datasets import load_mnist

    return load_mnist(data_dir, limit)


def _binarized_mnist(data_dir, limit):
    from vaelab.data.binarized import load_binarized_mnist

    return load_binarized_mnist(data_dir, limit)


def _fashion_mnist(data_dir, limit):
    from vaelab.data.datasets import load_fashion_mnist

    return load_fashion_mnist(data_dir, limit)


def _cifar10(data_dir, limit):
    from vaelab.data.datasets import load_cifar10

    return load_cifar10(data_dir, limit)


def _caltech101(size: int):
    def load(data_dir, limit, fit="crop"):
        from vaelab.data import caltech101

        return caltech101.load(data_dir, size, fit, limit)

    return load


def mse_report(test: dict, history: dict, params, files: artifacts.ModelFiles) -> dict:
    """Fashion-MNIST's report: print and save (``…_test.json``) the test MSE per pixel, KL, epochs run and
    seconds per epoch. The loss is ``rmse_multiplier * MSE + kl_multiplier * KL``, so MSE is the reconstruction
    term divided by ``rmse_multiplier``; KL is in nats per image."""
    gaussian = params.likelihood == "gaussian"
    mse = test["reconstruction_loss"] / params.rmse_multiplier if gaussian else float("nan")
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
    if gaussian:
        print(f"test: loss {test['loss']:.2f} = {params.rmse_multiplier:g} x MSE {mse:.5f} "
              f"+ {params.kl_multiplier:g} x KL {test['kl_loss']:.2f} (KL in nats per image)")
    else:
        print(f"test: loss {test['loss']:.2f} = reconstruction {test['reconstruction_loss']:.2f} "
              f"+ {params.kl_weight:g} x KL {test['kl_loss']:.2f} (nats per image)")
    best = f", best epoch {summary['best_epoch']} (weights restored)" if val and params.patience else ""
    timing = f", {summary['seconds_per_epoch']:.1f} s/epoch" if seconds else ""
    print(f"epochs run {summary['epochs_run']} of {params.epochs}{best}{timing}")
    print(f"saved {path}")
    return summary


def _caltech_fit(params) -> dict:
    return {"fit": params.fit}


# --- the registry -----------------------------------------------------------------------------------

MNIST = Experiment("mnist", params_mod.MnistParams, _mnist, "mnist_train.py", "mnist_params", fast_path=True)
MNIST_BINARIZED = Experiment("mnist_binarized", params_mod.BinarizedMnistParams, _binarized_mnist,
                             "mnist_binarized_train.py", "mnist_binarized_params", binarize=True, classifier="mnist")
FASHION_MNIST = Experiment("fashion_mnist", params_mod.FashionMnistParams, _fashion_mnist, "fashion_mnist_train.py",
                           "fashion_mnist_params", report=mse_report)
CIFAR10 = Experiment("cifar10", conv_params.Cifar10Params, _cifar10, "cifar10_train.py", "cifar10_params",
                     validation_fraction=0.1)
# The original scripts named the Caltech101 models object101_…; both spellings are read.
CALTECH101_92 = Experiment("caltech101_92", conv_params.Caltech101_92Params, _caltech101(92), "caltech101_92_train.py",
                           "caltech101_92_params", data_options=_caltech_fit,
                           validation_fraction=0.1, validation_per_class=True,
                           legacy_prefixes=(("caltech101_92_", "object101_92_"), ("caltech101_92_", "object101_")))
CALTECH101_128 = Experiment("caltech101_128", conv_params.Caltech101_128Params, _caltech101(128),
                            "caltech101_128_train.py", "caltech101_128_params", data_options=_caltech_fit,
                            validation_fraction=0.1, validation_per_class=True,
                            legacy_prefixes=(("caltech101_128_", "object101_128_"),
                                             ("caltech101_128_", "object101_")))

DATASETS = {e.name: e for e in (MNIST, MNIST_BINARIZED, FASHION_MNIST, CIFAR10, CALTECH101_92, CALTECH101_128)}


def lookup(name: str) -> Experiment:
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]
