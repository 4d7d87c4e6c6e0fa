#!/usr/bin/env python3
"""Explore the Fashion-MNIST VAE's latent space and morph between clothing classes.

Saves in --results-dir (headless; --show also opens windows): the 3-D scatter of the test set's z_mean
coloured by class, test images over their reconstructions, ``amount_to_generate`` images decoded from the
params' sampler, the decoded class mean of each class (the mean of z_mean over the test images of the class), and
one strip per class pair: ``mean_A + alpha * mean_B`` for ``amount_of_vector_multipliers`` alphas in
``[0, alpha_max]``, or ``(1 - alpha) * mean_A + alpha * mean_B`` for alpha in [0, 1] with --mode interpolate.
A conditional model (--conditional), whose z is the style and whose label is the class, gets instead the code of
six test images decoded as every class (``_styles_by_class.png``).

    python fashion_mnist_morph.py --epochs 18                       # the model trained with --epochs 18
    python fashion_mnist_morph.py --from dress --to trouser --from sneaker --to 9
    python fashion_mnist_morph.py --mode interpolate --from t-shirt --to coat
    python fashion_mnist_morph.py --interpolate 0 1 --slerp         # between two test images
    python fashion_mnist_morph.py --train                           # train first if the model is missing
    python fashion_mnist_morph.py --train --conditional             # a style decoded as every class
"""

from vaelab.cli import options as cli
from vaelab.cli import generate
from vaelab.explore import latent
from vaelab.cli import morph
from vaelab.explore import plots
from vaelab.config.experiments import FASHION_MNIST

PARAMS = "fashion_mnist_params"  # read inside cli.run, so a broken params file is a one-line error


def main(argv):
    p = morph.add_morph_options(cli.parser(__doc__, FASHION_MNIST.params_cls, PARAMS))
    args = cli.add_interpolation_options(p).parse_args(argv)
    params = cli.params_from_args(FASHION_MNIST.params_cls, PARAMS, args)
    data = FASHION_MNIST.dataset(params, args.data_dir, args.limit)
    pairs = morph.morph_pairs(args.from_, args.to, data.class_names)  # a bad name fails before the model loads
    params, trained = morph.load_or_train(FASHION_MNIST, PARAMS, args)
    names, out = data.class_names, args.results_dir

    data, z = trained.test_codes(args.data_dir, args.limit, data)
    if trained.latent_dim in (2, 3):
        plots.latent_scatter(z, data.y_test, names, trained.result(out, f"latent{trained.latent_dim}d"),
                             title=f"{trained.files.prefix}: test set z_mean ({len(z)} images)")
    else:
        print(f"note: no latent scatter for a {trained.latent_dim}-D latent space")
    morph.save_reconstructions(trained, data.x_test, data.y_test, names, out)
    sampler = generate.sampler_for(trained, args.sampler, args.data_dir, args.limit)
    morph.save_samples(trained, params.amount_to_generate, out, sampler)
    if trained.conditional:  # z holds the style, the label the class: change the class at a fixed style
        morph.save_styles_by_class(trained, data.x_test, data.y_test, names, out)
    else:
        means = latent.class_means(z, data.y_test, len(names))
        morph.save_class_means(trained, means, names, out)
        for a, b in pairs:
            morph.save_morph_strip(trained, means, a, b, names, args.mode, params.amount_of_vector_multipliers,
                                   params.alpha_max, out)
    generate.interpolations(trained, args)
    if args.explore:
        control = (None if trained.conditional
                   else morph.morph_control(means, names, args.mode, params.alpha_max, pairs[0]))
        generate.explore(trained, args, control)
    plots.finish()


if __name__ == "__main__":
    cli.run(main)
