"""Generation quality without downloads: a small CNN per dataset, trained once and cached in ``models/``.

The FID (Heusel et al. 2017) compares Inception features of real and generated images; Inception weights are a
download and were trained on other images. Here a small classifier trained on the dataset itself plays
Inception's part: the Fréchet distance between its penultimate features (``features``, 128-d) on test images
and on decoded prior samples measures how far the samples are from the data, and its accuracy on
reconstructions says how much class information survives the autoencoder. Numbers are comparable between
models of one dataset scored with the same cached classifier and the same sample count, not with published
FIDs.

Binarized MNIST uses the MNIST classifier and the grey-level test images, since its decoder's outputs are
pixel probabilities, i.e. grey levels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaelab.core import artifacts
from vaelab.models import saving

FEATURES = "features"


def build_classifier(image_shape: tuple[int, ...], n_classes: int):
    """conv 32 -> pool -> conv 64 -> pool -> dense 128 (``features``) -> softmax: ~99% on MNIST in 2-3 epochs."""
    import keras
    from keras import layers

    x = keras.Input(shape=image_shape, name="image")
    h = layers.Conv2D(32, 3, activation="relu", name="conv_1")(x)
    h = layers.MaxPooling2D(2)(h)
    h = layers.Conv2D(64, 3, activation="relu", name="conv_2")(h)
    h = layers.MaxPooling2D(2)(h)
    h = layers.Dense(128, activation="relu", name=FEATURES)(layers.Flatten()(h))
    y = layers.Dense(n_classes, activation="softmax", name="class")(layers.Dropout(0.3)(h))
    return keras.Model(x, y, name="classifier")


def classifier_files(models_dir, dataset: str) -> tuple[Path, Path]:
    return Path(models_dir) / f"classifier_{dataset}.h5", Path(models_dir) / f"classifier_{dataset}.json"


def load_or_train(dataset: str, data, models_dir, epochs: int = 3, seed: int = 0, verbose: int = 0):
    """The cached classifier of ``dataset``, or a new one trained on ``data`` (and saved with its test accuracy).

    A cached file trained on a different number of images (a ``--limit`` run) is retrained, not reused.
    """
    import json

    import keras

    model_path, info_path = classifier_files(models_dir, dataset)
    if model_path.exists() and info_path.exists():
        info = json.loads(info_path.read_text())
        if info.get("train_images") == len(data.x_train) and info.get("image_shape") == list(data.image_shape):
            return saving.load_model(model_path), info
    print(f"training the {dataset} classifier ({epochs} epochs on {len(data.x_train)} images) for {model_path}",
          flush=True)
    keras.utils.set_random_seed(seed)
    model = build_classifier(data.image_shape, len(data.class_names))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(as_images(data.x_train), data.y_train, batch_size=128, epochs=epochs, verbose=verbose, shuffle=True)
    accuracy = accuracy_of(model, data.x_test, data.y_test)
    info = {"dataset": dataset, "train_images": len(data.x_train), "epochs": epochs, "seed": seed,
            "image_shape": list(data.image_shape), "test_accuracy": accuracy}
    artifacts.save_model(model, model_path)
    artifacts.save_json(info, info_path)
    return model, info


def as_images(x: np.ndarray) -> np.ndarray:
    """float32 in [0, 1], what decoders output: uint8 datasets (CIFAR-10) are scaled, floats kept. Real and
    generated images must reach the classifier on the same scale, or the Fréchet distance measures the scale."""
    x = np.asarray(x)
    return x.astype(np.float32) / np.float32(255) if x.dtype == np.uint8 else x.astype(np.float32, copy=False)


def predict(model, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    return np.asarray(model.predict(as_images(x), batch_size=batch_size, verbose=0))


def decode_all(decoder, z: np.ndarray, labels=None, batch_size: int = 1000) -> np.ndarray:
    """The decoder's images of ``z`` (with each one's label for a conditional decoder)."""
    inputs = z if labels is None else [z, np.asarray(labels, dtype=np.int32).reshape(-1, 1)]
    return np.asarray(decoder.predict(inputs, batch_size=batch_size, verbose=0))


def accuracy_of(model, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(predict(model, x).argmax(axis=1) == np.asarray(y)))


def features(model, x: np.ndarray) -> np.ndarray:
    """The penultimate (``features``) activations, (N, 128)."""
    import keras

    extractor = keras.Model(model.inputs, model.get_layer(FEATURES).output)
    return predict(extractor, x)


def temperature_sweep(model, held, decoder, z, drawn, shape, temperatures) -> tuple[dict[float, float], int]:
    """The Fréchet distance to the validation images ``held`` of the samples decoded from the same codes ``z``
    with the lower latents at each temperature, and the count of each side (the validation images, at most
    ``len(z)``)."""
    from vaelab.evaluation import metrics
    from vaelab.models.architectures.topdown import set_temperature

    m = min(len(z), len(held))
    real = features(model, held[:m])
    labels = None if drawn is None else drawn[:m]
    out = {}
    for t in temperatures:
        set_temperature(decoder, t)
        images = decode_all(decoder, z[:m], labels).reshape((m, *shape))
        out[float(t)] = metrics.frechet_distance(real, features(model, images))
    return out, m


def generation_quality(exp, vae, params, files, data_dir, models_dir, n_samples: int = 10000,
                       sampler: str | None = None, seed: int = 0, limit: int | None = None,
                       temperatures: list[float] | None = None, split: str = "test") -> dict:
    """Fréchet distances (samples of ``sampler`` vs test; reconstructions vs test; the train-vs-test floor at the
    same count) and the classifier's accuracy on the test images and on their reconstructions.

    With ``temperatures`` (a hierarchical model), the samples' lower latents are drawn at each of them first and
    scored against the validation images held out of the training set (:mod:`vaelab.data.splits`, whatever
    ``validate_on`` the model trained with); the temperature with the smallest distance is the one the test
    numbers are reported at (``fid_temperature``), so the test set makes no choice.

    With ``split="validation"`` the held-out validation images stand in for the test images everywhere
    (:meth:`~vaelab.config.experiments.Experiment.scored`): what a pilot is chosen by."""
    from vaelab.evaluation import metrics
    from vaelab.models import registry as parts
    from vaelab.models import samplers
    from vaelab.config.experiments import DATASETS, model_inputs
    from vaelab.models.architectures.topdown import set_temperature
    from vaelab.models.vae import image_decoder

    name = exp.classifier or exp.name
    # The classifier always learns from the whole training set (a --limit run would otherwise train, and
    # cache, a poor one); --limit picks only the test images that are scored.
    full = DATASETS[name].dataset(params, data_dir, None)
    model, info = load_or_train(name, full, models_dir, seed=seed)
    data = DATASETS[name].scored(full, params, split).limit(limit)
    shape = data.image_shape
    flat = len(vae.encoder.inputs[0].shape) == 2
    own = exp.scored(exp.dataset(params, data_dir, None), params, split)

    cond = vae.conditional

    def codes():  # a conditional model's with their labels, for a per-class sampler
        z = metrics.encode_gaussian(vae.encoder, model_inputs(own.x_train, flat),
                                    labels=own.y_train if cond else None)[0]
        return (z, np.asarray(own.y_train)) if cond else z

    chosen = samplers.load_or_fit(parts.sampler(params, sampler), files, codes, seed=params.seed)
    n = min(n_samples, len(data.x_test), len(data.x_train))
    # A conditional model draws the classes in turn, as many of each as the test set would hold at that count.
    drawn = np.arange(n) % vae.n_classes if cond else None
    z = chosen.sample(n, vae.latent_dim, seed, labels=drawn).astype(np.float32)
    decoder = image_decoder(vae)
    temperature, sweep, swept = params.temperature, {}, 0
    if temperatures:
        held = DATASETS[name].with_validation(full, params, validate_on="split").x_val  # never the test set
        sweep, swept = temperature_sweep(model, held, decoder, z, drawn, shape, temperatures)
        temperature = min(sweep, key=sweep.get)
    set_temperature(decoder, temperature)  # a hierarchical model's lower latents, as generate draws them
    samples = decode_all(decoder, z, drawn).reshape((n, *shape))
    own_test = own.limit(limit)
    test_inputs = model_inputs(own_test.x_test, flat)  # what the VAE was scored on
    test_labels = own_test.y_test if cond else None
    if vae.hierarchical:  # the lower latents from their posteriors, as the training loss had them
        if cond:
            from vaelab.models.conditional import pack

            packed = model_inputs(pack(own_test.x_test, own_test.y_test), flat, packed=True)
            recon = vae.reconstruct(packed).reshape((len(test_inputs), *shape))
        else:
            recon = vae.reconstruct(test_inputs).reshape((len(test_inputs), *shape))
    else:
        mean, _ = metrics.encode_gaussian(vae.encoder, test_inputs, labels=test_labels)
        recon = decode_all(decoder, mean.astype(np.float32), test_labels).reshape((len(test_inputs), *shape))
    real = features(model, data.x_test[:n])
    extra = {}
    if cond:
        fake = features(model, samples)
        per_class = {}
        for c in range(vae.n_classes):
            a, b = real[data.y_test[:n] == c], fake[drawn == c]
            if min(len(a), len(b)) > 1:
                per_class[str(c)] = metrics.frechet_distance(a, b)
        extra = {"conditional_accuracy": accuracy_of(model, samples, drawn),
                 "conditional_fid_per_class": per_class}
    if vae.hierarchical:
        extra["fid_temperature"] = float(temperature)
    if sweep:
        extra["fid_validation_by_temperature"] = {f"{t:g}": d for t, d in sweep.items()}
        extra["fid_validation_images"] = swept
    return {**extra,
        "fid": metrics.frechet_distance(real, features(model, samples)),
        "fid_samples": n,
        "fid_sampler": chosen.name,
        "fid_features": int(real.shape[1]),
        "fid_reconstructions": metrics.frechet_distance(real, features(model, recon[:n])),
        "fid_train_vs_test": metrics.frechet_distance(real, features(model, data.x_train[:n])),
        "classifier": f"classifier_{name}.h5",
        "classifier_accuracy_test": accuracy_of(model, data.x_test, data.y_test),
        "classifier_accuracy_reconstructions": accuracy_of(model, recon, data.y_test[:len(recon)]),
    }
