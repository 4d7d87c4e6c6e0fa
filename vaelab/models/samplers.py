"""Where generated latent vectors come from: the prior, a box, or a density fitted to the training codes.

A VAE's aggregate posterior (the training set's codes) rarely fills the N(0, I) prior: samples from the prior
land in holes between the classes and decode to blurry in-betweens. Fitting a density to the codes after
training and sampling from it ("ex-post density estimation", Ghosh et al. 2020; the two-stage VAE of Dai &
Wipf 2019; pythae's GaussianMixtureSampler / TwoStageVAESampler) gives sharper, more typical samples.

- ``normal``: z ~ N(0, I), the prior;
- ``uniform``: z uniform on [-2, 2]^d (the original scripts' grids);
- ``gmm``: a Gaussian mixture (full covariances, ``gmm_components``) fitted by EM to the training set's z_mean;
- ``two-stage``: a second, small VAE trained on those codes, whose decoder maps u ~ N(0, I) to codes;
- ``pixelcnn`` (vq models only): a gated PixelCNN over the training set's maps of discrete codes.

Fitted samplers are saved beside the model (``<prefix>_sampler_gmm10.npz``, ``<prefix>_sampler_two-stage.h5``, ``…_pixelcnn.h5``)
and reused; training a model again deletes its old samplers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from vaelab.core import artifacts
from vaelab.core.errors import UserError
from vaelab.models.mixtures import fit_gmm, log_gaussians, pad, sample_gmm  # noqa: F401 - also the public names here

UNIFORM_BOUND = 2.0


@dataclass
class Sampler:
    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    fitted: ClassVar[bool] = False  # needs the training codes

    def file(self, files: artifacts.ModelFiles) -> Path | None:
        """Where the fitted sampler is saved beside the model (None: nothing to save)."""
        return None

    def fit(self, codes: np.ndarray, seed: int = 0, labels: np.ndarray | None = None) -> "Sampler":
        """Fit to the training codes (N, d); a conditional model's come with their ``labels`` (N,)."""
        return self

    def sample(self, n: int, latent_dim: int, seed: int = 0, labels: np.ndarray | None = None) -> np.ndarray:
        """``n`` latent vectors; a conditional model's for the classes ``labels`` (n,) it will decode them as
        (only a per-class sampler draws anything different for them)."""
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


@dataclass
class Normal(Sampler):
    name: ClassVar[str] = "normal"
    help: ClassVar[str] = "z ~ N(0, I), the prior"

    def sample(self, n, latent_dim, seed=0, labels=None):
        return np.random.default_rng(seed).standard_normal((n, latent_dim))

    def describe(self) -> str:
        return "N(0, I)"


@dataclass
class Uniform(Sampler):
    name: ClassVar[str] = "uniform"
    help: ClassVar[str] = f"z uniform on [-{UNIFORM_BOUND:g}, {UNIFORM_BOUND:g}]^d"

    def sample(self, n, latent_dim, seed=0, labels=None):
        return np.random.default_rng(seed).uniform(-UNIFORM_BOUND, UNIFORM_BOUND, size=(n, latent_dim))

    def describe(self) -> str:
        return f"U(-{UNIFORM_BOUND:g}, {UNIFORM_BOUND:g})"


# --- Gaussian mixture -----------------------------------------------------------------------------


