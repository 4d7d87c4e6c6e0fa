#!/usr/bin/env python3
"""Explore a 3-D MNIST latent space: 3-D test-set scatter coloured by digit, the decoded grid over the
prior's quantiles as one figure of slices along z[2] and as an animated GIF through z[2], then the prompt.

    python mnist_train.py --latent-dim 3
    python mnist_3d_latent_space_and_generate.py
    python mnist_3d_latent_space_and_generate.py --no-prompt --z "0,0.5,-1"

Without ``--latent-dim`` or ``--model`` it looks for the latent-3 model of the params (the params module's
``latent_dim`` is the 2-D scripts' default).
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
    p.add_argument("--n", type=cli.count(1, 200), default=15, help="grid size n x n of each slice (default: 15)")
    p.add_argument("--slices", type=cli.count(1, 100), default=9, help="slices along z[2] in the figure (default: 9)")
    p.add_argument("--frames", type=cli.count(1, 1000), default=30, help="frames of the GIF through z[2] (default: 30)")
    p.add_argument("--scale", type=cli.positive_float, default=1.0, help="scale of the quantile grid (default: 1.0)")
    args = p.parse_args(argv)
    if args.latent_dim is None and not args.model:
        args.latent_dim = 3
    trained = generate.start_generate(MNIST, PARAMS, args)
    require_latent_dim(trained, (3,), "mnist_3d_latent_space_and_generate.py")
    generate.test_set_scatter(trained, args.data_dir, args.limit, args.results_dir)

    values = latent.normal_quantiles(args.slices, args.scale)
    plots.slices([trained.manifold(args.n, args.scale, (v,)) for v in values], values,
                 trained.result(args.results_dir, "slices"),
                 title=f"{trained.files.prefix}: z[0] across, z[1] down, one panel per z[2]")
    frames = [trained.manifold(args.n, args.scale, (v,)) for v in latent.normal_quantiles(args.frames, args.scale)]
    plots.gif(frames, trained.result(args.results_dir, "slices", "gif"))
    generate.interpolations(trained, args)
    generate.decode_vectors_and_prompt(trained, args)
    plots.finish()


if __name__ == "__main__":
    cli.run(main)
