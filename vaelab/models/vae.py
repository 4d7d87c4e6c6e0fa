"""The VAE: an encoder and a decoder from :mod:`vaelab.models.architectures`, a likelihood and an objective.

:class:`VAE` wires ``encoder: x -> [z_mean, z_log_var, *features]``, the :class:`~vaelab.models.layers.Sampling` layer
and the decoder. Its loss is overridden in :meth:`VAE.compute_loss` rather than in a ``train_step`` with
``tf.GradientTape``, so the same model trains on TensorFlow, JAX and PyTorch. Per sample it computes the terms
the objectives (:mod:`vaelab.models.objectives`) combine: the likelihood's reconstruction term and ``log p(x|z)``, the
analytic KL (per dimension of the global latent, plus the lower layers' of a hierarchical decoder) and
``log q(z|x) - log p(z)`` at the sampled z. With the ELBO objective and the Bernoulli likelihood the loss is
the original scripts' ``784 * BCE + KL``, in nats per image.

:meth:`VAE.importance_terms` gives the same terms for ``s`` samples of each example, which the evaluation's
ELBO and importance-weighted bound (:mod:`vaelab.evaluation.metrics`) are built on, for every architecture alike.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from vaelab.models import likelihoods as likelihoods_mod
from vaelab.models import objectives as objectives_mod
from vaelab.models import registry as parts
from vaelab.models.gaussian import kl_divergence, kl_per_dimension, log_q_minus_log_p
from vaelab.models.layers import DiscretizedLogisticMean, Sampling
from vaelab.models.saved import LikelihoodMean, architecture_text, image_decoder, mean_encoder  # noqa: F401

__all__ = ["VAE", "ConditionalVAE", "DiscretizedLogisticMean", "image_decoder", "mean_encoder", "build_vae", "kl_divergence"]


def _scale_for_replicas(loss):
    """Divide by the replica count under ``tf.distribute``.

    Keras scales its own compiled losses this way, but not a ``compute_loss`` override: without this a
    2-replica run reports and applies twice the loss (tested in tests/training/test_distribute.py). Exact because
    :mod:`vaelab.training.distribute` gives every replica an equal share of each batch. JAX's ``DataParallel``
    computes on the global batch, so there is nothing to divide.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            loss = loss / replicas
    return loss


