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

UNIFORM_BOUND = 2.0


@dataclass
class Sampler:
    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    fitted: ClassVar[bool] = False  # needs the training codes

    def file(self, files: artifacts.ModelFiles) -> Path | None:
        """Where the fitted sampler is saved beside the model (None: nothing to save)."""
        return None

    def fit(self, codes: np.ndarray, seed: int = 0) -> "Sampler":
        return self

    def sample(self, n: int, latent_dim: int, seed: int = 0) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


@dataclass
class Normal(Sampler):
    name: ClassVar[str] = "normal"
    help: ClassVar[str] = "z ~ N(0, I), the prior"

    def sample(self, n, latent_dim, seed=0):
        return np.random.default_rng(seed).standard_normal((n, latent_dim))

    def describe(self) -> str:
        return "N(0, I)"


@dataclass
class Uniform(Sampler):
    name: ClassVar[str] = "uniform"
    help: ClassVar[str] = f"z uniform on [-{UNIFORM_BOUND:g}, {UNIFORM_BOUND:g}]^d"

    def sample(self, n, latent_dim, seed=0):
        return np.random.default_rng(seed).uniform(-UNIFORM_BOUND, UNIFORM_BOUND, size=(n, latent_dim))

    def describe(self) -> str:
        return f"U(-{UNIFORM_BOUND:g}, {UNIFORM_BOUND:g})"


# --- Gaussian mixture -----------------------------------------------------------------------------


