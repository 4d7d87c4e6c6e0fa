"""A trained model as the generate scripts use it: its encoder (x -> z_mean), decoder (z -> image) and params.

:func:`load_trained` finds the files (``--model`` or the params' prefix, the original scripts' names too),
reads the params sidecar, loads both models in safe mode (rebuilding the architecture for Keras 2 files the
current Keras cannot read whole) and checks that they are this dataset's encoder and decoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vaelab.core import artifacts
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
    _codes: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def latent_dim(self) -> int:
        return int(self.decoder.inputs[0].shape[-1])

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.exp.image_shape)

    @property
    def flat_input(self) -> bool:
        return len(self.encoder.inputs[0].shape) == 2

    def decode(self, z) -> np.ndarray:
        from vaelab.explore.latent import decode

        return decode(self.decoder, z, self.image_shape)

    def decode_now(self, z) -> np.ndarray:
        """Decode a few vectors by calling the decoder directly (no ``predict`` set-up): one explorer event."""
        from vaelab.explore.latent import decode_small

        return decode_small(self.decoder, z, self.image_shape)

    def encode(self, x) -> np.ndarray:
        from vaelab.config.experiments import model_inputs
        from vaelab.explore.latent import encode

        return encode(self.encoder, model_inputs(np.asarray(x), self.flat_input))

    def test_codes(self, data_dir, limit, data=None):
        """``(dataset, z_mean of its test images)``, encoded once per model and data (``data``: the dataset
        already loaded from ``data_dir``, if any)."""
        key = (str(data_dir), limit)
        if key not in self._codes:
            data = data if data is not None else self.exp.dataset(self.params, data_dir, limit)
            self._codes[key] = (data, self.encode(data.x_test))
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
    trained = Trained(exp, params, files, encoder, decoder)
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
    if asked is not None and asked != trained.latent_dim:
        raise UserError(f"--latent-dim {asked} was given, but {trained.files.prefix} has latent dim "
                        f"{trained.latent_dim}; drop --latent-dim or pick another model with --model")


def require_latent_dim(trained: Trained, dims: tuple[int, ...], script: str) -> None:
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
