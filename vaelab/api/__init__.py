"""The Python API: ``vaelab.load`` and ``vaelab.train``, a trained model with the verbs researchers use, and a
training run (docs/api.md).

- ``public``: ``load`` (a trained or shipped model by name or path), ``train`` (the train script's run from
  Python, returning the model), ``shipped_models``; ``import vaelab`` hands these out.
- ``trained``: find, load and check a trained (or shipped) model's files; the :class:`Trained` model with
  ``encode``, ``decode``, ``sample``, ``reconstruct``, ``interpolate`` and ``log_likelihood``.
- ``trained_vq``: a vq model's verbs (code maps in and out, PixelCNN samples) and the one-line refusal of what
  needs a continuous latent vector.
- ``train``: the run every train script makes: data, model, fit, save, report.

May import: every layer below. The command lines (``vaelab.cli``) and ``import vaelab`` use it.
"""
