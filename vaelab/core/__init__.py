"""The bottom layer: what every other layer needs and that knows nothing of VAEs.

- ``errors``: :class:`~vaelab.core.errors.UserError`, the one exception that reaches a user as ``error: …``.
- ``atomic``: atomic writes (a temporary name, then a rename), of one file or of a set (``together``).
- ``artifacts``: file names of a trained model, the writers of JSON, pickles, figures and Keras models (through
  ``atomic``), the restricted unpickler, the safe Keras loader and HDF5 readers.
- ``h5bytes``: Keras ``.h5`` files built in memory, so a full disk is one clean error, not an HDF5 crash.
- ``lock``: one training per model name at a time (``<prefix>.lock``, an ``flock`` a killed run never leaves
  stale).
- ``cpu``: the CPU's model name and instruction-set flags (``/proc/cpuinfo``).
- ``startup``: TensorFlow's start-up noise kept out of the scripts' output.

May import: the standard library, numpy, h5py and (inside functions) Keras. Nothing of vaelab.
"""
