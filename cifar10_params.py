"""Parameters of the convolutional CIFAR-10 VAE. Edit these values, or override any of them on the command
line (``python cifar10_train.py --latent-dim 2 --epochs 5``). They are checked when read."""

img_rows, img_cols, img_chns = 32, 32, 3
latent_dim = 16
intermediate_dim = 128
filters = 32  # channels of convolutions 2-4 and of the transposed convolutions
num_conv = 3  # kernel size of convolutions 3 and 4; part of the model's file name
first_kernel = 2  # kernel size of convolutions 1 and 2 (2x2 in the original design)
strides = "1,2,1,1"  # of the four encoder convolutions
epochs = 50
batch_size = 256
epsilon_std = 1.0  # std of the sampling noise; 1.0 is the true VAE
optimizer = "adam"  # adam, rmsprop, sgd, adamw or nadam
learning_rate = 0.001
kl_weight = 1.0  # 1.0 trains the ELBO; other values give a beta-VAE
seed = 0
