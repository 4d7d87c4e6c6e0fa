"""Parameters of the convolutional Caltech101 VAE at 128 x 128 px. Edit these values, or override any of
them on the command line (``python caltech101_128_train.py --epochs 5``). They are checked when read."""

latent_dim = 64
intermediate_dim = 256
filters = 64
num_conv = 3  # kernel size of convolutions 3 and 4; part of the model's file name
first_kernel = 3  # kernel size of convolutions 1 and 2
strides = "1,2,2,2"  # of the four encoder convolutions: 128 -> 128 -> 64 -> 32 -> 16
fit = "crop"  # crop keeps the aspect ratio (central square); squash resizes the whole image
epochs = 50
batch_size = 32  # 128x128x64 activations: keeps a training step well under 3 GB
epsilon_std = 1.0  # std of the sampling noise; 1.0 is the true VAE
optimizer = "adam"  # adam, rmsprop, sgd, adamw or nadam
learning_rate = 0.001
kl_weight = 1.0  # 1.0 trains the ELBO; other values give a beta-VAE
seed = 0
validate_on = "split"  # split: validate on images held out of the training set; test: on the test set
tensorboard_images_every = 5  # epochs between the sample and reconstruction images in TensorBoard (0: none)

# the model's parts (see docs/parts.md)
architecture = "conv"  # conv: the original design; or dense, conv_bn, resnet, hierarchical
likelihood = "bernoulli"  # bernoulli, or discretized_logistic (bits/dim; mixtures components)
mixtures = 1
objective = "elbo"  # elbo, or iwae with iwae_k samples per example
kl_warmup = 0  # epochs over which the KL weight rises from 0
sampler = "normal"  # z for generated images: normal, uniform, gmm or two-stage
