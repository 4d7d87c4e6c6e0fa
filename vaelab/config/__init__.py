"""Configuration: the typed params every run is made from, named presets, and the registry of datasets.

- ``paramsfile``: reads a params module (the file users edit) with one-line errors.
- ``params``: the params dataclasses, their checks, file names and the ``…_params.json`` sidecar.
- ``conv_params``: the params of the colour-image models (CIFAR-10, Caltech101).
- ``vq_params``: the vq architecture's entries (codebook, quantiser losses, the PixelCNN prior) and their checks.
- ``presets``: named sets of overrides on a dataset's defaults.
- ``experiments``: one :class:`~vaelab.config.experiments.Experiment` per dataset: its params, data and names.

May import: ``vaelab.core``, ``vaelab.data``, ``vaelab.models`` (the registry, for names and checks).
"""
