"""What the generate scripts share: load the model, draw samples with the chosen sampler, reconstruct, scatter the
test set, interpolate between two test images, decode typed latent vectors.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vaelab.cli import options as cli
from vaelab.core.errors import UserError
from vaelab.core.artifacts import check_writable
from vaelab.api import trained_vq
from vaelab.api.trained import Trained, check_requested_latent_dim, load_trained
from vaelab.data.classes import class_slug


def generate_parser(exp, params_module, description: str) -> argparse.ArgumentParser:
    return cli.add_interpolation_options(cli.add_generate_options(cli.parser(description, exp.params_cls,
                                                                             params_module)))


def start_generate(exp, params_module, args) -> Trained:
    """Common start of every generate script: params, plotting backend, model."""
    from vaelab.explore import plots

    params = cli.params_from_args(exp.params_cls, params_module, args)
    check_web_port(args)
    plots.setup(args.show)
    check_writable(args.results_dir)
    trained = load_trained(exp, params, args.models_dir, args.model, shipped=True)
    check_requested_latent_dim(trained, args)
    trained.params = trained.params.with_generation_choices(args)
    from vaelab.models.architectures.topdown import set_temperature

    trained.hierarchical = set_temperature(trained.decoder, trained.params.temperature)
    choose_class(trained, getattr(args, "label", None))
    return trained


def choose_class(trained: Trained, label) -> None:
    """``--class``: the class a conditional model draws (an unconditional one refuses it in one line)."""
    if label is not None:
        trained.labels(label, 1)  # checks the name or number, and that the model takes a class at all
        trained.label = trained.class_index(label)


def check_web_port(args) -> None:
    """With ``--explore web``, a port in use is one ``error:`` line before any model or data is loaded."""
    if getattr(args, "explore", False) == "web":
        from vaelab.explore.webexplorer import check_port

        check_port(args.host, args.port)


def save_vector_image(trained: Trained, z: np.ndarray, results_dir) -> Path:
    """Decode one latent vector and save it as ``<prefix>_z_<v0>_<v1>….png``."""
    from vaelab.explore import plots

    label = "_".join(f"{v:g}" for v in z)
    title = f"z = ({', '.join(f'{v:g}' for v in z)})"
    if trained.conditional:
        cls = trained.class_index(trained.label if trained.label is not None else 0)
        label, title = f"{label}_class_{class_slug(class_name(trained, cls))}", f"{title}, {class_name(trained, cls)}"
        image = trained.decode(z[None, :], cls)
    else:
        image = trained.decode(z[None, :])
    return plots.panels(image, trained.result(results_dir, f"z_{label}"), titles=[title])


def class_name(trained: Trained, index: int) -> str:
    names = trained.class_names
    return names[index] if index < len(names) else str(index)


def decode_vectors_and_prompt(trained: Trained, args) -> None:
    """Save the ``--z`` vectors, then open the explorer with ``--explore``, else run the prompt unless
    ``--no-prompt``."""
    from vaelab.explore import prompts

    if trained.discrete:  # no latent vector to type: --z and --explore are refused, the prompt is skipped
        if args.z or getattr(args, "explore", False):
            raise trained_vq.refuse(trained, "--z" if args.z else "--explore")
        if not args.no_prompt:
            print(f"note: {trained.files.prefix} is a vq model (a map of discrete codes): no latent vector prompt")
        return
    for text in args.z:
        try:
            z = prompts.parse_latent(text, trained.latent_dim)
        except prompts.ParseError as e:
            raise UserError(f"--z {text!r}: {e}") from None
        save_vector_image(trained, z, args.results_dir)
    if getattr(args, "explore", False):
        explore(trained, args)
    elif not args.no_prompt:
        if trained.conditional:
            def on_vector(z, label=None):
                if label is not None:
                    trained.label = label
                save_vector_image(trained, z, args.results_dir)

            names = trained.class_names or tuple(map(str, range(trained.params.N_CLASSES)))
            prompts.latent_prompt(trained.latent_dim, on_vector, classes=lambda text: trained.class_index(
                int(text) if text.strip().isdigit() else text), class_names=names,
                label=trained.label if trained.label is not None else 0)
        else:
            prompts.latent_prompt(trained.latent_dim, lambda z: save_vector_image(trained, z, args.results_dir))


def explore(trained: Trained, args, morph=None) -> None:
    """``--explore``: the live explorer on ``trained``'s decoder, over the test set's scatter when the latent
    space is 2-D or 3-D (``morph``: the Fashion-MNIST class controls, :func:`vaelab.cli.morph.morph_control`);
    in a window, or with ``--explore web`` served to a browser on ``--host``:``--port`` until Ctrl-C."""
    from vaelab.explore import explorer

    scatter = None
    if trained.latent_dim in (2, 3) and not getattr(args, "no_scatter", False):
        data, z = trained.test_codes(args.data_dir, args.limit)
        scatter = explorer.Scatter(z, data.y_test, data.class_names)
    decode, classes = trained.decode_now, None
    if trained.conditional:  # a class selector: the page's, or the window's class slider
        classes = trained.class_names or tuple(map(str, range(trained.params.N_CLASSES)))

        def decode(z, labels=None):
            return trained.decode_now(z, labels)

    if getattr(args, "explore", "window") == "web":
        from vaelab.explore import webexplorer

        webexplorer.serve(decode, trained.latent_dim, scatter=scatter, morph=morph, classes=classes,
                          title=trained.files.prefix, seed=trained.params.seed, host=args.host, port=args.port)
    else:
        explorer.open_explorer(decode, trained.latent_dim, scatter=scatter, morph=morph, classes=classes,
                               title=trained.files.prefix, seed=trained.params.seed)


def test_set_scatter(trained: Trained, data_dir, limit, results_dir) -> Path:
    """Encode the test set and save its latent scatter coloured by class (``_latent.png`` when 2-D,
    ``_latent3d.png`` when 3-D)."""
    from vaelab.explore import plots

    data, z = trained.test_codes(data_dir, limit)
    what = "latent" if trained.latent_dim == 2 else "latent3d"
    density = trained.prior_log_density() if trained.latent_dim == 2 else None
    return plots.latent_scatter(z, data.y_test, data.class_names, trained.result(results_dir, what),
                                title=f"{trained.files.prefix}: test set z_mean ({len(z)} images)"
                                      + ("; lines: the learned prior's density" if density else ""),
                                log_density=density)


# --- samplers -----------------------------------------------------------------------------------------


def sampler_for(trained: Trained, name: str | None, data_dir, limit=None):
    """The sampler ``name`` (default: the model's params), fitted to the training set's codes when it needs
    them; fitted samplers are saved beside the model and loaded from there next time."""
    return trained.sampler(name, data_dir, limit)


def random_grid(trained: Trained, n: int, results_dir, sampler) -> Path:
    """An n x n grid of images decoded from ``n * n`` latent vectors of ``sampler`` (seeded by the model's
    params), saved as ``<prefix>_random_<sampler>.png`` (``_random_normal.png`` for the prior)."""
    from vaelab.explore import latent
    from vaelab.explore import plots

    what, rows, label, drawn = f"random_{sampler.name}", n, None, f"{n}x{n} samples"
    if trained.conditional:
        if trained.label is None:  # one row per class (the first n of a dataset with many)
            rows = min(trained.params.N_CLASSES, max(n, 10))
            label = np.repeat(np.arange(rows), n)
            drawn = f"{n} samples of each class (rows: classes 0-{rows - 1})"
        else:
            label = trained.label
            name = class_name(trained, label)
            what, drawn = f"{what}_class_{class_slug(name)}", f"{n}x{n} samples of class {name}"
    grid = latent.tile(trained.sample(rows * n, sampler, label=label), rows, n)
    return plots.image_grid(grid, trained.result(results_dir, what),
                            title=f"{trained.files.prefix}: {drawn}, {'codes' if trained.discrete else 'z'} from "
                                  f"{sampler.describe()}"
                                  + (f", lower latents at temperature {trained.params.temperature:g}"
                                     if trained.hierarchical else ""),
                            max_size=_native_inches(grid))


def reconstructions(trained: Trained, data_dir, limit, n: int, results_dir) -> Path:
    """The first ``n`` test images (top row) over their reconstructions decoded from z_mean (bottom row)."""
    from vaelab.explore import latent
    from vaelab.explore import plots
    from vaelab.config.experiments import model_inputs

    data = trained.exp.dataset(trained.params, data_dir, limit)
    x = model_inputs(data.x_test[:n], flat=False)
    if len(x) == 0:
        raise UserError("the test set is empty; nothing to reconstruct")
    x_hat = trained.reconstruct(x, data.y_test[:n] if trained.conditional else None)
    grid = latent.tile(np.concatenate([x, x_hat]), 2, len(x))
    return plots.image_grid(grid, trained.result(results_dir, "reconstructions"),
                            title=f"{trained.files.prefix}: test images (top) and reconstructions (bottom)",
                            max_size=_native_inches(grid))


def _native_inches(grid: np.ndarray) -> float:
    """Figure width that shows a colour grid at about its own resolution (100 dpi): small grids (CIFAR-10)
    are enlarged to 8 inches so that 32 px images stay readable, large ones (10 x 128 px) capped at 9.5
    inches so that a grid of photos stays under 1 MB of PNG."""
    return max(8.0, min(9.5, grid.shape[1] / 100))


# --- interpolation ------------------------------------------------------------------------------------


def interpolation_strip(trained: Trained, x_a: np.ndarray, x_b: np.ndarray, steps: int,
                        spherical: bool = False, label=None) -> tuple[np.ndarray, np.ndarray]:
    """``(alphas, images)``: the decoded path between the codes (z_mean) of images ``x_a`` and ``x_b``,
    ``steps`` points from alpha 0 (exactly x_a's code) to 1 (x_b's), along the line or the great circle."""
    return np.linspace(0.0, 1.0, steps), trained.interpolate(x_a, x_b, steps, spherical=spherical, label=label)


def save_interpolation(trained: Trained, data_dir, limit, pair: tuple[int, int], steps: int, results_dir,
                       spherical: bool = False) -> Path:
    """``<prefix>_interpolate_<I>_<J>.png``: test images I and J at the ends, the decoded linear path between
    their codes in the first row and, with ``spherical``, the path along the great circle in the second."""
    from vaelab.explore import plots

    data = trained.exp.dataset(trained.params, data_dir, limit)
    i, j = pair
    for index in pair:
        if not 0 <= index < len(data.x_test):
            raise UserError(f"--interpolate {i} {j}: test images are numbered 0..{len(data.x_test) - 1}, "
                            f"got {index}")
    from vaelab.config.experiments import model_inputs

    x = model_inputs(data.x_test[[i, j]], flat=False)
    # A conditional model's path is drawn in one class: --class, else the first image's.
    label = (trained.label if trained.label is not None else int(data.y_test[i])) if trained.conditional else None
    rows = [interpolation_strip(trained, x[0], x[1], steps, label=label)[1]]
    if spherical:
        rows.append(interpolation_strip(trained, x[0], x[1], steps, spherical=True, label=label)[1])
    images = np.concatenate([np.concatenate([x[:1], r, x[1:]]) for r in rows])
    names = data.class_names
    titles = ([f"test {i} ({names[data.y_test[i]]})"] + [f"α = {a:.2f}" for a in np.linspace(0, 1, steps)]
              + [f"test {j} ({names[data.y_test[j]]})"]) * len(rows)
    paths = "linear (top), spherical (bottom)" if spherical else "linear"
    return plots.panels(images, trained.result(results_dir, f"interpolate_{i}_{j}"), titles=titles, rows=len(rows),
                        suptitle=f"{trained.files.prefix}: from test image {i} to {j}, {paths} path between codes")


def interpolations(trained: Trained, args) -> None:
    """Save the ``--interpolate I J`` strips the command line asks for."""
    for pair in args.interpolate:
        save_interpolation(trained, args.data_dir, args.limit, tuple(pair), args.steps, args.results_dir,
                           spherical=args.slerp)


# --- the conv datasets' generate script ---------------------------------------------------------------


def image_generate_command(variants: dict, default_grid: int, description: str, argv) -> int:
    """The generate script of the conv datasets: random grid, reconstructions, the 2-D latent scatter,
    interpolations, ``--z`` vectors and the prompt.

    ``variants`` maps an image size to ``(Experiment, params module)``; with more than one, ``--size``
    picks the model (``caltech101_generate.py --size 128``).
    """
    from vaelab.explore import plots

    sizes = sorted(variants)
    pre = cli.OneLineErrorParser(add_help=False)
    pre.add_argument("--size", type=int, choices=sizes, default=sizes[0])
    size = pre.parse_known_args(argv)[0].size if len(sizes) > 1 else sizes[0]
    exp, params_module = variants[size]
    p = generate_parser(exp, params_module, description)
    if len(sizes) > 1:
        p.add_argument("--size", type=int, choices=sizes, default=sizes[0],
                       help=f"image size of the model (default: {sizes[0]})")
    p.add_argument("--grid", type=cli.count(1, 200), default=default_grid,
                   help=f"grid size N x N of random samples (default: {default_grid})")
    p.add_argument("--n-reconstructions", type=cli.count(1, 1000), default=10, metavar="N",
                   help="test images to reconstruct (default: 10)")
    args = p.parse_args(argv)
    trained = start_generate(exp, params_module, args)
    random_grid(trained, args.grid, args.results_dir, sampler_for(trained, args.sampler, args.data_dir, args.limit))
    reconstructions(trained, args.data_dir, args.limit, args.n_reconstructions, args.results_dir)
    if not trained.discrete and trained.latent_dim in (2, 3):
        test_set_scatter(trained, args.data_dir, args.limit, args.results_dir)
    interpolations(trained, args)
    decode_vectors_and_prompt(trained, args)
    plots.finish()
    return 0