@keras.saving.register_keras_serializable(package="vaelab")
class VAE(keras.Model):
    """Variational autoencoder; ``call`` returns the per-sample terms (``params``, ``kl``, ``log_qp``, ...).

    ``likelihood`` and ``objective`` are names from :mod:`vaelab.models.registry` (with ``likelihood_options`` such as
    ``{"mixtures": 5}``); ``kl_warmup_steps`` optimizer steps raise the KL weight linearly from 0;
    ``binarize`` redraws every training image as ``Bernoulli(grey level)`` (dynamically binarized MNIST).
    ``image_shape`` is the images' (H, W, C) when the encoder takes them flattened. ``reconstruction`` and
    ``reconstruction_weight`` are the configuration of models saved before likelihoods were parts.
    """

    def __init__(self, encoder, decoder, likelihood: str = "bernoulli", likelihood_options: dict | None = None,
                 objective: str = "elbo", iwae_k: int = 1, kl_weight: float = 1.0, kl_warmup_steps: int = 0,
                 free_bits: float = 0.0, epsilon_std: float = 1.0, seed: int | None = None, binarize: bool = False,
                 binarize_seed: int | None = None, image_shape=None, reconstruction: str | None = None,
                 reconstruction_weight: float | None = None, prior=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.prior = prior  # a learned prior of vaelab.models.priors; None: N(0, I)
        self.image_shape = tuple(image_shape or encoder.inputs[0].shape[1:])
        channels = self.image_shape[-1] if len(self.image_shape) == 3 else 1
        self.reconstruction, self.reconstruction_weight = reconstruction, reconstruction_weight
        self.hierarchical = len(encoder.outputs) > 2
        if reconstruction is not None:
            out = decoder.outputs[0].shape[-1]
            self.likelihood = likelihoods_mod.from_legacy(reconstruction, reconstruction_weight,
                                                          math.prod(self.image_shape), channels, out)
        else:
            self.likelihood = parts.lookup("likelihood", likelihood)(channels, **(likelihood_options or {}))
        self.objective = objectives_mod.make(parts.lookup("objective", objective), int(iwae_k))
        self.kl_weight, self.kl_warmup_steps, self.free_bits = float(kl_weight), int(kl_warmup_steps), float(free_bits)
        self.binarize, self.binarize_seed = bool(binarize), binarize_seed
        self.binarize_generator = keras.random.SeedGenerator(binarize_seed) if binarize else None
        self.sampling = Sampling(epsilon_std=epsilon_std, seed=seed, name="sampling")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")
        self.beta_tracker = keras.metrics.Mean(name="kl_weight") if self.kl_warmup_steps else None
        # Training steps taken, for the warm-up: a model variable (not the optimizer's iteration count, which the
        # JAX trainer does not hand to compute_loss), so it is checkpointed and counts on every backend.
        self.kl_warmup_step = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                              name="kl_warmup_step") if self.kl_warmup_steps else None

    @property
    def latent_dim(self) -> int:
        return int(self.encoder.outputs[0].shape[-1])

    # --- the forward pass -------------------------------------------------------------------------

    discrete = False  # a vq model's latent is a map of codes (vaelab.models.vq)
    conditional = False  # ConditionalVAE (vaelab.models.conditional): the inputs carry their labels

    def call(self, x, training=False):
        """One pass over ``x``: ``k`` samples per example with the IWAE objective, else one. When the targets
        differ from ``x`` (binarized, repeated as the samples are, or the images without their labels) they come
        back as ``"x"``."""
        binarize = self.binarize and training
        features, x = self.encode_batch(x, training, binarize)
        target = x if binarize or self.conditional else None
        k = self.objective.samples
        if k > 1:
            features = [ops.repeat(f, k, axis=0) for f in features]
            target = ops.repeat(x, k, axis=0)
        z = self.sampling([features[0], features[1]])
        out = self._decode(z, features, training)
        return out if target is None else {**out, "x": ops.cast(target, "float32")}

    def encode_batch(self, x, training=False, binarize=False):
        """``(encoder features [z_mean, z_log_var, ...], the images they describe)`` of an input batch; with
        ``binarize`` the images are redrawn as Bernoulli(grey level) first."""
        if binarize:
            u = keras.random.uniform(ops.shape(x), dtype=x.dtype, seed=self.binarize_generator)
            x = ops.cast(u < x, x.dtype)
        return list(self.encoder(x, training=training)), x

    def decoder_inputs(self, z, features):
        """What the decoder takes for ``z``: a hierarchical decoder also the encoder's bottom-up features."""
        return [z, *features[2:]] if self.hierarchical else z

    def _decode(self, z, features, training=False) -> dict:
        z_mean, z_log_var = features[0], features[1]
        if self.hierarchical:
            params, kl_lower, log_qp_lower = self.decoder(self.decoder_inputs(z, features), training=training)
        else:
            params = self.decoder(self.decoder_inputs(z, features), training=training)
            kl_lower = log_qp_lower = ops.zeros(ops.shape(z)[:1], dtype="float32")
        kl_dims = kl_per_dimension(ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32"))
        if self.prior is None:
            kl = ops.sum(kl_dims, axis=-1)
            log_qp = log_q_minus_log_p(ops.cast(z, "float32"), ops.cast(z_mean, "float32"),
                                       ops.cast(z_log_var, "float32"))
        else:  # no closed form: the one-sample estimate log q(z|x) - log p(z) at the drawn z
            from vaelab.models.priors import gaussian_log_density

            kl = log_qp = gaussian_log_density(z, z_mean, z_log_var) - self.prior.log_prob(z, self.encoder)
        return {"params": params, "z_mean": z_mean, "z_log_var": z_log_var, "kl_dims": kl_dims,
                "kl_lower": kl_lower, "kl": kl + kl_lower, "log_qp": log_qp + log_qp_lower}

    def _images(self, tensor):
        """``tensor`` in image layout (B, H, W, ·) (dense models work on flat vectors)."""
        if len(self.image_shape) != 3 or len(tensor.shape) == 4:
            return tensor
        return ops.reshape(tensor, (-1, *self.image_shape[:2], tensor.shape[-1] // math.prod(self.image_shape[:2])))

    def sample_terms(self, x, outputs) -> dict:
        """Per-sample terms for the objective: ``recon``, ``log_px``, ``kl``, ``kl_dims``, ``kl_lower``, ``log_qp``."""
        target, params = ops.cast(x, "float32"), outputs["params"]
        # A pixelwise likelihood takes flat vectors as they are: on JAX's CPU backend the (B, 28, 28, 1) layout
        # made the sum over pixels a fused reduction that cost a sixth of the dense MNIST step (docs/benchmarks.md).
        if not self.likelihood.pixelwise or len(target.shape) != len(params.shape):
            target, params = self._images(target), self._images(params)
        recon, log_px = self.likelihood.loss_and_log_prob(target, params)
        return {"recon": recon, "log_px": log_px, **{k: outputs[k] for k in ("kl", "kl_dims", "kl_lower", "log_qp")}}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        terms = self.sample_terms(y_pred.get("x", x), y_pred)
        beta = self.kl_weight
        if self.kl_warmup_step is not None:
            beta = objectives_mod.kl_weight_at(self.kl_warmup_step, self.kl_warmup_steps, self.kl_weight)
            if training:
                self.kl_warmup_step.assign_add(1.0)
        total = self.objective.loss(terms, beta, self.free_bits)
        # Weight each batch by its size, as Keras weights its own "loss" tracker: otherwise a short last
        # batch counts as much as a full one and the reported loss is not reconstruction + weight * KL.
        batch = ops.cast(ops.shape(x)[0], "float32")
        self.reconstruction_tracker.update_state(ops.mean(terms["recon"]), sample_weight=batch)
        self.kl_tracker.update_state(ops.mean(terms["kl"]), sample_weight=batch)
        if self.beta_tracker is not None:
            self.beta_tracker.update_state(beta)
        for extra in self.losses:  # regularisers, if a builder adds any
            total = total + ops.cast(ops.sum(extra), "float32")
        return _scale_for_replicas(total)

    @property
    def metrics(self):
        ours = [m for m in (self.reconstruction_tracker, self.kl_tracker, self.beta_tracker) if m is not None]
        return [m for m in super().metrics if all(m is not o for o in ours)] + ours

    # --- evaluation -------------------------------------------------------------------------------

    def importance_terms(self, x, samples: int, seed_generator) -> dict:
        """``log_px``, ``log_qp`` and ``kl`` for ``samples`` draws of z ~ q(z|x) per example (rows of example i
        are i*samples .. i*samples + samples - 1); the encoder runs once per example. The noise comes from
        ``seed_generator`` (and a hierarchical decoder's own generator), so a reseeded model repeats exactly."""
        features, x = self.encode_batch(ops.convert_to_tensor(x, dtype="float32"))
        if samples > 1:
            features = [ops.repeat(f, samples, axis=0) for f in features]
            x = ops.repeat(x, samples, axis=0)
        terms = self.sample_terms(x, self._decode(self.posterior_draw(features, seed_generator), features))
        return {k: ops.convert_to_numpy(terms[k]) for k in ("log_px", "log_qp", "kl")}

    @staticmethod
    def posterior_draw(features, seed_generator):
        """``z ~ q(z|x)`` from the encoder's ``[z_mean, z_log_var, ...]``, the noise from ``seed_generator``: the
        evaluation's draw of the global latent (training's goes through the ``Sampling`` layer)."""
        z_mean, z_log_var = features[0], features[1]
        eps = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def reconstruct(self, x, batch_size: int = 256):
        """Images in [0, 1] decoded from ``z_mean`` of ``x`` (a numpy array), as a numpy array; a hierarchical
        model's lower latents are drawn from their posteriors given ``x``, which the saved decoder (``z`` alone)
        cannot do."""
        import numpy as np

        parts_ = []
        for start in range(0, len(x), batch_size):
            features = self.encode_batch(ops.convert_to_tensor(x[start:start + batch_size], dtype="float32"))[0]
            out = self.decoder(self.decoder_inputs(features[0], features))
            if self.hierarchical:
                out = out[0]
            parts_.append(ops.convert_to_numpy(self.likelihood.mean(out)))
        return np.concatenate(parts_)

    # --- saving -----------------------------------------------------------------------------------

    def get_config(self):
        config = {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "objective": self.objective.name, "iwae_k": self.objective.samples,
            "kl_weight": self.kl_weight, "kl_warmup_steps": self.kl_warmup_steps, "free_bits": self.free_bits,
            "epsilon_std": self.sampling.epsilon_std, "seed": self.sampling.seed,
            "binarize": self.binarize, "binarize_seed": self.binarize_seed, "image_shape": list(self.image_shape),
        }
        if self.prior is not None:
            config["prior"] = keras.saving.serialize_keras_object(self.prior)
        if self.reconstruction is not None:
            config.update(reconstruction=self.reconstruction, reconstruction_weight=self.reconstruction_weight)
        else:
            config.update(likelihood=self.likelihood.name, likelihood_options=self.likelihood.options())
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for part in ("encoder", "decoder", "prior"):
            if config.get(part) is not None:
                config[part] = keras.saving.deserialize_keras_object(config[part], custom_objects=custom_objects)
        return cls(**config)


@keras.saving.register_keras_serializable(package="vaelab")
class ConditionalVAE(VAE):
    """:class:`~vaelab.models.vae.VAE` whose inputs carry their labels (:func:`vaelab.models.conditional.pack`), and whose encoder and
    decoder take them as a second input."""

    conditional = True

    def __init__(self, encoder, decoder, n_classes: int, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        self.n_classes = int(n_classes)

    def encode_batch(self, x, training=False, binarize=False):
        from vaelab.models.conditional import unpack

        image, label = unpack(x)
        # Real labels are in range already; the clip is for Keras' build on PyTorch, which calls the model on a
        # placeholder batch whose label channel is no class index (CategoryEncoding then refused it).
        label = ops.clip(label, 0, self.n_classes - 1)
        if binarize:
            u = keras.random.uniform(ops.shape(image), dtype=image.dtype, seed=self.binarize_generator)
            image = ops.cast(u < image, image.dtype)
        features = self.encoder([image, label], training=training)
        return [*features, label], image

    def decoder_inputs(self, z, features):
        label = features[-1]
        return [z, label, *features[2:-1]] if self.hierarchical else [z, label]

    def get_config(self):
        return {**super().get_config(), "n_classes": self.n_classes}


@keras.saving.register_keras_serializable(package="vaelab")
class DynamicBinarizationVAE(VAE):
    """The binarized-MNIST VAE as saved before ``binarize`` was an option of :class:`VAE` (read, not written)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("binarize", True)
        super().__init__(*args, **kwargs)


def build_vae(params, image_shape, binarize: bool = False, steps_per_epoch: int = 1,
              n_classes: int | None = None) -> VAE:
    """The VAE the params describe, for images of ``image_shape``: the architecture's encoder and decoder, the
    likelihood, the objective and its options (the KL warm-up's epochs counted in optimizer steps of
    ``steps_per_epoch``); with ``params.conditional`` the class-conditional one over ``n_classes`` labels (default:
    the dataset's, ``params.N_CLASSES``); the vq architecture's is a :class:`vaelab.models.vq.VQVAE`."""
    if params.architecture == "vq":
        from vaelab.models.vq import build_vqvae

        return build_vqvae(params, image_shape, binarize=binarize)
    arch = parts.architecture(params)
    lik = parts.likelihood(params, image_shape[-1])
    objective = parts.objective(params)
    extra = {}
    if params.conditional:
        from vaelab.models import conditional

        extra["n_classes"] = int(n_classes or params.N_CLASSES)
        encoder, decoder = conditional.build_parts(arch, params, tuple(image_shape), lik.param_channels(),
                                                   extra["n_classes"])
        cls = ConditionalVAE
    else:
        encoder, decoder = arch.build(params, tuple(image_shape), lik.param_channels())
        cls = VAE
    from vaelab.models import priors

    extra["prior"] = priors.build(params, encoder)
    return cls(encoder, decoder, **extra, likelihood=lik.name, likelihood_options=lik.options(), objective=objective.name,
               iwae_k=objective.samples, kl_weight=params.kl_weight, kl_warmup_steps=params.kl_warmup * steps_per_epoch,
               free_bits=params.free_bits, epsilon_std=params.epsilon_std, seed=params.seed, binarize=binarize,
               binarize_seed=params.seed + 1 if binarize else None,
               image_shape=image_shape if arch.flat_input else None, name="vae")
