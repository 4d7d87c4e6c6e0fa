"""A trained model with the verbs researchers use: encode, decode, sample, reconstruct, interpolate and
log-likelihood, on numpy arrays; the generate scripts and ``vaelab.load`` both hand out a :class:`Trained`.

:func:`load_trained` finds the files (``--model`` or the params' prefix, the original scripts' names too),
reads the params sidecar, loads both models in safe mode (rebuilding the architecture for Keras 2 files the
current Keras cannot read whole) and checks that they are this dataset's encoder and decoder.

Images go in as the datasets give them (uint8 in 0..255 or floats in [0, 1]; one image or a batch; with or
without the channel axis; flat rows too) and come out as floats in [0, 1] shaped ``(N, H, W, C)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vaelab.core import artifacts
from vaelab.api import trained_vq
from vaelab.models import saving
from vaelab.config import params as params_mod
from vaelab.core.errors import UserError


@dataclass
class Trained:
    """A trained model's encoder (x -> z_mean) and decoder (z -> image), with the params that made it."""

    exp: object  # vaelab.config.experiments.Experiment
    params: params_mod.Params
    files: artifacts.ModelFiles
    encoder: object
    decoder: object
    hierarchical: bool = False  # the decoder draws lower latents (vaelab.models.architectures.topdown.set_temperature)
    label: object = None  # the class a conditional model draws when a call names none (--class)
    _codes: dict = field(default_factory=dict, repr=False, compare=False)

    _vae: object = field(default=None, repr=False, compare=False)

    @property
    def discrete(self) -> bool:
        """A vq model: its latent is a map of discrete codes (:mod:`vaelab.api.trained_vq` does its verbs)."""
        return self.params.architecture == "vq"

    @property
    def latent_dim(self) -> int:
        if self.discrete:
            raise trained_vq.refuse(self, "a latent dimension (and what needs a latent vector)")
        return int(self.decoder.inputs[0].shape[-1])

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.exp.image_shape)

    @property
    def flat_input(self) -> bool:
        return len(self.encoder.inputs[0].shape) == 2

    @property
    def name(self) -> str:
        return self.files.prefix

    def __repr__(self) -> str:
        latent = (f"{'x'.join(map(str, trained_vq.code_shape(self)))} codes of {self.params.codebook_size}"
                  if self.discrete else f"latent dim {self.latent_dim}")
        return (f"<vaelab model {self.files.prefix!r}: {self.exp.name}, {latent}, "
                f"{self.params.architecture} architecture, {self.params.likelihood} likelihood, "
                f"in {self.files.models_dir}>")

    def images(self, x) -> np.ndarray:
        """``x`` as a float32 batch ``(N, H, W, C)`` in [0, 1] (see the module docstring for what it accepts)."""
        x = np.asarray(x)
        if x.dtype == np.uint8:
            from vaelab.data.datasets import to_float

            x = to_float(x)
        pixels = int(np.prod(self.image_shape))
        if x.size == 0 or x.size % pixels:
            raise UserError(f"expected images of {self.image_shape} ({pixels} values each), got an array of "
                            f"shape {x.shape}")
        x = x.astype(np.float32).reshape((-1, *self.image_shape))
        if not np.isfinite(x).all():
            raise UserError("the images hold NaN or infinite values")
        return x

    @property
    def conditional(self) -> bool:
        """Whether the decoder takes a label beside ``z`` (a model trained with ``--conditional``)."""
        return len(self.decoder.inputs) > 1

    @property
    def class_names(self) -> tuple[str, ...]:
        """The dataset's class names (Caltech101's come from its folders: empty until its data is read)."""
        from vaelab.data import datasets

        known = {"mnist": datasets.MNIST_CLASSES, "mnist_binarized": datasets.MNIST_CLASSES,
                 "fashion_mnist": datasets.FASHION_CLASSES, "cifar10": datasets.CIFAR10_CLASSES}
        cached = next(iter(self._codes.values()), None)
        return known.get(self.exp.name) or (tuple(cached[0].class_names) if cached else ())

    def labels(self, label, n: int) -> np.ndarray | None:
        """``label`` (a class index or name, or one per example) as the int32 (n, 1) a conditional model takes;
        None for an unconditional model, which must get no label."""
        label = self.label if label is None else label
        if not self.conditional:
            if label is not None:
                raise UserError(f"{self.name} is not a conditional model, so it takes no class; train one with "
                                f"--conditional ({self.exp.train_hint(self.params)} --conditional)")
            return None
        k = self.params.N_CLASSES
        if label is None:
            names = self.class_names
            raise UserError(f"{self.name} is a conditional model: say which class to draw (0-{k - 1}"
                            + (f", or a name: {', '.join(names[:10])}" if names else "") + ")")
        if isinstance(label, (str, int, np.integer)):
            label = [self.class_index(label)] * n
        y = np.asarray([self.class_index(v) if isinstance(v, str) else v for v in np.asarray(label).reshape(-1)])
        if len(y) != n or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= k:
            raise UserError(f"labels must be {n} class indices in 0-{k - 1} (or one for all), got {label!r}")
        return y.astype(np.int32).reshape(n, 1)

    def class_index(self, label) -> int:
        from vaelab.data.classes import class_index

        if isinstance(label, (int, np.integer)):
            if not 0 <= label < self.params.N_CLASSES:
                raise UserError(f"class {label} is out of range: this model has classes 0-{self.params.N_CLASSES - 1}")
            return int(label)
        names = self.class_names or tuple(str(i) for i in range(self.params.N_CLASSES))
        return class_index(label, names)

    def codes(self, z) -> np.ndarray:
        """``z`` as a float32 batch ``(N, latent_dim)``: one vector or a batch."""
        z = np.asarray(z, dtype=np.float32)
        if z.ndim not in (1, 2) or z.shape[-1] != self.latent_dim:
            raise UserError(f"latent vectors of this model have {self.latent_dim} values, got shape {z.shape}")
        return z.reshape(-1, self.latent_dim)

    def decode(self, z, label=None) -> np.ndarray:
        """Images (N, H, W, C) in [0, 1]: the decoder's mean at each latent vector (a conditional model's: of
        class ``label``, a class index or name, or one per vector)."""
        from vaelab.explore.latent import decode

        if self.discrete:  # z: code maps (N, h, w)
            return trained_vq.decode(self, z)
        z = self.codes(z)
        return decode(self.decoder, z, self.image_shape, labels=self.labels(label, len(z)))

    def decode_now(self, z, label=None) -> np.ndarray:
        """Decode a few vectors by calling the decoder directly (no ``predict`` set-up): one explorer event."""
        from vaelab.explore.latent import decode_small

        z = np.asarray(z, dtype=np.float32).reshape(-1, self.latent_dim)
        return decode_small(self.decoder, z, self.image_shape, labels=self.labels(label, len(z)))

    def encode(self, x, label=None) -> np.ndarray:
        """z_mean of each image, shaped (N, latent_dim) (a conditional model's given each image's ``label``)."""
        from vaelab.config.experiments import model_inputs
        from vaelab.explore.latent import encode

        x = self.images(x)
        if self.discrete:  # the code maps (N, h, w)
            return trained_vq.encode(self, x)
        return encode(self.encoder, model_inputs(x, self.flat_input), labels=self.labels(label, len(x)))

    def reconstruct(self, x, label=None) -> np.ndarray:
        """The images decoded from their codes (z_mean); a hierarchical model draws its lower latents from their
        posteriors given ``x``, which needs the whole VAE file (``<prefix>_vae.h5``)."""
        x = self.images(x)
        if self.hierarchical:
            return self.vae.reconstruct(self._vae_inputs(x, label)).reshape(x.shape)
        return self.decode(self.encode(x, label), label)

    def _vae_inputs(self, x, label):
        """Images as the whole VAE reads them: its input layout, with the labels packed in when conditional."""
        from vaelab.config.experiments import model_inputs

        y = self.labels(label, len(x))
        if y is not None:
            from vaelab.models.conditional import pack

            x = pack(x, y)
        return model_inputs(x, self.flat_input, packed=y is not None)

    def sampler(self, name: str | None = None, data_dir=None, limit=None):
        """The sampler ``name`` (default: the params' ``sampler``) ready to draw; a fitted one (``gmm``,
        ``two_stage``) is loaded from beside the model, or fitted to the training set's codes and saved there."""
        from vaelab.models import registry as parts
        from vaelab.models import samplers

        sampler = parts.sampler(self.params, name)

        def codes():  # a conditional model's with their labels, for a per-class sampler
            data = self.exp.dataset(self.params, data_dir, limit)
            if self.conditional:
                return self.encode(data.x_train, data.y_train), np.asarray(data.y_train)
            return self.encode(data.x_train)

        return samplers.load_or_fit(sampler, self.files, codes, seed=self.params.seed)

    def prior_log_density(self):
        """A learned prior's log-density, latent vectors (N, d) -> (N,); None for N(0, I), as the originals drew."""
        return None if getattr(self.params, "prior", "standard") == "standard" else self.sampler("prior").log_density

    def sample(self, n: int, sampler=None, seed: int | None = None, data_dir=None, limit=None,
               label=None) -> np.ndarray:
        """``n`` new images, decoded from latent vectors drawn from ``sampler`` (a name, a ready sampler, or None
        for the params' choice; see :meth:`sampler`), seeded by ``seed`` (default: the params' seed); a
        conditional model's of class ``label`` (a class index or name, or one per image)."""
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise UserError(f"the number of samples must be a positive integer, got {n!r}")
        if sampler is None or isinstance(sampler, str):
            sampler = self.sampler(sampler, data_dir, limit)
        if self.discrete:
            return trained_vq.sample(self, sampler, int(n), self.params.seed if seed is None else seed)
        labels = self.labels(label, int(n))  # (n, 1) class indices, or None for an unconditional model
        labels = None if labels is None else labels.reshape(-1)
        z = sampler.sample(int(n), self.latent_dim, self.params.seed if seed is None else seed, labels=labels)
        return self.decode(z, labels)

    def interpolate(self, a, b, steps: int = 8, spherical: bool = False, label=None) -> np.ndarray:
        """``steps`` images along the path from ``a`` to ``b`` (two images, whose codes are used, or two latent
        vectors): alpha 0 decodes exactly ``a``'s code, alpha 1 ``b``'s; ``spherical`` follows the great circle."""
        from vaelab.explore import latent

        if self.discrete:
            raise trained_vq.refuse(self, "interpolating between codes")
        if not isinstance(steps, (int, np.integer)) or steps < 2:
            raise UserError(f"steps must be an integer >= 2, got {steps!r}")
        ends = []
        for end in (a, b):
            end = np.asarray(end)
            ends.append(self.codes(end)[0] if end.shape == (self.latent_dim,) else self.encode(end, label)[0])
        path = (latent.slerp if spherical else latent.interpolate)(ends[0], ends[1], np.linspace(0.0, 1.0, steps))
        return self.decode(path, label)

    @property
    def vae(self):
        """The whole saved VAE (``<prefix>_vae.h5``: both encoder outputs, the likelihood), loaded once."""
        if self._vae is None:
            if not self.files.vae.exists():
                raise UserError(f"{self.files.vae}: no such file; the log-likelihood and a hierarchical model's "
                                f"reconstructions need the whole VAE, which training writes (the shipped models "
                                f"are encoder and decoder only): {self.exp.train_hint(self.params)}")
            self._vae = saving.load_model(self.files.vae, self.exp.train_hint(self.params))
        return self._vae

    def log_likelihood(self, x, k: int = 100, seed: int = 0, label=None) -> np.ndarray:
        """The importance-weighted estimate (IWAE, ``k`` samples) of ``log p(x)`` in nats, one per image; a lower
        bound that tightens as ``k`` grows (``evaluate.py`` reports the same numbers for the test set). A
        conditional model's is ``log p(x | label)``."""
        from vaelab.evaluation import metrics

        if self.discrete:
            raise trained_vq.refuse(self, "the importance-weighted bound (evaluate.py gives its two-stage bound)")
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise UserError(f"k must be a positive integer, got {k!r}")
        x = self._vae_inputs(self.images(x), label)
        return metrics.iwae_log_likelihood(self.vae, x, k=int(k), seed=seed, verbose=0)

    def test_codes(self, data_dir, limit, data=None):
        """``(dataset, z_mean of its test images)``, encoded once per model and data (``data``: the dataset
        already loaded from ``data_dir``, if any)."""
        key = (str(data_dir), limit)
        if key not in self._codes:
            data = data if data is not None else self.exp.dataset(self.params, data_dir, limit)
            self._codes[key] = (data, self.encode(data.x_test, data.y_test if self.conditional else None))
        return self._codes[key]

    def manifold(self, n: int, scale: float = 1.0, fixed: tuple[float, ...] = ()) -> np.ndarray:
        """The decoded n x n grid over the prior's quantiles of z[0], z[1] (other dims at ``fixed``)."""
        from vaelab.explore.latent import manifold_latents, tile

        return tile(self.decode(manifold_latents(n, scale, fixed)), n, n)

    def result(self, results_dir, what: str, ext: str = "png") -> Path:
        return Path(results_dir) / f"{self.files.prefix}_{what}.{ext}"


