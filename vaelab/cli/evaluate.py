"""``evaluate.py``: score a saved model on its test set, print the table and write ``<prefix>_eval.json``.

The numbers come from :mod:`vaelab.evaluation.evaluate`; this module is the command line around it.
"""

from __future__ import annotations

from pathlib import Path

from vaelab.api.trained import load_vae
from vaelab.cli import options as cli
from vaelab.config import experiments as experiments_mod
from vaelab.config.experiments import model_inputs
from vaelab.core import artifacts
from vaelab.core.artifacts import check_writable
from vaelab.core.errors import UserError
from vaelab.evaluation.evaluate import evaluate_model, machine, result_rows, table


def params_module_for(exp):
    """The params module users edit for ``exp`` (``mnist_params``), read inside the error boundary; None when it
    is not there."""
    from vaelab.config import paramsfile

    return paramsfile.read_module(exp.params_module, missing_ok=True)


def shareable_command(argv) -> str:
    """The command recorded in ``<prefix>_eval.json`` (and so in ``results/results.md``): ``python evaluate.py``
    and ``argv``, with every data, models, results, model or output path of this machine (absolute, in a home
    folder, or outside the project) written as ``DIR``, so committed results name no developer's folders."""
    return " ".join(["python evaluate.py", *cli.shareable_argv(argv)])


def scored_images(split: str) -> str:
    return "test images" if split == "test" else "validation images (held out of the training set)"


def output_path(args, files) -> Path:
    """``--out``, else ``<prefix>_eval.json`` beside the model (``_eval_validation.json`` for ``--split
    validation``, so a pilot's score never replaces the test report)."""
    if args.out:
        return Path(args.out)
    suffix = "" if args.split == "test" else f"_{args.split}"
    return Path(files.models_dir) / f"{files.prefix}_eval{suffix}.json"


def evaluate_command(argv) -> int:
    """``evaluate.py``: parse, load, score, print the table and write ``<models-dir>/<prefix>_eval.json``."""
    names = experiments_mod.DATASETS
    pre = cli.OneLineErrorParser(add_help=False, prog="evaluate.py")
    pre.add_argument("--dataset", choices=sorted(names), default="mnist")
    known, _ = pre.parse_known_args(argv)
    exp = names[known.dataset]
    module = params_module_for(exp)
    p = cli.parser("Score a trained VAE on its test set: ELBO, importance-weighted NLL (and with --fid the "
                   "Fréchet distance); print a table and write <prefix>_eval.json in --models-dir.",
                   exp.params_cls, module, extra_flags=False)
    g = p.add_argument_group("evaluation")
    g.add_argument("--dataset", choices=sorted(names), default="mnist", help="which experiment (default: mnist)")
    cli.add_model_option(g, "ld_2_id_512_e_60")
    g.add_argument("--k", type=cli.count(0), default=1000, help="importance samples per test image (default 1000; "
                                                       "5000 for publication numbers; 0 skips the IWAE bound)")
    g.add_argument("--elbo-samples", type=cli.count(1), default=1, help="latent samples per image for the ELBO's "
                                                               "reconstruction term (default 1)")
    g.add_argument("--fid", action="store_true", help="also the Fréchet distance and classifier accuracy")
    g.add_argument("--fid-samples", type=cli.count(2), default=10000, help="generated samples for --fid (default 10000)")
    g.add_argument("--fid-temperatures", type=cli.temperatures, metavar="T,T,...",
                   help="a hierarchical model: draw the samples' lower latents at each temperature, choose the one "
                        "whose samples lie closest (Fréchet distance) to the validation images held out of the "
                        "training set, never the test set, and report the test numbers at it (implies --fid)")
    g.add_argument("--split", choices=("test", "validation"), default="test",
                   help="score on the test set (default), or on the images held out of the training set for "
                        "validation, as the pilots that choose a preset do (writes <prefix>_eval_validation.json)")
    g.add_argument("--eval-seed", type=cli.count(0, 2**31 - 1), default=0, help="seed of the evaluation noise (default 0)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--out", metavar="PATH", help="write the JSON here instead of <models-dir>/<prefix>_eval.json "
                                                 "(e.g. a k = 5000 run on a --limit subset beside the full one)")
    args = p.parse_args(argv)
    params = cli.params_from_args(exp.params_cls, module, args)
    check_writable(args.models_dir)
    vae, files, params = load_vae(exp, params, args.models_dir, args.model)
    if args.fid_temperatures:
        if not getattr(vae, "hierarchical", False):
            raise UserError(f"--fid-temperatures needs a hierarchical model (its lower latents are what a "
                            f"temperature scales); {files.prefix} has none")
        args.fid = True
    params = params.with_generation_choices(args)  # --sampler, --gmm-components: how to generate, not the model
    data = exp.scored(exp.dataset(params, args.data_dir, args.limit), params, args.split)
    flat = len(vae.encoder.inputs[0].shape) == 2
    if vae.conditional:  # the bounds of log p(x | label): the labels travel with the images
        from vaelab.models.conditional import pack

        x = model_inputs(pack(data.x_test, data.y_test), flat, packed=True)
    else:
        x = model_inputs(data.x_test, flat)
    print(f"{exp.name}: {files.prefix} on {len(x)} {scored_images(args.split)} from {data.source}")
    result = {"dataset": exp.name, "model": files.prefix, "params": params.to_dict(), "seed": args.eval_seed,
              "split": args.split, "command": shareable_command(argv)}
    if getattr(vae, "discrete", False):
        return evaluate_vq_command(exp, vae, files, params, data, x, args, result)
    result.update(evaluate_model(vae, x, args.k, args.eval_seed, args.elbo_samples, verbose=0 if args.quiet else 1))
    if args.fid:
        from vaelab.evaluation import classifier

        result.update(classifier.generation_quality(exp, vae, params, files, args.data_dir, args.models_dir,
                                                    args.fid_samples, sampler=args.sampler, seed=args.eval_seed,
                                                    limit=args.limit, temperatures=args.fid_temperatures,
                                                    split=args.split))
    result["machine"] = machine()
    print(table(f"{exp.name} {files.prefix} ({result['test_images']} {scored_images(args.split)})",
                result_rows(result)))
    out = output_path(args, files)
    path = artifacts.save_json(result, out)
    print(f"saved {path}")
    return 0


def evaluate_vq_command(exp, vae, files, params, data, x, args, result) -> int:
    """A vq model's evaluation (:mod:`vaelab.evaluation.vq_metrics`): reconstruction, codebook usage, the two-stage
    bound with its PixelCNN prior (fitted to the training codes and saved first if it is not there yet), and
    with ``--fid`` the Fréchet distance of the prior's samples."""
    from vaelab.evaluation import vq_metrics
    from vaelab.models import registry as parts
    from vaelab.models import samplers

    prior = samplers.load_or_fit(parts.sampler(params, "pixelcnn"), files,
                                 lambda: vae.encode_codes(model_inputs(data.x_train, flat=False)), seed=params.seed)
    result.update(vq_metrics.evaluate_vq(vae, x, prior))
    if args.fid:
        result.update(vq_metrics.generation_quality(exp, vae, params, files, args.data_dir, args.models_dir,
                                                    args.fid_samples, sampler=args.sampler, seed=args.eval_seed,
                                                    limit=args.limit, split=args.split))
    result["machine"] = machine()
    print(table(f"{exp.name} {files.prefix} ({result['test_images']} {scored_images(args.split)})",
                vq_metrics.result_rows(result)))
    out = output_path(args, files)
    print(f"saved {artifacts.save_json(result, out)}")
    return 0
