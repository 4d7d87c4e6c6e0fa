#!/usr/bin/env python3
"""Generate MNIST digits from a trained VAE of any latent dim: an N x N grid decoded from latent vectors of the
chosen sampler (the prior N(0, I) by default; --sampler gmm or two-stage fit a density to the training codes;
--uniform is --sampler uniform), the test-set latent scatter when the latent space is 2-D or 3-D, then the prompt.

    python mnist_generate.py --latent-dim 8 --grid 12
    python mnist_generate.py --sampler gmm --no-prompt
    python mnist_generate.py --uniform --no-prompt
"""

from vaelab.cli import options as cli
from vaelab.cli import generate
from vaelab.explore import plots
from vaelab.config.experiments import MNIST

PARAMS = "mnist_params"  # read inside cli.run, so a broken params file is a one-line error


def main(argv):
    p = generate.generate_parser(MNIST, PARAMS, __doc__)
    p.add_argument("--grid", type=cli.count(1, 200), default=10, help="grid size N x N of random samples (default: 10)")
    p.add_argument("--uniform", action="store_true", help="sample uniformly on [-2, 2]^d (--sampler uniform)")
    args = p.parse_args(argv)
    trained = generate.start_generate(MNIST, PARAMS, args)
    if not trained.discrete and trained.latent_dim in (2, 3):
        generate.test_set_scatter(trained, args.data_dir, args.limit, args.results_dir)
    sampler = generate.sampler_for(trained, "uniform" if args.uniform else args.sampler, args.data_dir, args.limit)
    generate.random_grid(trained, args.grid, args.results_dir, sampler)
    generate.interpolations(trained, args)
    generate.decode_vectors_and_prompt(trained, args)
    plots.finish()


if __name__ == "__main__":
    cli.run(main)
