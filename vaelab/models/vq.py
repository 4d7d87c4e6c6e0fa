"""The VQ-VAE (van den Oord et al. 2017): the vector quantiser, the model and its saved encoder/decoder files.

:class:`VectorQuantizer` replaces each vector of the encoder's map ``z_e`` by its nearest codebook entry ``e_k``
(``k = argmax_k 2 z.e_k - |e_k|^2``, the same as the smallest squared distance) and passes the gradient straight
through (``z_e + sg(z_q - z_e)``). Its loss per image is ``commitment_cost * ||z_e - sg(z_q)||^2``, plus the
codebook loss ``||sg(z_e) - z_q||^2`` when the codebook is trained by gradient; with ``ema`` the codebook is
instead the moving average of the encoder outputs assigned to each code (decay 0.99, cluster sizes
Laplace-smoothed: Razavi et al. 2019), non-trainable variables assigned in the training pass, which Keras 3
carries through on TensorFlow, JAX and PyTorch alike.

:class:`VQVAE` is encoder -> quantiser -> decoder; its loss per image is the likelihood's reconstruction NLL (nats)
plus the quantiser's, with trackers ``reconstruction_loss``, ``vq_loss`` and ``perplexity`` (``exp`` of the entropy
of the batch's code usage: K when all codes are used equally, 1 when one is).

The saved files are Keras' own layers only (:func:`code_encoder`, :func:`code_decoder`), so they load in plain
Keras: images -> the integer code map (B, h, w), and code map -> images in [0, 1] (an ``Embedding`` holding the
codebook, the decoder, the likelihood's mean).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from vaelab.models import registry as parts
from vaelab.models.saved import LikelihoodMean

LAPLACE_EPS = 1e-5
ONE_HOT_SCALE = 1e30  # the saved encoder's argmax: 1 + scale * (score - max score), clipped to [0, 1]


@keras.saving.register_keras_serializable(package="vaelab")
class VectorQuantizer(keras.layers.Layer):
    """``z_e (B, h, w, D) -> (z_q straight-through, codes (B, h, w) int32, loss per image, perplexity)``."""

    def __init__(self, codebook_size: int, codebook_dim: int, commitment_cost: float = 0.25, ema: bool = True,
                 decay: float = 0.99, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.codebook_size, self.codebook_dim = int(codebook_size), int(codebook_dim)
        self.commitment_cost, self.ema, self.decay, self.seed = float(commitment_cost), bool(ema), float(decay), seed
        k = self.codebook_size
        init = keras.initializers.RandomUniform(-1.0 / k, 1.0 / k, seed=seed)
        self.codebook = self.add_weight(shape=(k, self.codebook_dim), initializer=init, trainable=not self.ema,
                                        name="codebook")
        if self.ema:  # the counts start at one, the sums at the initial codebook: the first update stays near it
            self.ema_count = self.add_weight(shape=(k,), initializer="ones", trainable=False, name="ema_count")
            self.ema_sum = self.add_weight(shape=(k, self.codebook_dim), initializer="zeros", trainable=False,
                                           name="ema_sum")
            self.ema_sum.assign(np.array(ops.convert_to_numpy(self.codebook)))  # a copy: JAX would share the buffer
        self.built = True

    def scores(self, flat):
        """``2 z.e_k - |e_k|^2`` for each row of ``flat`` (N, D): the nearest code has the largest."""
        e = ops.cast(self.codebook, "float32")
        return ops.matmul(flat, ops.transpose(2.0 * e)) - ops.sum(e * e, axis=1)

    def codes_of(self, z_e):
        flat = ops.reshape(ops.cast(z_e, "float32"), (-1, self.codebook_dim))
        return ops.reshape(ops.cast(ops.argmax(self.scores(flat), axis=-1), "int32"), ops.shape(z_e)[:-1])

    def lookup(self, codes):
        return ops.take(ops.cast(self.codebook, "float32"), codes, axis=0)

    def call(self, z_e, training=False):
        z_e = ops.cast(z_e, "float32")
        codes = self.codes_of(z_e)
        z_q = self.lookup(codes)
        axes = (1, 2, 3)
        loss = self.commitment_cost * ops.sum(ops.square(z_e - ops.stop_gradient(z_q)), axis=axes)
        if not self.ema:
            loss = loss + ops.sum(ops.square(ops.stop_gradient(z_e) - z_q), axis=axes)
        one_hot = ops.one_hot(ops.reshape(codes, (-1,)), self.codebook_size, dtype="float32")
        usage = ops.mean(one_hot, axis=0)
        perplexity = ops.exp(-ops.sum(usage * ops.log(usage + 1e-10)))
        if training and self.ema:
            self.update_codebook(ops.reshape(ops.stop_gradient(z_e), (-1, self.codebook_dim)), one_hot)
        return z_e + ops.stop_gradient(z_q - z_e), codes, loss, perplexity

    def update_codebook(self, flat, one_hot) -> None:
        """One EMA step: counts and sums of the assigned vectors, smoothed counts, codebook = sums / counts."""
        d = self.decay
        count = d * self.ema_count + (1.0 - d) * ops.sum(one_hot, axis=0)
        total = d * self.ema_sum + (1.0 - d) * ops.matmul(ops.transpose(one_hot), flat)
        n = ops.sum(count)
        smoothed = (count + LAPLACE_EPS) / (n + self.codebook_size * LAPLACE_EPS) * n
        self.ema_count.assign(count)
        self.ema_sum.assign(total)
        self.codebook.assign(total / smoothed[:, None])

    def get_config(self):
        return {**super().get_config(), "codebook_size": self.codebook_size, "codebook_dim": self.codebook_dim,
                "commitment_cost": self.commitment_cost, "ema": self.ema, "decay": self.decay, "seed": self.seed}


@keras.saving.register_keras_serializable(package="vaelab")
class VQVAE(keras.Model):
    """encoder ``x -> z_e``, :class:`VectorQuantizer`, decoder ``z_q -> likelihood parameters``."""

    discrete = True  # its latent is a map of codes (the continuous VAE's is a vector)
    conditional = False
    hierarchical = False
    prior = None

    def __init__(self, encoder, decoder, codebook_size: int = 256, commitment_cost: float = 0.25, ema: bool = True,
                 decay: float = 0.99, likelihood: str = "bernoulli", likelihood_options: dict | None = None,
                 seed: int | None = None, binarize: bool = False, binarize_seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.image_shape = tuple(encoder.inputs[0].shape[1:])
        self.code_shape = tuple(encoder.outputs[0].shape[1:3])
        self.quantizer = VectorQuantizer(codebook_size, encoder.outputs[0].shape[-1], commitment_cost, ema, decay,
                                         seed=seed, name="quantizer")
        self.likelihood = parts.lookup("likelihood", likelihood)(self.image_shape[-1], **(likelihood_options or {}))
        self.seed, self.binarize, self.binarize_seed = seed, bool(binarize), binarize_seed
        self.binarize_generator = keras.random.SeedGenerator(binarize_seed) if binarize else None
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.vq_tracker = keras.metrics.Mean(name="vq_loss")
        self.perplexity_tracker = keras.metrics.Mean(name="perplexity")

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def call(self, x, training=False):
        x = ops.cast(x, "float32")
        if self.binarize and training:
            x = ops.cast(keras.random.uniform(ops.shape(x), seed=self.binarize_generator) < x, "float32")
        z_q, codes, vq_loss, perplexity = self.quantizer(self.encoder(x, training=training), training=training)
        return {"params": self.decoder(z_q, training=training), "codes": codes, "vq_loss": vq_loss,
                "perplexity": perplexity, "x": x}

    def sample_terms(self, x, outputs) -> dict:
        recon, log_px = self.likelihood.loss_and_log_prob(ops.cast(x, "float32"), outputs["params"])
        return {"recon": recon, "log_px": log_px, "vq": outputs["vq_loss"]}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        terms = self.sample_terms(y_pred["x"], y_pred)
        batch = ops.cast(ops.shape(y_pred["x"])[0], "float32")
        self.reconstruction_tracker.update_state(ops.mean(terms["recon"]), sample_weight=batch)
        self.vq_tracker.update_state(ops.mean(terms["vq"]), sample_weight=batch)
        self.perplexity_tracker.update_state(y_pred["perplexity"], sample_weight=batch)
        total = ops.mean(terms["recon"] + terms["vq"])
        for extra in self.losses:
            total = total + ops.cast(ops.sum(extra), "float32")
        return total

    @property
    def metrics(self):
        ours = [self.reconstruction_tracker, self.vq_tracker, self.perplexity_tracker]
        return [m for m in super().metrics if all(m is not o for o in ours)] + ours

    # --- numpy verbs (evaluation, pictures) ---------------------------------------------------------

    def encode_codes(self, x, batch_size: int = 256) -> np.ndarray:
        """The code map (N, h, w) int32 of images ``x`` (a numpy array)."""
        out = [ops.convert_to_numpy(self.quantizer.codes_of(self.encoder(ops.convert_to_tensor(
            np.asarray(x[i:i + batch_size], dtype=np.float32))))) for i in range(0, len(x), batch_size)]
        return np.concatenate(out).astype(np.int32) if out else np.zeros((0, *self.code_shape), np.int32)

    def decode_params(self, codes):
        return self.decoder(self.quantizer.lookup(ops.convert_to_tensor(np.asarray(codes, dtype=np.int32))))

    def reconstruct(self, x, batch_size: int = 256) -> np.ndarray:
        """Images in [0, 1] decoded from the codes of ``x``."""
        out = [ops.convert_to_numpy(self.likelihood.mean(self.decode_params(self.encode_codes(x[i:i + batch_size]))))
               for i in range(0, len(x), batch_size)]
        return np.concatenate(out)

    def log_px_given_codes(self, x, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """``(log p(x | z_q(x)) in nats per image, the code maps)`` of images ``x``."""
        log_px, all_codes = [], []
        for i in range(0, len(x), batch_size):
            xb = np.asarray(x[i:i + batch_size], dtype=np.float32)
            codes = self.encode_codes(xb, batch_size)
            _, lp = self.likelihood.loss_and_log_prob(ops.convert_to_tensor(xb), self.decode_params(codes))
            log_px.append(ops.convert_to_numpy(lp))
            all_codes.append(codes)
        return np.concatenate(log_px).astype(np.float64), np.concatenate(all_codes)

    # --- saving -------------------------------------------------------------------------------------

    def get_config(self):
        q = self.quantizer
        return {**super().get_config(), "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder), "codebook_size": q.codebook_size,
                "commitment_cost": q.commitment_cost, "ema": q.ema, "decay": q.decay, "seed": self.seed,
                "likelihood": self.likelihood.name, "likelihood_options": self.likelihood.options(),
                "binarize": self.binarize, "binarize_seed": self.binarize_seed}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for part in ("encoder", "decoder"):
            config[part] = keras.saving.deserialize_keras_object(config[part], custom_objects=custom_objects)
        return cls(**config)


def build_vqvae(params, image_shape, binarize: bool = False) -> VQVAE:
    """The VQ-VAE the params describe (architecture ``vq``: :mod:`vaelab.models.architectures.vq`)."""
    lik = parts.likelihood(params, image_shape[-1])
    encoder, decoder = parts.architecture(params).build(params, tuple(image_shape), lik.param_channels())
    return VQVAE(encoder, decoder, params.codebook_size, params.commitment_cost, params.codebook_ema,
                 params.codebook_decay, likelihood=lik.name, likelihood_options=lik.options(), seed=params.seed,
                 binarize=binarize, binarize_seed=params.seed + 1 if binarize else None, name="vae")


def code_encoder(vae: VQVAE) -> keras.Model:
    """images -> integer code map (B, h, w), of Keras' own layers: the scores ``2 z.e_k - |e_k|^2`` as a 1x1
    ``Dense``, their maximum by max pooling, ``1 + 1e30 (score - max)`` clipped to [0, 1] (one-hot: only the best
    code is not far below), its index by a ``Dense`` over 0..K-1, made an integer by ``Discretization``."""
    from keras import layers

    k = vae.codebook_size
    h, w = vae.code_shape
    e = ops.convert_to_numpy(vae.quantizer.codebook).astype(np.float32)
    x = keras.Input(shape=vae.image_shape, name="x")
    z_e = vae.encoder(x)
    score_layer = layers.Dense(k, name="code_scores", dtype="float32")
    s = score_layer(z_e)
    score_layer.set_weights([2.0 * e.T, -np.sum(e * e, axis=1)])
    s = layers.Reshape((h * w, k, 1), name="scores_per_position")(s)
    best = layers.MaxPooling2D(pool_size=(1, k), name="best_score")(s)
    best = layers.UpSampling2D(size=(1, k), name="best_score_each")(best)
    gap = layers.Subtract(name="below_best")([s, best])
    one_hot = layers.ReLU(max_value=1.0, name="one_hot")(layers.Rescaling(ONE_HOT_SCALE, offset=1.0,
                                                                          name="sharpen")(gap))
    index_layer = layers.Dense(1, use_bias=False, name="code_index", dtype="float32")
    index = index_layer(layers.Reshape((h, w, k), name="one_hot_map")(one_hot))
    index_layer.set_weights([np.arange(k, dtype=np.float32).reshape(k, 1)])
    index = layers.Reshape((h, w), name="code_float")(index)
    codes = layers.Discretization(bin_boundaries=[i + 0.5 for i in range(k - 1)], name="codes")(index)
    return keras.Model(x, codes, name="encoder_codes")


def code_decoder(vae: VQVAE) -> keras.Model:
    """integer code map (B, h, w) -> images in [0, 1]: an ``Embedding`` with the codebook, the decoder and the
    likelihood's mean (Keras' ``Activation`` where it is one, else the registered LikelihoodMean)."""
    from keras import layers

    codes = keras.Input(shape=vae.code_shape, dtype="int32", name="codes")
    table = layers.Embedding(vae.codebook_size, vae.quantizer.codebook_dim, name="codebook")
    z_q = table(codes)
    table.set_weights([ops.convert_to_numpy(vae.quantizer.codebook).astype(np.float32)])
    out = vae.decoder(z_q)
    lik = vae.likelihood
    if lik.mean_activation():
        mean = layers.Activation(lik.mean_activation(), name="x_hat_mean")(out)
    else:
        mean = LikelihoodMean(lik.name, lik.channels, lik.options(), name="x_hat_mean")(out)
    return keras.Model(codes, mean, name="decoder")
