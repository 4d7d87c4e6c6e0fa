"""The FLOP count behind the benchmark's '% of peak' (timings themselves are never tested)."""

import keras
import numpy as np
import pytest

from vaelab.evaluation import benchmark
from vaelab.models.vae import build_vae
from vaelab.config.params import MnistParams


def test_dense_vae_training_flops_from_layer_shapes():
    vae = build_vae(MnistParams(), (28, 28, 1))  # 784 -> 512 -> (2, 2); 2 -> 512 -> 784
    forward = 2 * (784 * 512 + 512 * 2 + 512 * 2) + 2 * (2 * 512 + 512 * 784)
    assert benchmark.model_forward_flops(vae.encoder) + benchmark.model_forward_flops(vae.decoder) == forward
    assert benchmark.vae_train_flops(vae) == 3 * forward


def test_conv_flops():
    x = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same")(x)  # out 4x4x4
    y = keras.layers.Conv2DTranspose(5, 3, strides=2, padding="same")(h)  # in 4x4x4 -> 8x8x5
    model = keras.Model(x, keras.layers.Dense(6)(keras.layers.Flatten()(y)))
    assert benchmark.model_forward_flops(model) == (2 * 4 * 4 * 4 * 3 * 3 * 3 + 2 * 4 * 4 * 4 * 3 * 3 * 5
                                                    + 2 * 8 * 8 * 5 * 6)


def test_matmul_peak_reports_a_rate():
    peak = benchmark.matmul_peak(n=64, repeats=3)
    assert peak["median_flops"] > 1e6 and len(peak["rates"]) == 3 and peak["best_flops"] >= peak["median_flops"]


def test_dense_step_gemms_are_the_steps_matrix_products():
    vae = build_vae(MnistParams(), (28, 28, 1))
    gemms = benchmark.vae_step_gemms(vae, 256)
    # 5 forward, 5 weight-gradient, and 4 input-gradient products: none for the layer fed by the images
    assert len(gemms) == 14
    assert gemms[:3] == [("encoder_hidden forward", 256, 784, 512), ("encoder_hidden weight grad", 784, 256, 512),
                         ("z_mean forward", 256, 512, 2)]
    assert ("x_hat input grad", 256, 784, 512) in gemms and ("x_hat weight grad", 512, 256, 784) in gemms
    assert not any(what == "encoder_hidden input grad" for what, *_ in gemms)
    # = 3 x the forward FLOPs of the model (what vae_train_flops counts) minus the first layer's input gradient
    assert benchmark.gemm_flops(gemms) == 256 * benchmark.vae_train_flops(vae) - 2 * 256 * 784 * 512


def test_gemm_step_seconds_times_blocks():
    times = benchmark.gemm_step_seconds([("a forward", 4, 3, 2), ("a weight grad", 3, 4, 2),
                                         ("b input grad", 4, 2, 3)], seconds=0.01)
    assert len(times) == 5 and all(t > 0 for t in times)


def _versus():
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("versus", ROOT / "benchmarks" / "versus.py")
    versus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(versus)
    return versus


def test_versus_reports_name_no_checkout_folder():
    """A variant run in another checkout (ROOT=DIR) is reported as ROOT=CHECKOUT, in the text and the JSON."""
    versus = _versus()
    row = {"kind": "ours", "env": versus.parse_variant("old: ROOT=/home/me/old-checkout --no-jit")["env"],
           "cmd": ["mnist_train.py", "--no-jit"]}
    shown = versus.without_folders(versus.shown(row, versus.MODELS["mnist"]))
    assert shown.startswith("ROOT=CHECKOUT python mnist_train.py --no-jit --epochs 5") and "/home" not in shown
    assert versus.without_folders('["old: ROOT=/a/b", "x"]') == '["old: ROOT=CHECKOUT", "x"]'
    assert versus.without_folders("--variant 'old: ROOT=/a/b'") == "--variant 'old: ROOT=CHECKOUT'"


def test_versus_gemm_limit_times_the_default_steps():
    """benchmarks/versus.py's GEMM-only row, from the default params (it once read an entry that had gone); a
    model whose rows validate also pays the forward products of validation, so its limit is below the
    training step's own rate."""
    versus = _versus()
    row = versus.gemm_limit("mnist", 0.05)
    assert row["samples_per_s"] > 0 and row["step_ms"] > 0 and row["gflops"] > 0 and row["products"] == 14
    row = versus.gemm_limit("fashion_mnist", 0.05)
    assert 0 < row["samples_per_s"] < 256 / (row["step_ms"] / 1e3) and row["products"] == 26


