"""The library's front door: ``vaelab.load``, ``vaelab.train`` and ``vaelab.shipped_models``.

::

    import vaelab
    model = vaelab.load("ld_2_id_512_e_60")          # a shipped model, one in models/, or a path
    images = model.sample(16)                        # (16, 28, 28, 1) floats in [0, 1]
    z = model.encode(x_test[:100])                   # (100, 2)
    model = vaelab.train("mnist", epochs=5, data_dir="data")   # the run mnist_train.py makes

:func:`load` finds a model by name (its file prefix) in ``models_dir`` and then among the shipped models, or by
path (any of its files, or the prefix with its folder); the params sidecar beside the files says which dataset
it belongs to. :func:`train` is the train script's run from Python: the params module of the dataset in the
current folder (``mnist_params.py``) when there is one, then the preset, then the keyword overrides, exactly
as the command line would apply them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from vaelab.api.trained import Trained, load_trained
from vaelab.core import artifacts
from vaelab.core.errors import UserError

_SUFFIX = re.compile(r"_(vae|encoder|decoder|generator|history|params)(\.h5|\.pkl|\.json|\.keras)?$")


def shipped_models() -> list[str]:
    """The names of the models that come with vaelab (``vaelab.load(name)`` reads them)."""
    from vaelab.config.experiments import SHIPPED_DIR

    return sorted(p.name[: -len("_decoder.h5")] for p in Path(SHIPPED_DIR).glob("*_decoder.h5"))


def find(model, models_dir="models") -> artifacts.ModelFiles:
    """The files of ``model``: a path with a folder (``models/ld_2_id_512_e_60_decoder.h5``, ``models/ld_2…``)
    names them directly; a bare name is looked up in ``models_dir``, then among :func:`shipped_models`."""
    from vaelab.config.experiments import SHIPPED_DIR

    path = Path(model)
    if path.is_dir():
        names = sorted({p.name.rsplit("_", 1)[0] for p in path.glob("*_decoder.h5")})
        raise UserError(f"{path} is a folder; name one of its models: "
                        + (", ".join(str(path / n) for n in names[:6]) if names else "it holds none"))
    prefix = _SUFFIX.sub("", path.name)
    folders = [path.parent] if str(path.parent) not in ("", ".") else [Path(models_dir), Path(SHIPPED_DIR)]
    for folder in folders:
        files = artifacts.ModelFiles(folder, prefix)
        if files.decoder_path().exists():
            return files
    where = f"{folders[0]}/" if len(folders) == 1 else f"{models_dir}/ or among the shipped models"
    raise UserError(f"no model {str(model)!r} in {where} (shipped: {', '.join(shipped_models())}); pass a model "
                    f"name, a path such as models/<name>_decoder.h5, or train one with vaelab.train")


def _experiment_of(files: artifacts.ModelFiles, dataset: str | None):
    from vaelab.config import experiments

    recorded = None
    if files.params_json.exists():
        try:
            recorded = json.loads(files.params_json.read_text(encoding="utf-8")).get("dataset")
        except (OSError, ValueError, AttributeError):
            recorded = None  # loading the params file says what is wrong with it
    if dataset is not None and recorded is not None and dataset != recorded:
        raise UserError(f"{files.params_json} says {files.prefix} is a {recorded} model, not {dataset}")
    name = dataset or recorded
    if name is None:
        raise UserError(f"{files.prefix} has no params file that names its dataset; say which it is: "
                        f"vaelab.load({files.prefix!r}, dataset=...) with one of {', '.join(experiments.DATASETS)}")
    return experiments.lookup(name)


def load(model, dataset: str | None = None, models_dir="models") -> Trained:
    """A trained model, ready to ``encode``, ``decode``, ``sample``, ``reconstruct``, ``interpolate`` and
    ``log_likelihood`` (:class:`vaelab.api.trained.Trained`). ``model`` is a name or a path (:func:`find`);
    ``dataset`` is needed only for files without a params sidecar (the original scripts' Keras 2 models)."""
    from vaelab.config import params as params_mod

    files = find(model, models_dir)
    exp = _experiment_of(files, dataset)
    return load_trained(exp, params_mod.load(exp.params_cls), files.models_dir,
                        str(Path(files.models_dir) / files.prefix))


def train(dataset: str, *, data_dir=None, models_dir="models", results_dir=None, limit: int | None = None,
          params=None, options=None, **overrides) -> Trained:
    """Train ``dataset``'s VAE as its train script does, save every file in ``models_dir`` and return the
    trained model (loaded from those files).

    ``overrides`` are params entries (``epochs=5``, ``latent_dim=3``, ``preset="mnist2d"``) or
    :class:`~vaelab.training.options.TrainOptions` fields (``resume=True``, ``no_jit=True``). ``params``: a
    params object to start from instead of the params module; ``limit``: train on the first N images only.
    """
    from vaelab.api import train as run
    from vaelab.config import experiments, paramsfile
    from vaelab.config import params as params_mod
    from vaelab.training.options import TrainOptions

    exp = experiments.lookup(dataset)
    entries = {f.name for f in dataclasses.fields(exp.params_cls)}
    option_names = {f.name for f in dataclasses.fields(TrainOptions)}
    unknown = sorted(set(overrides) - entries - option_names)
    if unknown:
        raise UserError(f"vaelab.train({dataset!r}): unknown {', '.join(unknown)}; params entries are listed by "
                        f"python {exp.train_script} --help, options by help(vaelab.TrainOptions)")
    given = {k: v for k, v in overrides.items() if k in entries}
    chosen = {k: v for k, v in overrides.items() if k in option_names}
    if params is None:
        params = params_mod.load(exp.params_cls, paramsfile.read_module(exp.params_module, missing_ok=True), given)
    elif not isinstance(params, exp.params_cls):
        raise UserError(f"vaelab.train({dataset!r}): params must be a {exp.params_cls.__name__}, "
                        f"got {type(params).__name__}")
    elif given:
        params = exp.params_cls.from_dict({**params.to_dict(), **given}, source="vaelab.train")
    if "seed" in given and "deterministic" not in chosen and options is None:
        chosen["deterministic"] = True  # as the train scripts: --seed makes the kernels deterministic too
    opts = dataclasses.replace(options or TrainOptions(), **chosen)
    run.choose_backend(params, opts)  # as the script: JAX for the dense MNIST model, unless Keras is imported
    argv = [w for k, v in given.items() for w in (f"--{k.replace('_', '-')}", str(v))]
    files = run.train(exp, params, data_dir, models_dir, limit, options=opts, argv=argv, results_dir=results_dir)
    return load_trained(exp, params, files.models_dir, str(Path(files.models_dir) / files.prefix))
