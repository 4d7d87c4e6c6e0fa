"""The entries of the discrete-latent family (``architecture = "vq"``): the codebook, the quantiser's losses and
the gated PixelCNN prior fitted after the autoencoder, with the checks of what a vq model cannot be combined with.

Every dataset's params inherit them (:class:`vaelab.config.params.Params` builds on :class:`DiscreteEntries`), so
``--architecture vq --codebook-size 512`` works on every train script and the entries are saved in the params
sidecar like all others.
"""

from __future__ import annotations

from dataclasses import dataclass

from vaelab.config.paramsfile import entry
from vaelab.core.errors import UserError

VQ = "vq"
CONTINUOUS_SAMPLERS = ("gmm", "two-stage", "prior")  # draw latent vectors: never a vq model's


@dataclass(kw_only=True)
class DiscreteEntries:
    """The vq architecture's entries (read only when ``architecture = "vq"``)."""

    codebook_size: int = entry(256, "vq: codes in the codebook (K)", min=2, max=65536)
    codebook_dim: int = entry(32, "vq: length of each code vector (D, the encoder's output channels)", min=1,
                              max=4096)
    commitment_cost: float = entry(0.25, "vq: weight of the commitment loss ||z_e - sg(e)||^2 (beta)", min=0.0,
                                   max=100.0)
    codebook_ema: bool = entry(True, "vq: update the codebook by exponential moving averages of the codes' "
                                     "assigned encoder outputs (decay codebook_decay, Laplace-smoothed counts) "
                                     "instead of the codebook loss ||sg(z_e) - e||^2", flags=())
    codebook_decay: float = entry(0.99, "vq with codebook_ema: decay of the moving averages", min=0.0, max=0.99999)
    vq_downsample: int = entry(2, "vq: stride-2 convolutions of the encoder (the code map is 1/2^n of the image "
                                  "side: 7x7 for 28 px, 8x8 for 32 px with 2)", min=1, max=5)
    pixelcnn_epochs: int = entry(10, "vq: epochs of the gated PixelCNN prior over the training set's code maps",
                                 min=1, max=100_000)
    pixelcnn_layers: int = entry(5, "vq: gated layers of the PixelCNN prior (the first masked type A)", min=1,
                                 max=64)
    pixelcnn_filters: int = entry(32, "vq: channels of the PixelCNN prior's stacks", min=4, max=1024)

    def check_discrete(self) -> None:
        """A vq model with parts it has no use for, or a vq-only sampler on a continuous model: one line each."""
        vq = getattr(self, "architecture", "") == VQ
        if not vq:
            if getattr(self, "sampler", "") == "pixelcnn":
                raise UserError("sampler pixelcnn draws maps of discrete codes, which only a vq model decodes "
                                "(train one with --architecture vq); this model has a continuous latent")
            return
        refused = [(self.conditional, "--conditional (a class-conditional vq model is not implemented)"),
                   (self.prior != "standard", f"--prior {self.prior} (the PixelCNN is a vq model's learned prior)"),
                   (self.objective != "elbo", f"--objective {self.objective} (a vq model's posterior is "
                                              "deterministic: one sample is exact)"),
                   (self.free_bits != 0, "--free-bits (a vq model has no KL term)"),
                   (self.kl_warmup != 0, "--kl-warmup (a vq model has no KL term)"),
                   (self.sampler in CONTINUOUS_SAMPLERS, f"--sampler {self.sampler} (it draws continuous latent "
                                                         "vectors; a vq model samples with pixelcnn or uniform)")]
        for bad, what in refused:
            if bad:
                raise UserError(f"architecture vq cannot be combined with {what}")
        side = 2 ** self.vq_downsample
        height, width = self.IMAGE_SHAPE[:2]
        if height % side or width % side:
            raise UserError(f"vq_downsample {self.vq_downsample} halves the image side {self.vq_downsample} times; "
                            f"{height}x{width} is not divisible by {side}: lower --vq-downsample")
