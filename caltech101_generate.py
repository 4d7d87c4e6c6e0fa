#!/usr/bin/env python3
"""Generate Caltech101 images from a trained conv VAE (--size 92 or 128): a 10 x 10 grid decoded from
N(0, I) samples, test images (top row) over their reconstructions (bottom row), then the latent-vector
prompt. Models named the original scripts' way (object101_…, …_generator.h5) are read too.

    python caltech101_generate.py --size 92 --data-dir DIR --no-prompt
    python caltech101_generate.py --size 128 --model caltech101_128_ld_64_conv_3_id_256_e_5
"""

from vaelab.cli import options as cli
from vaelab.cli import generate
from vaelab.config.experiments import CALTECH101_92, CALTECH101_128

if __name__ == "__main__":
    cli.run(generate.image_generate_command,
            {92: (CALTECH101_92, "caltech101_92_params"), 128: (CALTECH101_128, "caltech101_128_params")}, 10, __doc__)
