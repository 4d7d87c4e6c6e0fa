"""Evaluation: the numbers of the field, the project's classifier, the evaluate stage and its results.

- ``metrics``: ELBO, IWAE bound, bits/dim, per-layer KL and active units, Fréchet distance.
- ``classifier``: a small per-dataset CNN whose features give the Fréchet distance of samples.
- ``evaluate``: score a model and format the table and ``…_eval.json``.
- ``vq_metrics``: a vq model's evaluation: reconstruction, codebook perplexity, the two-stage bound with its
  PixelCNN prior, the Fréchet distance of the prior's samples.
- ``results``: the results table and the steps of ``make results``.
- ``benchmark``: FLOP counts and timing helpers for ``benchmarks/``.

May import: every layer below (``core``, ``data``, ``models``, ``config``, ``training``).
"""
