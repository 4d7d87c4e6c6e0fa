"""A training run: read the data, build the params' model, fit, save, report; what every train script runs.

:func:`train` is the run itself (``mnist_train.py`` parses its command line in :mod:`vaelab.cli.train` and
calls it; Python code may call it the same way). The loop is :func:`vaelab.training.loop.fit`;
what a run leaves on disk is written by :func:`save_trained`.
"""

from __future__ import annotations

import math
from pathlib import Path

from vaelab.core import artifacts, lock
from vaelab.core.artifacts import check_writable
from vaelab.training import distribute
from vaelab.training.options import TrainOptions
from vaelab.core.errors import UserError


def choose_backend(params, args) -> str | None:
    """Set KERAS_BACKEND to the backend the params' architecture trains fastest on, unless the user chose one
    (KERAS_BACKEND always wins), Keras is already imported (its backend is fixed then), that backend is not
    installed, or ``--distribute`` (whose multi-worker mode needs TensorFlow) is used. Returns what it set."""
    import importlib.util
    import os
    import sys

    from vaelab.models import registry as parts

    backend = parts.architecture(params).backend
    if (not backend or "KERAS_BACKEND" in os.environ or "keras" in sys.modules
            or getattr(args, "distribute", "none") != "none" or importlib.util.find_spec(backend) is None):
        return None
    os.environ["KERAS_BACKEND"] = backend
    return backend


def train(exp, params, data_dir, models_dir, limit=None, options=None, argv=(),
          results_dir=None) -> artifacts.ModelFiles:
    """Train ``exp``'s VAE with ``params``, save every artifact and report the test loss; returns the files.

    ``options`` is a :class:`~vaelab.training.options.TrainOptions` (resume, checkpoints, devices, precision,
    the fast path); ``None`` means its defaults. With ``results_dir`` the
    loss curves are drawn there too (``<prefix>_history.png``).
    """
    opts = options if options is not None else TrainOptions()
    distribute.check_request(opts.distribute, opts.devices)
    if params.grad_skip and opts.distribute != "none":
        raise UserError("--grad-skip chooses per step on one device; it does not run under --distribute "
                        f"{opts.distribute} (drop one of them)")
    files = artifacts.ModelFiles(Path(models_dir), params.model_prefix())  # new names, never a legacy one
    check_writable(files.models_dir)
    if results_dir is not None:
        check_writable(results_dir)
    # one run per model name at a time (docs/robustness.md); of several workers, the chief that writes the files
    with lock.held(files.models_dir, files.prefix, opts.distribute != "multiworker" or distribute.is_chief()):
        return _run(exp, params, data_dir, files, limit, opts, argv, results_dir)


