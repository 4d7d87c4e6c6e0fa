"""Parameters of the MLP VAE on dynamically binarized MNIST, the likelihood setup of the literature
(Burda et al. 2015 report 86.76 nats for a one-stochastic-layer VAE). Override any value on the command line
(``python mnist_binarized_train.py --epochs 200``). They are checked when read."""

batch_size = 100
original_dim = 784  # 28 x 28 pixels, flattened
hidden_dims = "500,500"  # encoder hidden layers; the decoder mirrors them
latent_dim = 50
epochs = 100
epsilon_std = 1.0
optimizer = "adam"
learning_rate = 0.001
kl_weight = 1.0  # 1.0: the ELBO, so the test loss is a bound on the NLL in nats
seed = 0
