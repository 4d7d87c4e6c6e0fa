"""Command lines: the top-level scripts and the ``vaelab`` command are thin wrappers over these.

- ``options``: the parser, every params entry as a flag, common options, and the ``error:`` boundary.
- ``train``, ``evaluate``, ``fetch``: the train scripts, ``evaluate.py`` and ``dataset/fetch.py``.
- ``main``: the ``vaelab`` console command (``vaelab train mnist …``), dispatching to the jobs below.
- ``generate``: what the generate scripts share (samples, reconstructions, scatters, prompt, explorer).
- ``morph``: Fashion-MNIST's class-mean morphs.
- ``explore``: ``vaelab explore DATASET``, the live explorer (window or web page) on a trained model alone.

May import: every layer. Nothing in vaelab imports it, but for ``vaelab`` itself.
"""
