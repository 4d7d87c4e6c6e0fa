"""Datasets: where they are, reading the official formats, checks, downloads, batches.

- ``sources``: data directories, the official files and their hashes, :class:`~vaelab.data.sources.Dataset`.
- ``downloads``: hash-verified downloads, archives opened with a clear error when truncated.
- ``datasets``: MNIST, Fashion-MNIST and CIFAR-10 readers and loaders.
- ``caltech101``: Caltech101 preprocessing into a square uint8 cache, and its split.
- ``binarized``: binarized MNIST (dynamic training binarization, a fixed test binarization).
- ``splits``: the validation set, held out of the training set by a fixed rule (or the test set).
- ``classes``: class names as users type them (``--class sandal``), to indices.
- ``batches``: seeded per-epoch shuffling and uint8 batches scaled one at a time.

May import: ``vaelab.core``; numpy. No Keras.
"""