def load_trained(exp, params, models_dir, model: str | None = None, shipped: bool = False) -> Trained:
    """Load encoder and decoder; the params sidecar beside them (if any) overrides ``params``, and without one
    the sizes the model files show do (:func:`vaelab.models.modelfile.infer_params`). ``shipped``: fall back on the
    model of that name that comes with the project."""
    files = exp.files(params, models_dir, model, shipped=shipped)
    if files.params_json.exists():
        params = params_mod.load_json(exp.params_cls, files.params_json)
    else:
        params = params_from_model_files(exp, params, files)
    hint = exp.train_hint(params)
    rebuilt = {}

    def rebuild(part):
        def build():
            from vaelab.models.vae import build_vae, mean_encoder

            vae = build_vae(params, exp.image_shape)
            rebuilt[part] = vae
            return vae.decoder if part == "decoder" else mean_encoder(vae.encoder)
        return build

    decoder = saving.load_model(files.decoder_path(), hint, rebuild("decoder"))
    if "decoder" in rebuilt:  # a Keras 2 file: its weights went into the decoder, which outputs logits
        from vaelab.models.vae import image_decoder

        decoder = image_decoder(rebuilt["decoder"])
    encoder = saving.load_model(files.encoder, hint, rebuild("encoder"))
    from vaelab.models.architectures.topdown import set_temperature

    trained = Trained(exp, params, files, encoder, decoder, hierarchical=set_temperature(decoder, params.temperature))
    if trained.discrete:
        trained_vq.check_files(trained)
        return trained
    check_architecture(trained)
    if trained.latent_dim != params.latent_dim:
        raise UserError(f"{files.decoder_path()} has latent dim {trained.latent_dim}, the params say "
                        f"{params.latent_dim}; pass --latent-dim {trained.latent_dim} or another --model")
    return trained


