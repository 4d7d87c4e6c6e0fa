#!/usr/bin/env python3
"""Explore the Fashion-MNIST VAE's latent space and morph between clothing classes.

Saves in --results-dir (headless; --show also opens windows): the 3-D scatter of the test set's z_mean
coloured by class, test images over their reconstructions, ``amount_to_generate`` images decoded from
N(0, I), the decoded class mean of each class (the mean of z_mean over the test images of the class), and
one strip per class pair: ``mean_A + alpha * mean_B`` for ``amount_of_vector_multipliers`` alphas in
``[0, alpha_max]``, or ``(1 - alpha) * mean_A + alpha * mean_B`` for alpha in [0, 1] with --mode interpolate.

    python fashion_mnist_morph.py --epochs 18                       # the model trained with --epochs 18
    python fashion_mnist_morph.py --from dress --to trouser --from sneaker --to 9
    python fashion_mnist_morph.py --mode interpolate --from t-shirt --to coat
    python fashion_mnist_morph.py --train                           # train first if the model is missing
"""

from vaelab import cli, experiments, latent, plots
from vaelab.experiments import FASHION_MNIST

PARAMS = "fashion_mnist_params"  # read inside cli.run, so a broken params file is a one-line error


def main(argv):
    p = experiments.add_morph_options(cli.parser(__doc__, FASHION_MNIST.params_cls, PARAMS))
    args = p.parse_args(argv)
    data = FASHION_MNIST.load_data(args.data_dir, args.limit)
    pairs = experiments.morph_pairs(args.from_, args.to, data.class_names)  # a bad name fails before the model loads
    params, trained = experiments.load_or_train(FASHION_MNIST, PARAMS, args)
    names, out = data.class_names, args.results_dir

    data, z = trained.test_codes(args.data_dir, args.limit, data)
    if trained.latent_dim in (2, 3):
        plots.latent_scatter(z, data.y_test, names, trained.result(out, f"latent{trained.latent_dim}d"),
                             title=f"{trained.files.prefix}: test set z_mean ({len(z)} images)")
    else:
        print(f"note: no latent scatter for a {trained.latent_dim}-D latent space")
    experiments.save_reconstructions(trained, data.x_test, data.y_test, names, out)
    experiments.save_samples(trained, params.amount_to_generate, out)
    means = latent.class_means(z, data.y_test, len(names))
    experiments.save_class_means(trained, means, names, out)
    for a, b in pairs:
        experiments.save_morph_strip(trained, means, a, b, names, args.mode, params.amount_of_vector_multipliers,
                                     params.alpha_max, out)
    if args.explore:
        experiments.explore(trained, args, experiments.morph_control(means, names, args.mode, params.alpha_max,
                                                                     pairs[0]))
    plots.finish()


if __name__ == "__main__":
    cli.run(main)
