#!/usr/bin/env python3
"""Explore a 2-D MNIST latent space: test-set scatter coloured by digit, a manifold of decoded digits over
the prior's quantiles, then a prompt that decodes the latent vectors you type.

    python mnist_2d_latent_space_and_generate.py                 # the model the params name
    python mnist_2d_latent_space_and_generate.py --no-prompt --z "0.5,-1"
    python mnist_2d_latent_space_and_generate.py --no-prompt --interpolate 3 7 --slerp
"""

from vaelab.cli import options as cli
from vaelab.cli import generate
from vaelab.explore import latent
from vaelab.explore import plots
from vaelab.config.experiments import MNIST
from vaelab.api.trained import require_latent_dim

PARAMS = "mnist_params"  # read inside cli.run, so a broken params file is a one-line error


def main(argv):
    p = generate.generate_parser(MNIST, PARAMS, __doc__)
    p.add_argument("--n", type=cli.count(1, 200), default=30, help="manifold grid size n x n (default: 30)")
    p.add_argument("--scale", type=cli.positive_float, default=1.0, help="scale of the quantile grid (default: 1.0)")
    args = p.parse_args(argv)
    trained = generate.start_generate(MNIST, PARAMS, args)
    require_latent_dim(trained, (2,), "mnist_2d_latent_space_and_generate.py")
    generate.test_set_scatter(trained, args.data_dir, args.limit, args.results_dir)

    h, w = trained.image_shape[:2]
    q = latent.normal_quantiles(args.n, args.scale)
    ticks = ([w // 2 + i * w for i in range(args.n)], [h // 2 + i * h for i in range(args.n)], q, q[::-1])
    density = trained.prior_log_density()  # a learned prior's contours (None: N(0, I), drawn as before)
    plots.image_grid(trained.manifold(args.n, args.scale), trained.result(args.results_dir, "manifold"),
                     title=f"{trained.files.prefix}: decoded {args.n}x{args.n} manifold"
                           + ("; lines: the learned prior's density" if density else ""),
                     ticks=ticks, log_density=density)
    generate.interpolations(trained, args)
    generate.decode_vectors_and_prompt(trained, args)
    plots.finish()


if __name__ == "__main__":
    cli.run(main)
