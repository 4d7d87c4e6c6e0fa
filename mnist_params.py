"""Parameters of the MNIST VAE. Edit these values, or override any of them on the command line
(``python mnist_train.py --latent-dim 3 --epochs 30``). They are checked when read; ``--help`` lists every
entry. The defaults are the original design: a dense 784-512-2 VAE with Bernoulli pixels."""

# training
batch_size = 256
latent_dim = 2
epochs = 60
optimizer = "adam"  # adam, rmsprop, sgd, adamw or nadam
learning_rate = 0.001
lr_schedule = "constant"  # constant, step (lr_drop_every, lr_drop_factor) or cosine
patience = 0  # > 0: stop after this many epochs without a better validation loss
seed = 0
validate_on = "split"  # split: validate on images held out of the training set; test: on the test set
tensorboard_images_every = 5  # epochs between the sample and reconstruction images in TensorBoard (0: none)

# the model's parts (see docs/parts.md)
architecture = "dense"  # dense, conv, conv_bn, resnet or hierarchical
intermediate_dim = 512  # dense: units of the hidden layer (hidden_dims = "500,500" for several)
likelihood = "bernoulli"  # bernoulli, continuous_bernoulli, gaussian or discretized_logistic
objective = "elbo"  # elbo, or iwae with iwae_k samples per example
kl_weight = 1.0  # 1.0 trains the ELBO; other values give a beta-VAE
kl_warmup = 0  # epochs over which the KL weight rises from 0
epsilon_std = 1.0  # std of the sampling noise; 1.0 is the true VAE
sampler = "normal"  # where generated z come from: normal, uniform, gmm or two-stage
