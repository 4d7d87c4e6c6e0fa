#!/usr/bin/env python3
"""Train the MLP VAE on dynamically binarized MNIST (pixels redrawn as Bernoulli(grey level) every epoch) and
score it on the statically binarized test set; the models go to models/bin_ld_<latent>_h_<hidden>_e_<epochs>_*.

    python mnist_binarized_train.py                   # mnist_binarized_params.py: 784-500-500-50
    python evaluate.py --dataset mnist_binarized --k 5000   # then the importance-weighted NLL
"""

from vaelab.cli import options as cli
from vaelab.config.experiments import MNIST_BINARIZED
from vaelab.cli.train import train_command

if __name__ == "__main__":
    cli.run(train_command, MNIST_BINARIZED, "mnist_binarized_params")
