"""The train scripts' command line: ``mnist_train.py`` is ``cli.run(train_command, MNIST, "mnist_params")``."""

from __future__ import annotations

from vaelab.api.train import choose_backend, train
from vaelab.cli import options as cli
from vaelab.training.options import TrainOptions


def train_command(exp, params_module, argv) -> int:
    """Parse the command line, train, save every artifact and report the test loss."""
    p = cli.parser(f"Train the {exp.name} VAE and save it in --models-dir.", exp.params_cls, params_module)
    args = cli.add_train_options(p).parse_args(argv)
    params = cli.params_from_args(exp.params_cls, params_module, args)
    choose_backend(params, args)
    if args.summary:
        from vaelab.models.vae import architecture_text, build_vae

        print(architecture_text(build_vae(params, exp.image_shape, binarize=exp.binarize)), end="")
        return 0
    train(exp, params, args.data_dir, args.models_dir, args.limit, options=TrainOptions.from_args(args), argv=argv,
          results_dir=args.results_dir)
    return 0
