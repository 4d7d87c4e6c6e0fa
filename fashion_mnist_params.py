"""Parameters of the convolutional Fashion-MNIST VAE and its morph figures. Edit these values, or override
any of them on the command line (``python fashion_mnist_train.py --epochs 30``). They are checked when read.

The loss is ``rmse_multiplier * mean squared error over pixels + kl_multiplier * KL`` (a Gaussian likelihood
with sigma^2 = 784 / (2 * rmse_multiplier)); the learning rate is multiplied by ``lr_drop_factor`` after every
``lr_drop_every`` epochs, and training stops after ``patience`` epochs without a better validation loss,
keeping the best weights.
"""

latent_dim = 3
architecture = "conv_bn"  # conv_bn: the Fashion design; or dense, conv, resnet, hierarchical
filters = 32  # first conv layer; the others and the decoder's 7x7 map use 2 * filters
conv_layers = 3  # 3x3 conv layers in the encoder, the first with stride 2
likelihood = "gaussian"  # gaussian (from rmse_multiplier), bernoulli, continuous_bernoulli, discretized_logistic
objective = "elbo"  # elbo, or iwae with iwae_k samples per example
rmse_multiplier = 5000  # weight of the mean squared error over pixels (not its root, despite the name)
kl_multiplier = 1  # weight of the KL term (the base entry kl_weight follows it)
epochs = 100  # at most; early stopping usually ends sooner
patience = 10
batch_size = 256
optimizer = "adam"
learning_rate = 0.001
lr_schedule = "step"
lr_drop_every = 10
lr_drop_factor = 0.1
sampler = "normal"  # z for generated images: normal, uniform, gmm or two-stage
amount_to_generate = 50  # images decoded from sampled z
amount_of_vector_multipliers = 20  # alpha values in each morph strip
alpha_max = 2.0  # morph strips decode mean_A + alpha * mean_B for alpha in [0, alpha_max]
epsilon_std = 1.0
seed = 0
validate_on = "split"  # split: validate on images held out of the training set; test: on the test set
tensorboard_images_every = 5  # epochs between the sample and reconstruction images in TensorBoard (0: none)
