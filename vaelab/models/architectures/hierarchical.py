"""The two hierarchical architectures as parts: ``hierarchical`` (conv, spatial latent maps) and
``dense_hierarchical`` (MLPs, latent vectors), their checks and file-name tokens.

The records import no Keras, so that naming an architecture on the command line loads no backend; the models
themselves are built by :mod:`vaelab.models.architectures.topdown_conv` and
:mod:`vaelab.models.architectures.topdown_dense` on the shared pieces of :mod:`vaelab.models.architectures.topdown`.
"""

from __future__ import annotations

from vaelab.models.architectures.base import Architecture, hidden_layers, lower_latent_layers


def build_hierarchical(params, image_shape, out_channels):
    from vaelab.models.architectures import topdown_conv

    return topdown_conv.build(params, image_shape, out_channels)


def check_hierarchical(params, image_shape) -> None:
    from vaelab.models.architectures import topdown_conv

    topdown_conv.check(params, image_shape)


def _hierarchical_token(p, d) -> str:
    return f"hier{p.filters}x{p.blocks}_z{p.latent_channels}" + (f"_p{p.patch}" if p.patch > 1 else "")


HIERARCHICAL = Architecture("hierarchical", "top-down hierarchical VAE: the global latent plus spatial latents "
                                            "(latent_channels at latent_scales), ResNet blocks (filters, blocks)",
                            build_hierarchical, check_hierarchical,
                            token=_hierarchical_token, hierarchical=True)


def build_dense_hierarchical(params, image_shape, out_channels):
    from vaelab.models.architectures import topdown_dense

    return topdown_dense.build(params, image_shape, out_channels)


def check_dense_hierarchical(params, image_shape) -> None:
    lower_latent_layers(params)


def _dense_hierarchical_token(p, d) -> str:
    lower = "-".join(map(str, lower_latent_layers(p)))
    return f"dhier_h_{'-'.join(map(str, hidden_layers(p)))}_z{lower}"


DENSE_HIERARCHICAL = Architecture("dense_hierarchical", "MLPs with stochastic layers of lower_latent_dims below the "
                                                        "global latent, inferred top-down (hidden_dims between "
                                                        "each pair of layers)", build_dense_hierarchical,
                                  check_dense_hierarchical, token=_dense_hierarchical_token, flat_input=True,
                                  backend="jax", hierarchical=True)
