"""Parameters of the VAE on dynamically binarized MNIST, the likelihood setup of the literature (Burda et al.
2015 report 86.76 nats for a one-stochastic-layer VAE). Override any value on the command line
(``python mnist_binarized_train.py --epochs 200``); ``--help`` lists every entry. They are checked when read."""

# training
batch_size = 100
latent_dim = 50
epochs = 100
optimizer = "adam"
learning_rate = 0.001
lr_schedule = "constant"  # constant, step or cosine
seed = 0
validate_on = "split"  # split: validate on images held out of the training set; test: on the test set
tensorboard_images_every = 5  # epochs between the sample and reconstruction images in TensorBoard (0: none)

# the model's parts (see docs/parts.md)
architecture = "dense"
hidden_dims = "500,500"  # encoder hidden layers; the decoder mirrors them
likelihood = "bernoulli"
objective = "elbo"  # elbo, or iwae with iwae_k samples per example
iwae_k = 5
kl_weight = 1.0  # 1.0: the ELBO, so the test loss is a bound on the NLL in nats
kl_warmup = 0
epsilon_std = 1.0
