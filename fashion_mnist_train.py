#!/usr/bin/env python3
"""Train the convolutional Fashion-MNIST VAE and save it in models/.

Loss ``rmse_multiplier * MSE + kl_multiplier * KL``; Adam with the learning rate dropped by
``lr_drop_factor`` every ``lr_drop_every`` epochs; early stopping on the validation loss after ``patience``
epochs, best weights restored. Writes models/fashion_mnist_ld_<latent>_e_<epochs>_{vae,encoder,decoder}.h5,
…_history.pkl (and .json), …_params.json, …_test.json, …_best.weights.h5, a CSV log and a TensorBoard log.

    python fashion_mnist_train.py                      # the params in fashion_mnist_params.py
    python fashion_mnist_train.py --epochs 30 --data-dir DIR  # DIR holds fashion-mnist/*.gz
"""

from vaelab.cli import options as cli
from vaelab.config.experiments import FASHION_MNIST
from vaelab.cli.train import train_command

if __name__ == "__main__":
    cli.run(train_command, FASHION_MNIST, "fashion_mnist_params")
