"""A small gated PixelCNN (van den Oord et al. 2016, "Conditional image generation with PixelCNN decoders") over a
VQ-VAE's code maps: the learned autoregressive prior ``p(c) = prod_i p(c_i | c_<i)`` in raster order.

Codes are embedded, then ``layers`` gated layers each have a vertical stack (a k x k convolution masked to the rows
above the position: strictly above in the first layer, type A; up to its own row, which the vertical stack only
holds rows above of, after) and a horizontal stack (a 1 x k convolution masked to the positions left of it: strictly
in the first layer, type A; up to itself after, type B) that also takes the vertical stack through a 1x1
convolution. Each unit is ``tanh(a) * sigmoid(b)``; the horizontal stack is residual after the first layer. Two
1x1 convolutions end in a softmax over the ``codebook_size`` codes per position. So the output at position i
depends only on the codes before i (tested: changing a later code changes no earlier output).

:class:`GatedPixelCnn` trains on code maps with :meth:`~GatedPixelCnn.compute_loss` (the negative log-likelihood
in nats per map) and samples position by position, all maps of a batch at once (h * w passes).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def causal_mask(kernel: tuple[int, int], stack: str, mask_type: str) -> np.ndarray:
    """The (kh, kw) 0/1 mask: ``v`` keeps rows above the centre (and the centre row for type B), ``h`` keeps
    columns left of the centre (and the centre for type B)."""
    kh, kw = kernel
    mask = np.zeros((kh, kw), dtype=np.float32)
    ch, cw = kh // 2, kw // 2
    if stack == "v":
        mask[:ch + (mask_type == "B")] = 1.0
    else:
        mask[ch, :cw + (mask_type == "B")] = 1.0
    return mask


@keras.saving.register_keras_serializable(package="vaelab")
class MaskedConv2D(keras.layers.Layer):
    """A "same" convolution (odd kernel sides) whose kernel is multiplied by :func:`causal_mask`."""

    def __init__(self, filters: int, kernel_size, stack: str = "v", mask_type: str = "B", **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size = int(filters), tuple(int(k) for k in kernel_size)
        self.stack, self.mask_type = stack, mask_type
        self.mask = causal_mask(self.kernel_size, stack, mask_type)[:, :, None, None]

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(*self.kernel_size, int(input_shape[-1]), self.filters),
                                      initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")
        self.built = True

    def call(self, x):
        return ops.conv(x, self.kernel * ops.convert_to_tensor(self.mask), padding="same") + self.bias

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "stack": self.stack, "mask_type": self.mask_type}


def _gate(t):
    a, b = ops.split(t, 2, axis=-1)
    return ops.tanh(a) * ops.sigmoid(b)


@keras.saving.register_keras_serializable(package="vaelab")
class GatedPixelCnn(keras.Model):
    """codes (B, h, w) int -> logits (B, h, w, codebook_size)."""

    def __init__(self, codebook_size: int, code_shape, layers: int = 5, filters: int = 32, kernel: int = 3,
                 **kwargs):
        super().__init__(**kwargs)
        self.codebook_size, self.code_shape = int(codebook_size), tuple(int(s) for s in code_shape)
        self.n_layers, self.filters, self.kernel = int(layers), int(filters), int(kernel)
        f, k = self.filters, self.kernel
        L = keras.layers
        self.embedding = L.Embedding(self.codebook_size, f, name="embedding")
        self.v_convs, self.h_convs, self.v_to_h, self.h_out = [], [], [], []
        for i in range(self.n_layers):
            t = "A" if i == 0 else "B"
            self.v_convs.append(MaskedConv2D(2 * f, (k, k), "v", t, name=f"v_conv{i}"))
            self.h_convs.append(MaskedConv2D(2 * f, (1, k), "h", t, name=f"h_conv{i}"))
            self.v_to_h.append(L.Conv2D(2 * f, 1, name=f"v_to_h{i}"))
            self.h_out.append(L.Conv2D(f, 1, name=f"h_out{i}"))
        self.head = L.Conv2D(f, 1, activation="relu", name="head")
        self.logits = L.Conv2D(self.codebook_size, 1, name="logits", dtype="float32")
        self(np.zeros((1, *self.code_shape), dtype=np.int32))  # built now, so a saved file's weights load

    def call(self, codes, training=False):
        x = self.embedding(ops.cast(codes, "int32"))
        v = h = x
        for i in range(self.n_layers):
            v_pre = self.v_convs[i](v)
            h_pre = self.h_convs[i](h) + self.v_to_h[i](v_pre)
            v = _gate(v_pre)
            out = self.h_out[i](_gate(h_pre))
            h = out if i == 0 else h + out  # no residual in the type-A layer: h holds the position's own code
        return self.logits(self.head(ops.relu(h)))

    def log_prob(self, codes, logits=None):
        """``log p(c)`` in nats per map (B,)."""
        logits = self(codes) if logits is None else logits
        log_p = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        one_hot = ops.one_hot(ops.cast(codes, "int32"), self.codebook_size, dtype="float32")
        return ops.sum(log_p * one_hot, axis=(1, 2, 3))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return -ops.mean(self.log_prob(x, y_pred))

    def sample(self, n: int, seed: int = 0, batch_size: int = 1000) -> np.ndarray:
        """``n`` code maps (n, h, w) int32 drawn position by position in raster order (numpy's seeded draws)."""
        rng = np.random.default_rng(seed)
        h, w = self.code_shape
        out = []
        for start in range(0, n, batch_size):
            codes = np.zeros((min(batch_size, n - start), h, w), dtype=np.int32)
            for i in range(h):
                for j in range(w):
                    logits = ops.convert_to_numpy(self(codes))[:, i, j].astype(np.float64)
                    p = np.exp(logits - logits.max(axis=1, keepdims=True))
                    p /= p.sum(axis=1, keepdims=True)
                    u = rng.random((len(codes), 1))
                    codes[:, i, j] = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), self.codebook_size - 1)
            out.append(codes)
        return np.concatenate(out)

    def log_prob_numpy(self, codes, batch_size: int = 500) -> np.ndarray:
        return np.concatenate([ops.convert_to_numpy(self.log_prob(ops.convert_to_tensor(codes[i:i + batch_size])))
                               for i in range(0, len(codes), batch_size)]).astype(np.float64)

    def get_config(self):
        return {**super().get_config(), "codebook_size": self.codebook_size, "code_shape": list(self.code_shape),
                "layers": self.n_layers, "filters": self.filters, "kernel": self.kernel}