def _run(exp, params, data_dir, files, limit, opts, argv, results_dir) -> artifacts.ModelFiles:
    """:func:`train` once its files are known and locked."""
    from vaelab.models import registry as parts

    data = exp.with_validation(exp.dataset(params, data_dir, limit), params)
    held = f", {len(data.x_val)} validation" if params.validate_on == "split" else ""
    print(f"{exp.name}: {len(data.x_train)} training{held} and {len(data.x_test)} test images from {data.source}; "
          f"validating on {data.validation}")
    if data.image_shape != exp.image_shape:
        raise UserError(f"{data.source}: images are {data.image_shape}, the model needs {exp.image_shape}")
    arch = parts.architecture(params)
    if params.architecture == "vq":
        print(f"model: vq architecture, {params.likelihood} likelihood, a codebook of {params.codebook_size} codes "
              f"of {params.codebook_dim} numbers ({'EMA updates' if params.codebook_ema else 'codebook loss'})")
    else:
        print(f"model: {arch.name} architecture, {params.likelihood} likelihood, {params.objective} objective"
              + (f" (k = {params.iwae_k})" if params.objective == "iwae" else "") + f", latent dim {params.latent_dim}"
              + (f", conditional on {len(data.class_names)} classes" if params.conditional else ""))
    arrays = model_arrays(data, params)

    from vaelab.config.experiments import model_inputs
    from vaelab.data import batches
    from vaelab.models.vae import build_vae
    from vaelab.training import loop as training

    # Build, compile, fit, save and evaluate in the strategy's scope; only the chief keeps its files.
    with distribute.session(opts.distribute, opts.devices, opts.mixed_precision, params.batch_size) as plan:
        x_train, x_val, x_test = (plan.even(arrays[0]), plan.even(arrays[1], "validation"),
                                  plan.even(arrays[2], "test"))
        steps = len(batches.batch_bounds(len(x_train), params.batch_size))
        training.make_deterministic(params.seed)
        vae = plan.adapt(build_vae(params, exp.image_shape, binarize=exp.binarize, steps_per_epoch=steps,
                                   n_classes=len(data.class_names) or None))
        exact = plan.mode == "none"

        def to_inputs(x):
            return model_inputs(x, arch.flat_input, packed=params.conditional)

        if x_train.dtype.name == "uint8" and exact:  # uint8 in memory, scaled batch by batch
            x_val, x_test = (batches.image_batches(x, params.batch_size, flat=arch.flat_input) for x in (x_val, x_test))
            transform = to_inputs
        else:
            x_train, x_val, x_test, transform = to_inputs(x_train), to_inputs(x_val), to_inputs(x_test), None
        out = plan.files(files)
        pictures = None
        if not opts.no_tensorboard and params.tensorboard_images_every:
            from vaelab.explore.summaries import KL_IMAGES, run_pictures

            pictures = run_pictures(to_inputs(arrays[1][:KL_IMAGES]), params.seed, exp.image_shape)
        history = training.fit(vae, x_train, x_val, params, out, resume=opts.resume, every=opts.checkpoint_every,
                               script=exp.train_script, argv=argv,
                               deterministic=opts.deterministic, exact_order=exact,
                               transform=transform, fast=exp.fast_path and not opts.no_jit,
                               tensorboard=not opts.no_tensorboard, pictures=pictures)
        for path in save_final(vae, history, params, out, exp.train_script, argv):
            if plan.chief:
                print(f"saved {path}")
        if plan.chief and results_dir is not None:
            from vaelab.explore import plots

            plots.training_history(history, Path(results_dir) / f"{files.prefix}_history.png",
                                   title=f"{files.prefix}: training history")
        test = training.evaluate(vae, x_test, params.batch_size)
    if exp.report and not getattr(vae, "discrete", False):  # a dataset's own report reads a KL a vq model has not
        exp.report(test, history, params, files)
    else:
        report(test, params, vae, model_inputs(data.x_test[:256], arch.flat_input))
    if vae.hierarchical:  # whether each stochastic layer is in use (evaluate.py gives this for every model)
        from vaelab.evaluation.metrics import latent_layers, layer_summary

        for layer in latent_layers(vae, arrays[2], transform=to_inputs):
            print(f"test: KL, {layer['layer']} latent {layer_summary(layer)}")
    print(f"peak memory (RSS): {training.peak_rss_mb():.0f} MB")
    return files


def model_arrays(data, params) -> tuple:
    """The training, validation and test arrays the model reads: the images, with their labels packed in for a
    conditional model (:func:`vaelab.models.conditional.pack`)."""
    if not params.conditional:
        return data.x_train, data.x_val, data.x_test
    from vaelab.models.conditional import pack

    if not data.class_names:
        raise UserError(f"{data.source}: no labels, so no conditional model; drop --conditional")
    return pack(data.x_train, data.y_train), pack(data.x_val, data.y_val), pack(data.x_test, data.y_test)


