"""Models: the parts a VAE is made of, the VAE itself, and reading saved model files.

- ``layers``: registered custom layers (sampling, the fused batch norm, legacy mean heads).
- ``gaussian``: the KL and ``log q - log p`` of diagonal Gaussians against N(0, I).
- ``discretized``, ``likelihoods``: decoder likelihoods p(x|z), one object each.
- ``objectives``: the ELBO (KL weight, warm-up, free bits) and the IWAE bound.
- ``architectures/``: one builder module per architecture family (its own map in its ``__init__``).
- ``samplers``, ``second_stage``: where generated latent vectors come from, fitted after training;
  ``mixtures``: the numpy Gaussian mixtures (EM fit, draws, densities) the ``gmm`` and ``prior`` samplers use.
- ``registry``: the parts by name, one list per kind; it imports the parts, no part imports it.
- ``vae``: the :class:`~vaelab.models.vae.VAE` (loss on every backend) and its class-conditional subclass, the
  saved encoder/decoder, ``build_vae``.
- ``conditional``: the class-conditional VAE's label inputs, packing labels into the input arrays, its builders.
- ``saved``: the files a trained VAE is saved as beside the whole model: encoder ``x -> z_mean``, decoder
  ``z -> image``, the architecture text.
- ``vq``: the VQ-VAE: the vector quantiser (straight-through, commitment loss, EMA codebook), the model, its
  saved code encoder/decoder files of Keras' own layers.
- ``pixelcnn``: the gated PixelCNN, the learned prior over a vq model's code maps (the ``pixelcnn`` sampler).
- ``priors``: learned priors of the global latent (a mixture of Gaussians, the VampPrior).
- ``saving``: registers every class a file may name, then loads it.
- ``modelfile``: the params of a model file read from its shapes (Keras 2 files without a params sidecar).

May import: ``vaelab.core``; Keras (most modules inside functions, so naming a part loads no backend).
"""
