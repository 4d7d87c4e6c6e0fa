"""The Python API: a trained model with the verbs researchers use, and a training run.

- ``trained``: find, load and check a trained (or shipped) model's files.
- ``train``: the run every train script makes: data, model, fit, save, report.

May import: every layer below. The command lines (``vaelab.cli``) and ``import vaelab`` use it.
"""
