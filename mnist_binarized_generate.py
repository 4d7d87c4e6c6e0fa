#!/usr/bin/env python3
"""Generate binarized-MNIST digits from a trained VAE: a 15 x 15 grid of pixel probabilities decoded from the
sampler's latent vectors (a hierarchical model's lower layers drawn at --temperature), test images (top row) over
their reconstructions (bottom row), then the latent-vector prompt.

    python mnist_binarized_generate.py --preset binarized_hier --data-dir DIR --no-prompt
"""

from vaelab.cli import options as cli
from vaelab.cli import generate
from vaelab.config.experiments import MNIST_BINARIZED

if __name__ == "__main__":
    cli.run(generate.image_generate_command, {28: (MNIST_BINARIZED, "mnist_binarized_params")}, 15, __doc__)