def test_versus_rows_of_every_model():
    """Every model's rows: ours with its --limit, each plain loop (JAX where written) without and with validation,
    all plain rows with the --plain-env environment, a plain/ variant with its own on top."""
    versus = _versus()
    variants = [versus.parse_variant(v) for v in ("fashion_mnist/old: --no-jit", "plain/torch/1 thread: OMP_NUM_THREADS=1")]
    for model, spec in versus.MODELS.items():
        rows = {r["name"]: r for r in versus.rows_for(model, variants, plain_env={"OMP_WAIT_POLICY": "PASSIVE"})}
        assert rows["ours (default command)"]["cmd"][0] == spec["script"] and rows["ours (default command)"]["env"] == {}
        for loop in ("plain PyTorch", "plain JAX") if spec["jax"] else ("plain PyTorch",):
            cmd, validated = rows[loop]["cmd"], rows[f"{loop} + validation"]["cmd"]
            assert cmd[cmd.index("--model") + 1] == model and "--validate" not in cmd
            assert validated == [*cmd, "--validate"]
            assert rows[loop]["env"] == {"OMP_WAIT_POLICY": "PASSIVE"}
        assert rows["plain PyTorch, 1 thread"]["env"] == {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
        assert ("plain JAX" in rows) == spec["jax"] and ("ours, old" in rows) == (model == "fashion_mnist")
        if spec["limit"]:
            assert spec["train"] == spec["limit"] and str(spec["limit"]) in rows["ours (default command)"]["cmd"]



def test_versus_rounds_per_model(monkeypatch):
    """``--models mnist:2,cifar10`` runs 2 rounds of MNIST and --rounds of CIFAR-10; a bad count is a usage error."""
    versus = _versus()
    seen = {}

    class Stop(Exception):
        pass

    def fake_measure(models, rounds, variants, data_dir, log, plain_loops=True, plain_env=None, plain_jax=True):
        seen.update(models=models, rounds=rounds, plain_env=plain_env, plain_jax=plain_jax)
        raise Stop

    monkeypatch.setattr(versus, "measure", fake_measure)
    with pytest.raises(Stop):
        versus.main(["--models", "mnist:2,cifar10", "--rounds", "4", "--plain-env", "OMP_WAIT_POLICY=PASSIVE"])
    assert seen == {"models": ["mnist", "cifar10"], "rounds": {"mnist": 2, "cifar10": 4},
                    "plain_env": {"OMP_WAIT_POLICY": "PASSIVE"}, "plain_jax": True}
    with pytest.raises(Stop):
        versus.main(["--models", "cifar10", "--no-plain-jax"])
    assert seen["plain_jax"] is False
    with pytest.raises(SystemExit):
        versus.main(["--models", "mnist:two"])


def test_versus_warms_up_untimed_before_the_rounds(monkeypatch):
    """The first run of each row is its --epochs 1, untimed (it may build a dataset or compiler cache); the rates come only
    from the timed runs after it. Without plain JAX, only the PyTorch rows are plain."""
    versus = _versus()
    calls = []
    walls = iter([100.0] * 3 + [10.0, 13.0] * 3)  # a warm-up per row, then (--epochs 1, --epochs E) per row

    def fake_run(row, epochs, data_dir, scratch):
        calls.append((row["name"], epochs))
        return {"wall": next(walls), "cpu": 0.0, "last_loss": 1.0}

    monkeypatch.setattr(versus, "run_once", fake_run)
    monkeypatch.setattr(versus, "gemm_limit", lambda model, seconds: {"samples_per_s": 1.0})
    out = versus.measure(["cifar10"], 1, [], None, lambda line: None, plain_jax=False)
    assert calls[:3] == [("ours (default command)", 1), ("plain PyTorch", 1), ("plain PyTorch + validation", 1)]
    assert len(calls) == 9
    rows = out["cifar10"]["rows"]
    assert set(rows) == {"ours (default command)", "plain PyTorch", "plain PyTorch + validation",
                         "GEMM-only limit (numpy BLAS)"}
    spec = versus.MODELS["cifar10"]
    assert rows["ours (default command)"][0]["samples_per_s"] == (spec["epochs"] - 1) * spec["train"] / 3.0

def test_vae_step_gemms_of_the_conv_models():
    from vaelab.config.conv_params import Cifar10Params
    from vaelab.config.params import FashionMnistParams

    for params, shape in ((Cifar10Params(), (32, 32, 3)), (FashionMnistParams(), (28, 28, 1))):
        vae = build_vae(params, shape)
        gemms = benchmark.vae_step_gemms(vae, 8)
        first = gemms[0]
        assert first[0].endswith(" forward") and not any(w == first[0].replace("forward", "input grad")
                                                         for w, *_ in gemms)
        # the step's products are 3x the forward FLOPs, less the image layer's input gradient
        assert benchmark.gemm_flops(gemms) == 8 * benchmark.vae_train_flops(vae) - 2 * first[1] * first[2] * first[3]
        forward = benchmark.vae_step_gemms(vae, 8, forward_only=True)
        assert all(w.endswith(" forward") for w, *_ in forward) and 3 * len(forward) - 1 == len(gemms)
        assert benchmark.gemm_flops(forward) * 3 == 8 * benchmark.vae_train_flops(vae)
    # CIFAR-10's second convolution: 2x2, stride 2, 3 -> 32 channels, 32x32 -> 16x16, as im2col lowers it
    vae = build_vae(Cifar10Params(), (32, 32, 3))
    assert ("conv_2 forward", 8 * 16 * 16, 2 * 2 * 3, 32) in benchmark.vae_step_gemms(vae, 8)
    # its first transposed convolution mirrors conv_4: 16x16x32 in, 3x3 kernel, 32 out
    assert ("deconv_1 forward", 8 * 16 * 16, 32, 3 * 3 * 32) in benchmark.vae_step_gemms(vae, 8)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # CIFAR-10's 2x2 kernels, as designed
def test_plain_torch_models_are_the_default_architectures():
    """benchmarks/plain_torch.py's modules have the Keras default models' trainable parameter counts and give
    back images of the input's shape, so "the same architecture and batch" holds for every compared model."""
    import importlib.util

    import torch
    from conftest import ROOT

    from vaelab.config.experiments import lookup

    spec = importlib.util.spec_from_file_location("plain_torch", ROOT / "benchmarks" / "plain_torch.py")
    plain = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plain)
    modules = {"mnist": plain.DenseVAE(), "fashion_mnist": plain.ConvBnVAE(32, 3, 3),
               "cifar10": plain.ConvVAE((32, 32, 3), 32, (2, 2, 3, 3), (1, 2, 1, 1), 128, 16),
               "caltech101_92": plain.ConvVAE((92, 92, 3), 32, (3, 3, 3, 3), (1, 2, 2, 2), 256, 32),
               "caltech101_128": plain.ConvVAE((128, 128, 3), 64, (3, 3, 3, 3), (1, 2, 2, 2), 256, 64)}
    assert set(modules) == set(plain.MODELS)
    for name, module in modules.items():
        exp = lookup(name)
        params = exp.params_cls()
        vae = build_vae(params, exp.image_shape)
        keras_count = sum(int(np.prod(w.shape)) for w in vae.encoder.trainable_weights + vae.decoder.trainable_weights)
        assert sum(p.numel() for p in module.parameters()) == keras_count, name
        assert plain.MODELS[name]["batch"] == params.batch_size
        h, w, c = exp.image_shape
        x = torch.zeros((2, h * w * c)) if name == "mnist" else torch.zeros((2, c, h, w))
        module.eval()
        with torch.no_grad():
            assert module.decode(module.encode(x)[0]).shape == x.shape


def test_cpu_description_names_the_model_and_its_vector_instructions(tmp_path):
    """Speed reports name the CPU's vector instructions: the same VM kind ran TensorFlow's convolutions at less
    than half the speed on a host without AVX-512 (docs/benchmarks.md, 2026-12-07)."""
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx2 fma avx512f avx512_bf16\n\n"
                    "processor\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx2 fma avx512f avx512_bf16\n")
    assert benchmark.cpu_description(str(info)) == "AMD EPYC (avx512f, avx512_bf16, avx2, fma)"
    info.write_text("model name\t: Some CPU\nflags\t\t: fpu sse avx2 fma\n")
    assert benchmark.cpu_description(str(info)) == "Some CPU (avx2, fma)"
    info.write_text("model name\t: Old CPU\nflags\t\t: fpu sse\n")
    assert benchmark.cpu_description(str(info)) == "Old CPU (no AVX)"
    assert benchmark.cpu_description(str(tmp_path / "missing")) != ""
