#!/usr/bin/env python3
"""Generate CIFAR-10 images from a trained conv VAE: a 15 x 15 grid decoded from N(0, I) samples, test images
(top row) over their reconstructions (bottom row), the test-set latent scatter by class when the latent
space is 2-D, then the latent-vector prompt.

    python cifar10_generate.py --data-dir DIR --no-prompt
    python cifar10_generate.py --latent-dim 2 --data-dir DIR
"""

from vaelab.cli import options as cli
from vaelab.cli import generate
from vaelab.config.experiments import CIFAR10

if __name__ == "__main__":
    cli.run(generate.image_generate_command, {32: (CIFAR10, "cifar10_params")}, 15, __doc__)
