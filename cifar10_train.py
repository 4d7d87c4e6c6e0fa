#!/usr/bin/env python3
"""Train the convolutional CIFAR-10 VAE and save it in models/.

Writes models/cifar10_ld_<latent>_conv_<num_conv>_id_<intermediate>_e_<epochs>_{vae,encoder,decoder}.h5,
…_history.pkl (and .json), …_params.json, a CSV log and a TensorBoard log directory. Images stay uint8 in
memory and are scaled per batch.

    python cifar10_train.py --data-dir DIR        # DIR holds cifar-10-batches-py/ or cifar-10-python.tar.gz
    python cifar10_train.py --latent-dim 2 --epochs 20
"""

from vaelab.cli import options as cli
from vaelab.config.experiments import CIFAR10
from vaelab.cli.train import train_command

if __name__ == "__main__":
    cli.run(train_command, CIFAR10, "cifar10_params")
