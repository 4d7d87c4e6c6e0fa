"""The bottom layer: what every other layer needs and that knows nothing of VAEs.

- ``errors``: :class:`~vaelab.core.errors.UserError`, the one exception that reaches a user as ``error: …``.
- ``artifacts``: file names of a trained model, atomic writes (JSON, pickles, figures, Keras models), the
  restricted unpickler, the safe Keras loader and HDF5 readers.
- ``lock``: one training per model name at a time (``<prefix>.lock``, an ``flock`` a killed run never leaves
  stale).
- ``startup``: TensorFlow's start-up noise kept out of the scripts' output.

May import: the standard library, numpy, h5py and (inside functions) Keras. Nothing of vaelab.
"""
