"""Parameters of the dense MNIST VAE. Edit these values, or override any of them on the command line
(``python mnist_train.py --latent-dim 3 --epochs 30``). They are checked when read."""

batch_size = 256
original_dim = 784  # 28 x 28 pixels, flattened
latent_dim = 2
intermediate_dim = 512
epochs = 60
epsilon_std = 1.0  # std of the sampling noise; 1.0 is the true VAE
optimizer = "adam"  # adam, rmsprop, sgd, adamw or nadam
learning_rate = 0.001
kl_weight = 1.0  # 1.0 trains the ELBO; other values give a beta-VAE
seed = 0