def report(test: dict, params, vae, x_sample) -> None:
    """Print the test loss as trained, and in bits/dim when it is a bound on the probability of the test images
    (``x_sample``: some of them)."""
    if getattr(vae, "discrete", False):
        print(f"test: loss {test['loss']:.2f} = reconstruction {test['reconstruction_loss']:.2f} + vq loss "
              f"{test['vq_loss']:.2f} (nats per image); codebook perplexity {test['perplexity']:.1f} of "
              f"{vae.codebook_size} codes (evaluate.py gives the two-stage bits/dim with the PixelCNN prior)")
        return
    if vae.objective.samples > 1:
        print(f"test: {vae.objective.name} bound (k = {vae.objective.samples}) {test['loss']:.2f} nats per image; "
              f"reconstruction {test['reconstruction_loss']:.2f}, KL {test['kl_loss']:.2f}")
    elif params.free_bits:
        print(f"test: loss {test['loss']:.2f} = reconstruction {test['reconstruction_loss']:.2f} + KL with free "
              f"bits (each latent dimension counts at least {params.free_bits:g} nats); KL {test['kl_loss']:.2f} "
              "(nats per image)")
    else:
        print(f"test: loss {test['loss']:.2f} = reconstruction {test['reconstruction_loss']:.2f} "
              f"+ {params.kl_weight:g} x KL {test['kl_loss']:.2f} (nats per image)")
    if vae.likelihood.is_probability_of(x_sample) and params.kl_weight == 1 and not params.free_bits:
        from vaelab.evaluation.metrics import bits_per_dim

        print(f"test: {test['loss']:.2f} nats = {bits_per_dim(test['loss'], math.prod(vae.image_shape)):.4f} "
              f"bits/dim (a bound on the test images' negative log-likelihood)")


def save_trained(vae, history: dict, params, files: artifacts.ModelFiles) -> list[Path]:
    """Write the VAE, encoder (x -> z_mean), decoder (z -> image), history (pickle and JSON), params JSON and the
    architecture text (the encoder's and decoder's summaries); samplers fitted to an earlier model of the same
    name are deleted."""
    from vaelab.models import samplers
    from vaelab.models.vae import architecture_text, image_decoder, mean_encoder

    if getattr(vae, "discrete", False):  # images -> code maps, code maps -> images
        from vaelab.models.vq import code_decoder, code_encoder

        encoder, decoder = code_encoder(vae), code_decoder(vae)
    else:
        encoder, decoder = mean_encoder(vae.encoder), image_decoder(vae)
    with artifacts.together():  # all written, then all renamed: a kill or a full disk leaves the old set
        written = [
            artifacts.save_model(vae, files.vae),
            artifacts.save_model(encoder, files.encoder),
            artifacts.save_model(decoder, files.decoder),
            artifacts.save_pickle(history, files.history),
            artifacts.save_json(history, files.history_json),
            artifacts.save_json(params.to_dict(), files.params_json),
            artifacts.write_bytes(files.architecture, architecture_text(vae).encode()),
        ]
        prior_file = samplers.LearnedPrior().file(files)
        if vae.prior is not None:  # the learned prior as the mixture it is, for the generate scripts' sampler
            written.append(samplers.LearnedPrior.of(vae.prior.mixture(vae.encoder)).save(prior_file))
    stale = list(Path(files.models_dir).glob(f"{files.prefix}_sampler_*"))
    for path in stale + ([prior_file] if vae.prior is None and prior_file.exists() else []):
        path.unlink()
    return written


def save_final(vae, history, params, files: artifacts.ModelFiles, script: str, argv) -> list[Path]:
    """:func:`save_trained`; if that fails (disk full), say that the last checkpoint holds the model."""
    from vaelab.training import checkpoints

    try:
        return save_trained(vae, history, params, files)
    except UserError as e:
        latest = checkpoints.CheckpointStore(files).latest()
        if latest is None:
            raise
        raise UserError(f"{e}; the trained state is kept in {latest}: free some space, then "
                        f"{checkpoints.resume_command(script, argv)} saves it without training again") from None
