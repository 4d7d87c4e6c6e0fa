#!/usr/bin/env python3
"""Train the convolutional Caltech101 VAE on 92 x 92 px images and save it in models/.

Builds the cache caltech101_92_<fit>.npz first when it is missing (see dataset/caltech101_preprocess.py).
Writes models/caltech101_92_ld_<latent>_conv_<num_conv>_id_<intermediate>_e_<epochs>_{vae,encoder,decoder}.h5,
…_history.pkl (and .json), …_params.json, a CSV log and a TensorBoard log directory. Images stay uint8
in memory and are scaled per batch.

    python caltech101_92_train.py --data-dir DIR   # DIR holds 101_ObjectCategories/, its tar.gz or caltech-101.zip
    python caltech101_92_train.py --fit squash --epochs 20
"""

from vaelab.cli import options as cli
from vaelab.config.experiments import CALTECH101_92
from vaelab.cli.train import train_command

if __name__ == "__main__":
    cli.run(train_command, CALTECH101_92, "caltech101_92_params")
