#!/usr/bin/env python3
"""Train the dense MNIST VAE (784 -> intermediate -> latent) and save it in models/.

Writes models/ld_<latent>_id_<intermediate>_e_<epochs>_{vae,encoder,decoder}.h5, …_history.pkl (and .json),
…_params.json, a CSV log and a TensorBoard log directory.

    python mnist_train.py                         # the params in mnist_params.py
    python mnist_train.py --latent-dim 3 --epochs 30
"""

from vaelab.cli import options as cli
from vaelab.config.experiments import MNIST
from vaelab.cli.train import train_command

if __name__ == "__main__":
    cli.run(train_command, MNIST, "mnist_params")