def _log_gaussians(x: np.ndarray, means: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """``log N(x_n; mean_k, cov_k)`` for every point and component: (N, K)."""
    n, d = x.shape
    out = np.empty((n, len(means)))
    for k, (mean, cov) in enumerate(zip(means, covs)):
        chol = np.linalg.cholesky(cov)
        solved = np.linalg.solve(chol, (x - mean).T)
        out[:, k] = -0.5 * (d * np.log(2 * np.pi) + np.sum(solved ** 2, axis=0)) - np.sum(np.log(np.diag(chol)))
    return out


def fit_gmm(x: np.ndarray, components: int, seed: int = 0, iterations: int = 300, tol: float = 1e-7,
            reg: float = 1e-6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights, means, covariances) of a full-covariance Gaussian mixture fitted to ``x`` (N, d) by EM.

    Means start at k-means++ seeds (seeded), covariances at the data's; ``reg`` is added to every covariance's
    diagonal (scaled by the data's variance) so components never collapse onto a point.
    """
    from scipy.special import logsumexp

    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    k = min(int(components), n)
    rng = np.random.default_rng(seed)
    means = [x[rng.integers(n)]]
    for _ in range(1, k):  # k-means++: later seeds far from the earlier ones
        dist = np.min([np.sum((x - m) ** 2, axis=1) for m in means], axis=0)
        means.append(x[rng.choice(n, p=dist / dist.sum())] if dist.sum() > 0 else x[rng.integers(n)])
    means = np.array(means)
    floor = reg * max(float(np.mean(np.var(x, axis=0))), 1e-12) * np.eye(d)
    covs = np.array([np.cov(x, rowvar=False).reshape(d, d) + floor] * k)
    weights = np.full(k, 1.0 / k)
    previous = -np.inf
    for _ in range(iterations):
        log_joint = _log_gaussians(x, means, covs) + np.log(weights)
        log_norm = logsumexp(log_joint, axis=1, keepdims=True)
        resp = np.exp(log_joint - log_norm)
        counts = resp.sum(axis=0) + 1e-12
        weights = counts / n
        means = (resp.T @ x) / counts[:, None]
        for j in range(k):
            diff = x - means[j]
            covs[j] = (resp[:, j, None] * diff).T @ diff / counts[j] + floor
        mean_ll = float(log_norm.mean())
        if mean_ll - previous < tol * max(1.0, abs(mean_ll)):
            break
        previous = mean_ll
    return weights, means, covs


def sample_gmm(weights, means, covs, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    which = rng.choice(len(weights), size=n, p=np.asarray(weights) / np.sum(weights))
    chol = np.linalg.cholesky(covs)
    eps = rng.standard_normal((n, means.shape[1]))
    return means[which] + np.einsum("nij,nj->ni", chol[which], eps)


@dataclass
class Gmm(Sampler):
    name: ClassVar[str] = "gmm"
    help: ClassVar[str] = "a Gaussian mixture (gmm_components) fitted to the training set's codes"
    fitted: ClassVar[bool] = True

    components: int = 10
    weights: np.ndarray | None = field(default=None, repr=False)
    means: np.ndarray | None = field(default=None, repr=False)
    covs: np.ndarray | None = field(default=None, repr=False)

    def file(self, files):
        return files.models_dir / f"{files.prefix}_sampler_gmm{self.components}.npz"

    def fit(self, codes, seed=0):
        self.weights, self.means, self.covs = fit_gmm(codes, self.components, seed)
        return self

    def sample(self, n, latent_dim, seed=0):
        return sample_gmm(self.weights, self.means, self.covs, n, seed)

    def save(self, path) -> Path:
        import io

        buf = io.BytesIO()
        np.savez(buf, weights=self.weights, means=self.means, covs=self.covs)
        return artifacts.write_bytes(path, buf.getvalue())

    def load(self, path) -> "Gmm":
        try:
            with np.load(path, allow_pickle=False) as f:
                self.weights, self.means, self.covs = f["weights"], f["means"], f["covs"]
        except (OSError, ValueError, KeyError) as e:
            raise UserError(f"{path}: not a readable sampler file ({e}); delete it to fit it again") from None
        return self

    def describe(self) -> str:
        return f"a {len(self.weights) if self.weights is not None else self.components}-component Gaussian " \
               "mixture fitted to the training codes"


@dataclass
class LearnedPrior(Gmm):
    """The model's own learned prior (``--prior mog`` or ``vamp``), a Gaussian mixture that training writes beside
    the model (``<prefix>_prior.npz``); what a model with a learned prior samples by default."""

    name: ClassVar[str] = "prior"
    help: ClassVar[str] = "the model's learned prior (--prior mog or vamp), written by training"

    def file(self, files):
        return files.models_dir / f"{files.prefix}_prior.npz"

    def fit(self, codes, seed=0):
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

    def fit(self, codes, seed=0):
        import keras

        from vaelab.models.second_stage import SecondStageVAE

        codes = np.asarray(codes, dtype=np.float32)
        keras.utils.set_random_seed(seed)
        self.model = SecondStageVAE(codes.shape[1], TWO_STAGE_HIDDEN, seed=seed)
        self.model.compile(optimizer=keras.optimizers.Adam(1e-3))
        self.model.fit(codes, batch_size=min(TWO_STAGE_BATCH, len(codes)), epochs=TWO_STAGE_EPOCHS, verbose=0,
                       shuffle=True)
        return self

    def sample(self, n, latent_dim, seed=0):
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

    def fit(self, codes, seed=0):
        import keras

        from vaelab.models.pixelcnn import GatedPixelCnn

        codes = np.asarray(codes, dtype=np.int32)
        keras.utils.set_random_seed(seed)
        self.model = GatedPixelCnn(self.codebook_size, codes.shape[1:], self.layers, self.filters)
        self.model.compile(optimizer=keras.optimizers.Adam(1e-3))
        self.model.fit(codes, batch_size=min(PIXELCNN_BATCH, len(codes)), epochs=self.epochs, shuffle=True,
                       verbose=2)
        return self

    def sample(self, n, latent_dim=None, seed=0):
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
    ``codes()`` (the training set's z_mean, computed only when needed) and saved there."""
    if not sampler.fitted:
        return sampler
    path = sampler.file(files)
    if path.exists():
        return sampler.load(path)
    train_codes = codes()
    print(f"fitting the {sampler.name} sampler to {len(train_codes)} training codes", flush=True)
    sampler.fit(train_codes, seed)
    print(f"saved {sampler.save(path)}")
    return sampler


def from_params(cls: type[Sampler], params) -> Sampler:
    if cls is PixelCnn:
        return cls(codebook_size=params.codebook_size, epochs=params.pixelcnn_epochs, layers=params.pixelcnn_layers,
                   filters=params.pixelcnn_filters)
    return cls(components=params.gmm_components) if cls is Gmm else cls()
