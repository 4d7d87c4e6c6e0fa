"""vaelab: variational autoencoders for MNIST, Fashion-MNIST, CIFAR-10 and Caltech101 on Keras 3.

Importing the package is cheap: modules that need Keras import it themselves, so `--help` and
parameter errors answer before TensorFlow has loaded.
"""

from vaelab.errors import UserError

__all__ = ["UserError"]
__version__ = "0.1.0"
