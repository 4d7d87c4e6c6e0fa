"""Encoder/decoder architectures, each usable on every dataset's image size.

- ``base``: the :class:`~vaelab.models.architectures.base.Architecture` record and shared helpers.
- ``dense``: the MLP (the original MNIST design).
- ``conv``: the original conv/deconv stack (``conv``) and the Fashion-MNIST Conv-BatchNorm design (``conv_bn``).
- ``resnet``: residual encoder/decoder with one global latent.
- ``hierarchical``: the records of the two hierarchical architectures (no Keras at import).
- ``topdown``: what the top-down decoders share (scales, Gaussians, residual block, temperature).
- ``vq``: the VQ-VAE's conv encoder to a map of code vectors and its mirrored decoder.
- ``topdown_conv``: spatial latent maps (VDVAE/NVAE style); ``topdown_dense``: latent vectors (Burda et al.).

May import: ``vaelab.core`` and ``vaelab.models.layers``/``discretized``; never the registry.
"""