def params_from_model_files(exp, params, files: artifacts.ModelFiles):
    """``params`` with the entries the model files determine (latent size, widths, filters, kernels, strides),
    for models without a params file: the original scripts' Keras 2 files, or files copied alone."""
    import dataclasses

    from vaelab.models.modelfile import infer_params

    if not files.decoder_path().is_file():
        return params  # loading says the file is missing
    changed = {k: v for k, v in infer_params(params, files.decoder_path(), files.encoder).items()
               if getattr(params, k) != v}
    if not changed:
        return params
    try:
        new = dataclasses.replace(params, **changed)
    except UserError as e:
        raise UserError(f"{files.decoder_path()}: a model of {', '.join(f'{k} {v}' for k, v in changed.items())} "
                        f"is no {exp.name} model ({e}); pick another --model") from None
    print(f"note: {files.prefix} has no params file; from its model files: "
          + ", ".join(f"{k} {v}" for k, v in changed.items()))
    return new


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
    if asked is not None and trained.discrete:
        raise trained_vq.refuse(trained, "--latent-dim")
    if asked is not None and asked != trained.latent_dim:
        raise UserError(f"--latent-dim {asked} was given, but {trained.files.prefix} has latent dim "
                        f"{trained.latent_dim}; drop --latent-dim or pick another model with --model")


def require_latent_dim(trained: Trained, dims: tuple[int, ...], script: str) -> None:
    if trained.discrete:
        raise trained_vq.refuse(trained, f"{script} (a {' or '.join(map(str, dims))}-D latent space)")
    if trained.latent_dim not in dims:
        raise UserError(f"{script} needs a model with latent dim {' or '.join(map(str, dims))}; "
                        f"{trained.files.prefix} has {trained.latent_dim} (use mnist_generate.py for any dim)")


def load_vae(exp, params, models_dir, model: str | None):
    """The whole saved VAE (encoder with both outputs, decoder, likelihood, objective) and its files and params;
    what evaluation and the fitted samplers need."""
    files = exp.files(params, models_dir, model)
    if files.params_json.exists():
        params = params_mod.load_json(exp.params_cls, files.params_json)
    vae = saving.load_model(files.vae, exp.train_hint(params))
    if not hasattr(vae, "encoder") or not hasattr(vae, "decoder"):
        raise UserError(f"{files.vae} is not a vaelab VAE (no encoder/decoder); evaluation needs the "
                        f"…_vae file that training writes")
    return vae, files, params
