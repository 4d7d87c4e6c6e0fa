"""Looking into a latent space: figures, the prompt, the live explorer, latent arithmetic.

- ``plots``: scatters, image grids, manifold slices and GIFs, written atomically.
- ``latent``: encode/decode in batches, class means, grids, morphs, interpolations (numpy in, numpy out).
- ``prompts``: the "type a latent vector" prompt.
- ``explorer``: the matplotlib window whose decoded image follows the mouse.
- ``webexplorer``: the same explorer as a local web page (``web/index.html``) for machines without a display.
- ``summaries``: the samples, reconstructions and manifold a training run shows in TensorBoard.

May import: every layer below; these modules take ``decode``/``encode`` callables rather than models.
"""
