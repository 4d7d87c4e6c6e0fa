#!/usr/bin/env python3
"""Score a trained VAE on its test set: test ELBO (reconstruction + KL) and the importance-weighted NLL in
nats and bits/dim; with --fid also the Fréchet distance of samples and the accuracy on reconstructions.
Prints a table and writes models/<prefix>_eval.json.

    python evaluate.py --dataset mnist_binarized --epochs 130          # k = 1000 importance samples
    python evaluate.py --dataset mnist_binarized --model bin_ld_50_h_500-500_e_130 --k 5000
    python evaluate.py --dataset mnist --fid                            # the default MNIST model
"""

from vaelab.cli import options as cli
from vaelab.cli.evaluate import evaluate_command

if __name__ == "__main__":
    cli.run(evaluate_command)