@dataclass
class Gmm(Sampler):
    """A Gaussian mixture fitted to the training codes; a conditional model's, one mixture per class fitted to
    that class's codes (its aggregate posterior), so that a sample of class c comes from where the codes of
    class c are: the classes' codes need not share one region of z (docs/conditional.md measures the gain)."""

    name: ClassVar[str] = "gmm"
    help: ClassVar[str] = ("a Gaussian mixture (gmm_components) fitted to the training set's codes (a conditional "
                           "model: one per class)")
    fitted: ClassVar[bool] = True

    components: int = 10
    weights: np.ndarray | None = field(default=None, repr=False)  # (K,); per class (C, K)
    means: np.ndarray | None = field(default=None, repr=False)  # (K, d); per class (C, K, d)
    covs: np.ndarray | None = field(default=None, repr=False)  # (K, d, d); per class (C, K, d, d)
    class_weights: np.ndarray | None = field(default=None, repr=False)  # per class: the classes' shares (C,)

    @property
    def per_class(self) -> bool:
        return self.class_weights is not None

    def file(self, files):
        return files.models_dir / f"{files.prefix}_sampler_gmm{self.components}.npz"

    def fit(self, codes, seed=0, labels=None):
        if labels is None:
            self.weights, self.means, self.covs = fit_gmm(codes, self.components, seed)
            self.class_weights = None
            return self
        codes, labels = np.asarray(codes), np.asarray(labels).reshape(-1)
        classes = int(labels.max()) + 1
        k = min(self.components, len(codes))
        spread = np.atleast_2d(np.cov(codes, rowvar=False)) if len(codes) > 1 else np.eye(codes.shape[1])
        fits = []
        for c in range(classes):
            mine = codes[labels == c]
            if len(mine) > 1:
                fits.append(pad(*fit_gmm(mine, k, seed + c), k))
            else:  # one code (or none): a component there (at 0) with the spread of all the codes
                centre = mine.mean(axis=0) if len(mine) else np.zeros(codes.shape[1])
                fits.append(pad(np.ones(1), centre[None], spread[None], k))
        self.weights, self.means, self.covs = (np.stack(parts) for parts in zip(*fits))
        self.class_weights = np.bincount(labels, minlength=classes) / len(labels)
        return self

    def pooled(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(weights, means, covariances) of the one mixture over all codes (a per-class one's, weighted by the
        classes' shares)."""
        if not self.per_class:
            return self.weights, self.means, self.covs
        d = self.means.shape[-1]
        return ((self.class_weights[:, None] * self.weights).reshape(-1), self.means.reshape(-1, d),
                self.covs.reshape(-1, d, d))

    def sample(self, n, latent_dim, seed=0, labels=None):
        if not self.per_class or labels is None:
            return sample_gmm(*self.pooled(), n, seed)
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != n or labels.min() < 0 or labels.max() >= len(self.weights):
            raise UserError(f"the per-class sampler has classes 0-{len(self.weights) - 1}; got labels {labels!r}")
        out = np.empty((n, self.means.shape[-1]))
        rng = np.random.default_rng(seed)
        for c in np.unique(labels):
            mine = labels == c
            out[mine] = sample_gmm(self.weights[c], self.means[c], self.covs[c], int(mine.sum()),
                                   int(rng.integers(2 ** 31)))
        return out

    def log_density(self, z: np.ndarray) -> np.ndarray:
        """``log sum_k w_k N(z; mean_k, cov_k)`` per row of ``z`` (N, d): the (pooled) mixture's density, which
        the 2-D scatter and manifold draw for a learned prior."""
        from scipy.special import logsumexp

        weights, means, covs = self.pooled()
        z = np.asarray(z, dtype=np.float64)
        with np.errstate(divide="ignore"):  # padded components have weight 0
            return logsumexp(log_gaussians(z, means, covs) + np.log(np.asarray(weights)), axis=1)

    def save(self, path) -> Path:
        import io

        buf = io.BytesIO()
        extra = {} if self.class_weights is None else {"class_weights": self.class_weights}
        np.savez(buf, weights=self.weights, means=self.means, covs=self.covs, **extra)
        return artifacts.write_bytes(path, buf.getvalue())

    def load(self, path) -> "Gmm":
        try:
            with np.load(path, allow_pickle=False) as f:
                self.weights, self.means, self.covs = f["weights"], f["means"], f["covs"]
                self.class_weights = f["class_weights"] if "class_weights" in f else None
        except (OSError, ValueError, KeyError) as e:
            raise UserError(f"{path}: not a readable sampler file ({e}); delete it to fit it again") from None
        return self

    def describe(self) -> str:
        k = self.weights.shape[-1] if self.weights is not None else self.components
        if self.per_class:
            return f"a {k}-component Gaussian mixture per class fitted to that class's training codes"
        return f"a {k}-component Gaussian mixture fitted to the training codes"


@dataclass
class LearnedPrior(Gmm):
    """The model's own learned prior (``--prior mog`` or ``vamp``), a Gaussian mixture that training writes beside
    the model (``<prefix>_prior.npz``); what a model with a learned prior samples by default."""

    name: ClassVar[str] = "prior"
    help: ClassVar[str] = "the model's learned prior (--prior mog or vamp), written by training"

    def file(self, files):
        return files.models_dir / f"{files.prefix}_prior.npz"

    def fit(self, codes, seed=0, labels=None):
        raise UserError("this model has no learned prior file (<prefix>_prior.npz, which training with --prior mog "
                        "or vamp writes); use another --sampler")

    @classmethod
    def of(cls, mixture: dict) -> "LearnedPrior":
        """From a prior's ``mixture()`` (weights, means, variances of diagonal Gaussians)."""
        variances = np.asarray(mixture["variances"], dtype=np.float64)
        return cls(components=len(variances), weights=np.asarray(mixture["weights"], dtype=np.float64),
                   means=np.asarray(mixture["means"], dtype=np.float64),
                   covs=np.stack([np.diag(v) for v in variances]))

    def describe(self) -> str:
        return f"the learned prior ({len(self.weights) if self.weights is not None else self.components} components)"


# --- two-stage VAE --------------------------------------------------------------------------------

TWO_STAGE_HIDDEN = 256
TWO_STAGE_EPOCHS = 60
TWO_STAGE_BATCH = 256


@dataclass
class TwoStage(Sampler):
    name: ClassVar[str] = "two-stage"
    help: ClassVar[str] = "a second VAE trained on the training set's codes (Dai & Wipf 2019)"
    fitted: ClassVar[bool] = True

    model: object = field(default=None, repr=False)

    def file(self, files):
        return files.models_dir / f"{files.prefix}_sampler_two-stage.h5"

    def fit(self, codes, seed=0, labels=None):
        import keras

        from vaelab.models.second_stage import SecondStageVAE

        codes = np.asarray(codes, dtype=np.float32)
        keras.utils.set_random_seed(seed)
        self.model = SecondStageVAE(codes.shape[1], TWO_STAGE_HIDDEN, seed=seed)
        self.model.compile(optimizer=keras.optimizers.Adam(1e-3))
        self.model.fit(codes, batch_size=min(TWO_STAGE_BATCH, len(codes)), epochs=TWO_STAGE_EPOCHS, verbose=0,
                       shuffle=True)
        return self

    def sample(self, n, latent_dim, seed=0, labels=None):
        from keras import ops

        u = np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)
        return np.asarray(ops.convert_to_numpy(self.model.decode(u)), dtype=np.float64)

    def save(self, path) -> Path:
        return artifacts.save_model(self.model, path)

    def load(self, path) -> "TwoStage":
        from vaelab.models import second_stage  # noqa: F401 - registers the class the file names

        self.model = artifacts.load_model(path)
        return self

    def describe(self) -> str:
        return "a second-stage VAE trained on the training codes"


# --- the PixelCNN prior of a vq model ----------------------------------------------------------------

PIXELCNN_BATCH = 128


@dataclass
class PixelCnn(Sampler):
    """A vq model's learned prior: a gated PixelCNN (:mod:`vaelab.models.pixelcnn`) trained on the training set's
    code maps; :meth:`sample` returns code maps (n, h, w), not latent vectors."""

    name: ClassVar[str] = "pixelcnn"
    help: ClassVar[str] = "vq models: a gated PixelCNN trained on the training set's code maps"
    fitted: ClassVar[bool] = True

    codebook_size: int = 256
    epochs: int = 10
    layers: int = 5
    filters: int = 32
    model: object = field(default=None, repr=False)

    def file(self, files):
        return files.models_dir / f"{files.prefix}_sampler_pixelcnn.h5"

    def fit(self, codes, seed=0, labels=None):
        import keras

        from vaelab.models.pixelcnn import GatedPixelCnn

        codes = np.asarray(codes, dtype=np.int32)
        keras.utils.set_random_seed(seed)
        self.model = GatedPixelCnn(self.codebook_size, codes.shape[1:], self.layers, self.filters)
        self.model.compile(optimizer=keras.optimizers.Adam(1e-3))
        self.model.fit(codes, batch_size=min(PIXELCNN_BATCH, len(codes)), epochs=self.epochs, shuffle=True,
                       verbose=2)
        return self

    def sample(self, n, latent_dim=None, seed=0, labels=None):
        return self.model.sample(int(n), seed)

    def log_prob(self, codes) -> np.ndarray:
        """``log p(c)`` in nats of each code map."""
        return self.model.log_prob_numpy(np.asarray(codes, dtype=np.int32))

    def save(self, path) -> Path:
        return artifacts.save_model(self.model, path)

    def load(self, path) -> "PixelCnn":
        from vaelab.models import pixelcnn  # noqa: F401 - registers the classes the file names

        self.model = artifacts.load_model(path)
        return self

    def describe(self) -> str:
        return "a gated PixelCNN over the training code maps"


def load_or_fit(sampler: Sampler, files: artifacts.ModelFiles, codes, seed: int = 0) -> Sampler:
    """``sampler`` ready to sample: loaded from beside the model when it was fitted before, else fitted to
    ``codes()`` (the training set's z_mean, computed only when needed; a conditional model's as ``(codes,
    labels)``) and saved there."""
    if not sampler.fitted:
        return sampler
    path = sampler.file(files)
    if path.exists():
        return sampler.load(path)
    train_codes, labels = codes(), None
    if isinstance(train_codes, tuple):  # a conditional model's codes and their labels
        train_codes, labels = train_codes
    print(f"fitting the {sampler.name} sampler to {len(train_codes)} training codes"
          + (" and their labels" if labels is not None else ""), flush=True)
    sampler.fit(train_codes, seed, labels=labels)
    print(f"saved {sampler.save(path)}")
    return sampler


def from_params(cls: type[Sampler], params) -> Sampler:
    if cls is PixelCnn:
        return cls(codebook_size=params.codebook_size, epochs=params.pixelcnn_epochs, layers=params.pixelcnn_layers,
                   filters=params.pixelcnn_filters)
    return cls(components=params.gmm_components) if cls is Gmm else cls()
