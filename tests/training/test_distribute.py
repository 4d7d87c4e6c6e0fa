"""--distribute and --mixed-precision: requests checked early, equal results on 1 and 2 devices (TensorFlow
and JAX), distinct noise per replica, and a two-worker run on 127.0.0.1 where only the chief writes.

Device layouts must be set before an engine starts, so everything that trains on several devices runs in a
subprocess with its own environment.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import ROOT, run_script
from vaelab.core import artifacts
from vaelab.models import saving
from vaelab.training import distribute
from vaelab.core.errors import UserError

WORKER_TIMEOUT = 420  # seconds; a worker whose peer died waits for it forever otherwise


def _env(backend: str, **extra) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT),
           "CUDA_VISIBLE_DEVICES": "", "PYTHONFAULTHANDLER": "1", "PYTHONUNBUFFERED": "1"}  # a crash shows where
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


# --- requests, checked before any engine loads ----------------------------------------------------


@pytest.mark.parametrize("config, chief", [
    (None, True),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, False),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}, True),
])
def test_the_chief_is_the_chief_task_else_worker_0(config, chief):
    environ = {"TF_CONFIG": json.dumps(config)} if config else {}
    assert distribute.is_chief(environ=environ) is chief


@pytest.mark.parametrize("text, message", [
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('{"cluster": {"worker": ["a:1"]}}', 'TF_CONFIG needs a "cluster" and a "task" object'),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "task type 'ps' is not supported"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "task index 1 is not in 0..0"),
])
def test_a_bad_tf_config_is_one_clear_line(text, message):
    with pytest.raises(UserError, match=message):
        distribute.check_request("multiworker", environ={"TF_CONFIG": text})


def test_requests_that_cannot_work():
    with pytest.raises(UserError, match="multiworker needs TF_CONFIG on every worker"):
        distribute.check_request("multiworker", environ={})
    with pytest.raises(UserError, match="--devices needs --distribute mirrored"):
        distribute.check_request("none", "0,1")
    with pytest.raises(UserError, match="multiworker needs the TensorFlow backend"):
        distribute.strategy_for("multiworker", backend="jax", tf_config={"cluster": {}, "task": {}})
    with pytest.raises(UserError, match="not available on the torch backend"):
        distribute.strategy_for("mirrored", backend="torch")


def test_the_global_batch_is_never_changed_silently():
    distribute.check_batch(256, 8)
    with pytest.raises(UserError, match=r"--batch-size 100 does not split evenly over 3 replicas; .*99 or 102"):
        distribute.check_batch(100, 3)
    plan = distribute.Plan("mirrored", "jax", replicas=3)
    assert len(plan.even(np.zeros((67, 4)))) == 66 and len(plan.even(np.zeros((66, 4)))) == 66


def test_devices_by_number_or_name():
    available = ["cpu:0", "gpu:0", "gpu:1"]
    assert distribute.resolve_devices(["1", "0"], available) == ["gpu:1", "gpu:0"]
    assert distribute.resolve_devices(["/device:GPU:1"], available) == ["gpu:1"]
    assert distribute.resolve_devices(["1"], ["cpu:0", "cpu:1"]) == ["cpu:1"]
    with pytest.raises(UserError, match=r"no device 'gpu:2' here; available: cpu:0, gpu:0, gpu:1"):
        distribute.resolve_devices(["gpu:2"], available)
    with pytest.raises(UserError, match="names gpu:0 twice"):
        distribute.resolve_devices(["0", "gpu:0"], available)


def test_mixed_precision_on_cpu_says_it_has_no_effect(capsys, monkeypatch):
    import keras

    assert distribute.set_precision("float16") == "float32"
    assert distribute.CPU_PRECISION_NOTE in capsys.readouterr().out
    assert keras.mixed_precision.global_policy().name == "float32"
    monkeypatch.setattr(distribute, "cpu_has_bf16", lambda: False)
    assert distribute.set_precision("bfloat16") == "float32"
    assert distribute.CPU_PRECISION_NOTE in capsys.readouterr().out


def test_bfloat16_is_applied_on_a_cpu_with_native_bfloat16(capsys, monkeypatch):
    import keras

    monkeypatch.setattr(distribute, "cpu_has_bf16", lambda: True)
    try:
        assert distribute.set_precision("bfloat16") == "mixed_bfloat16"
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        assert distribute.CPU_BF16_NOTE in capsys.readouterr().out
        assert distribute.set_precision("float16") == "mixed_bfloat16"  # float16: no effect, the policy stays
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_cpu_has_bf16_reads_the_flags(tmp_path):
    cpu = tmp_path / "cpuinfo"
    cpu.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n")
    assert distribute.cpu_has_bf16(cpu)
    cpu.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n")
    assert distribute.cpu_has_bf16(cpu)
    cpu.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni\n")
    assert not distribute.cpu_has_bf16(cpu)
    assert not distribute.cpu_has_bf16(tmp_path / "missing")


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_under_a_mixed_policy_outputs_and_loss_stay_float32(policy, tmp_path):
    """What --mixed-precision sets on a GPU, forced here on the CPU: 16-bit hidden layers, float32 outputs
    and loss, one finite training step, and a saved decoder that loads back under float32."""
    import keras

    from vaelab.models import vae as models
    from vaelab.config.params import MnistParams

    keras.mixed_precision.set_global_policy(policy)
    try:
        vae = models.build_vae(MnistParams(intermediate_dim=8), (28, 28, 1))
        vae.compile(optimizer=keras.optimizers.Adam(1e-3))
        x = np.random.default_rng(0).random((16, 784)).astype("float32")
        out = vae(x)
        assert vae.encoder.get_layer("encoder_hidden").compute_dtype == policy.split("_")[1]
        dtype = keras.backend.standardize_dtype
        assert {dtype(v.dtype) for v in out.values()} == {"float32"}
        assert dtype(vae.compute_loss(x, None, out).dtype) == "float32"
        loss = vae.fit(x, batch_size=8, epochs=1, verbose=0).history["loss"][0]
        assert np.isfinite(loss)
        scaled = isinstance(vae.optimizer, keras.optimizers.LossScaleOptimizer)
        assert scaled == (policy == "mixed_float16")  # Keras guards float16 gradients against underflow
        artifacts.save_model(vae.decoder, tmp_path / "d.h5")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    decoder = saving.load_model(tmp_path / "d.h5")
    assert decoder.predict(np.zeros((2, 2), "float32"), verbose=0).dtype == np.float32


def test_train_script_refuses_multiworker_without_tf_config(monkeypatch, capsys):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert run_script("mnist_train.py", "--distribute", "multiworker") == 2
    assert "error: --distribute multiworker needs TF_CONFIG" in capsys.readouterr().err


def test_train_script_mirrored_with_mixed_precision_on_cpu(tmp_path, mnist_dir, capsys):
    code = run_script("mnist_train.py", "--data-dir", mnist_dir, "--models-dir", tmp_path, "--epochs", "1",
                      "--intermediate-dim", "16", "--batch-size", "128", "--limit", "256",
                      "--distribute", "mirrored", "--mixed-precision", "float16")
    out = capsys.readouterr().out
    assert code == 0, out
    assert distribute.CPU_PRECISION_NOTE in out and "global batch 128 = 1 x 128 per replica" in out
    assert (tmp_path / "ld_2_id_16_e_1_decoder.h5").exists()


def test_train_script_in_bfloat16_on_a_bf16_cpu(tmp_path, mnist_dir, capsys, monkeypatch):
    """Trained in bfloat16, saved as a float32-output Keras model; the policy is float32 again afterwards."""
    import keras

    monkeypatch.setattr(distribute, "cpu_has_bf16", lambda: True)
    code = run_script("mnist_train.py", "--data-dir", mnist_dir, "--models-dir", tmp_path, "--epochs", "2",
                      "--intermediate-dim", "16", "--limit", "256", "--mixed-precision", "bfloat16")
    out = capsys.readouterr().out
    assert code == 0, out
    assert distribute.CPU_BF16_NOTE in out and "dtype policy mixed_bfloat16" in out
    assert keras.mixed_precision.global_policy().name == "float32"
    history = json.loads((tmp_path / "ld_2_id_16_e_2_history.json").read_text())
    assert all(np.isfinite(history["val_loss"])) and history["loss"][1] < history["loss"][0]
    encoder = saving.load_model(tmp_path / "ld_2_id_16_e_2_encoder.h5")
    assert encoder.get_layer("encoder_hidden").compute_dtype == "bfloat16"  # layers keep their policy
    decoder = saving.load_model(tmp_path / "ld_2_id_16_e_2_decoder.h5")
    assert decoder.get_layer("x_hat_mean").compute_dtype == "float32"  # the images are float32 ones
    assert decoder.predict(np.zeros((2, 2), "float32"), verbose=0).dtype == np.float32


# --- 1 device against 2: the same first step ------------------------------------------------------

EQUALITY = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    if os.environ["KERAS_BACKEND"] == "tensorflow":
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from vaelab.training import distribute
    from vaelab.models import vae as models
    from vaelab.config.params import MnistParams

    seen = []  # per-replica batch shapes, recorded as the loss is traced (TensorFlow)
    per_sample = models.VAE.sample_terms
    def recording(self, x, outputs):
        seen.append(tuple(x.shape))
        return per_sample(self, x, outputs)
    models.VAE.sample_terms = recording

    def first_step(mode):
        plan = distribute.strategy_for(mode, ["cpu:0", "cpu:1"] if mode == "mirrored" else None)
        keras.utils.set_random_seed(0)
        with plan.scope():
            vae = models.build_vae(MnistParams(intermediate_dim=8, epsilon_std=0.0), (28, 28, 1))
            vae.compile(optimizer=keras.optimizers.SGD(0.01))
            x = np.random.default_rng(0).random((64, 784)).astype("float32")
            before = [keras.ops.convert_to_numpy(w) for w in vae.trainable_weights]
            del seen[:]
            loss = vae.fit(x, batch_size=64, epochs=1, shuffle=False, verbose=0).history["loss"][0]
            shapes = sorted(set(seen))
            after = [keras.ops.convert_to_numpy(w) for w in vae.trainable_weights]
            steps = int(keras.ops.convert_to_numpy(vae.optimizer.iterations))
            vae.fit(np.concatenate([x, x, x]), batch_size=64, epochs=1, verbose=0)  # 192 examples, batch 64
            steps = int(keras.ops.convert_to_numpy(vae.optimizer.iterations)) - steps
        return plan.replicas, loss, before, after, shapes, steps

    r1, l1, b1, w1, s1, n1 = first_step("none")
    r2, l2, b2, w2, s2, n2 = first_step("mirrored")
    noise = None
    if os.environ["KERAS_BACKEND"] == "tensorflow":  # each replica draws its own sampling noise
        plan = distribute.strategy_for("mirrored", ["cpu:0", "cpu:1"])
        with plan.scope():
            inp = keras.Input((3,))
            sampler = keras.Model(inp, models.Sampling(seed=1)([inp, inp]))
        eps = sampler.predict(np.zeros((4, 3), "float32"), batch_size=4, verbose=0)
        noise = float(np.abs(eps[:2] - eps[2:]).mean())
    print(json.dumps({"replicas": [r1, r2], "loss": [l1, l2],
                      "start_dw": max(float(np.abs(a - b).max()) for a, b in zip(b1, b2)),
                      "dw": max(float(np.abs(a - b).max()) for a, b in zip(w1, w2)),
                      "moved": max(float(np.abs(a - b).max()) for a, b in zip(w1, b1)),
                      "shapes": [s1, s2], "steps": [n1, n2], "noise_gap": noise}))
""")


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_two_devices_give_the_single_device_first_step(backend):
    """Same data and seed on 1 device and on 2 (logical CPUs / XLA host devices): loss and updated weights
    agree within 1e-5, the loss is not doubled, and the global batch stays 64 (32 per replica)."""
    pytest.importorskip(backend)
    env = _env(backend, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    out = subprocess.run([sys.executable, "-c", EQUALITY], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{backend}: {r}")
    assert r["replicas"] == [1, 2]
    single, mirrored = r["loss"]
    assert abs(single - mirrored) <= 1e-5 * abs(single), r
    assert r["start_dw"] == 0.0 and r["moved"] > 1e-3, r  # same start, and the step did move the weights
    assert r["dw"] < 1e-5, r
    assert r["steps"] == [3, 3], r  # 192 examples at a global batch of 64
    if backend == "tensorflow":
        assert r["shapes"] == [[[64, 784]], [[32, 784]]], r
        assert r["noise_gap"] > 0.1, r  # identical noise would give 0


def test_train_script_on_two_jax_devices_with_an_odd_data_count(tmp_path, mnist_dir):
    """JAX refuses uneven shards: 101 examples are cut to 100, every batch splits 2 ways, files load."""
    pytest.importorskip("jax")
    env = _env("jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    cmd = [sys.executable, str(ROOT / "mnist_train.py"), "--data-dir", str(mnist_dir), "--models-dir", str(tmp_path),
           "--epochs", "1", "--intermediate-dim", "16", "--batch-size", "64", "--limit", "101",
           "--validate-on", "test", "--distribute", "mirrored"]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "mirrored on jax, 2 replica(s) in all (devices: cpu:0, cpu:1)" in out.stdout
    assert "using 100 of 101 training examples" in out.stdout and "using 100 of 101 test examples" in out.stdout
    decoder = saving.load_model(tmp_path / "ld_2_id_16_e_1_decoder.h5")
    assert decoder.predict(np.zeros((1, 2), "float32"), verbose=0).shape == (1, 784)


# --- two workers on 127.0.0.1 ---------------------------------------------------------------------


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _shown(output: str) -> str:
    """A worker's output to print: its end, or after a crash faulthandler's stack (PYTHONFAULTHANDLER), which the
    list of extension modules printed after it would push out of the end."""
    crash = output.find("Fatal Python error")
    return output[crash:crash + 4000] if crash >= 0 else output[-1500:]


def test_two_workers_train_one_epoch_and_only_the_chief_writes(tmp_path, mnist_dir):
    """Two TF_CONFIG workers on 127.0.0.1 (2 replicas), beside a one-device run of the same command: without
    sampling noise the histories agree, so sharding, shuffling and loss scaling match across workers.
    The reference runs under a one-device MirroredStrategy so that it shuffles as the workers do (Keras's
    shuffle; the single-device default uses the seeded per-epoch order of vaelab.training.checkpoints)."""
    pytest.importorskip("tensorflow")
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    procs = []
    for index in (0, 1, None):  # None: the single-device reference run
        config = {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        env = _env("tensorflow", **(config if index is not None else {}))
        cmd = [sys.executable, str(ROOT / "mnist_train.py"), "--data-dir", str(mnist_dir), "--models-dir",
               str(tmp_path / f"models{'' if index is None else index}"), "--epochs", "1", "--intermediate-dim",
               "16", "--batch-size", "64", "--epsilon-std", "0", "--validate-on", "test",  # 512: even
               *(["--distribute", "mirrored", "--devices", "cpu:0"] if index is None else
                 ["--distribute", "multiworker"])]
        procs.append(subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=WORKER_TIMEOUT)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    print("\n".join(f"--- worker {i} ---\n{_shown(o)}" for i, o in enumerate(outputs)))
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert "2 workers, 2 replica(s) in all" in outputs[0] and "this one is the chief" in outputs[0]
    assert "not the chief" in outputs[1] and "saved " not in outputs[1]
    prefix = "ld_2_id_16_e_1"
    chief = sorted(p.name for p in (tmp_path / "models0").iterdir())
    assert chief == sorted([f"{prefix}_{s}" for s in ("vae.h5", "encoder.h5", "decoder.h5", "history.pkl",
                                                      "history.json", "params.json", "log.csv",
                                                      "architecture.txt")]
                   + ["checkpoints", "tensorboard"])
    other = tmp_path / "models1"
    assert not other.exists() or not any(other.iterdir())
    history = artifacts.load_history(tmp_path / "models0" / f"{prefix}_history.pkl")
    single = artifacts.load_history(tmp_path / "models" / f"{prefix}_history.pkl")
    print(f"2 workers: {history}\n1 device:  {single}")
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0])
    for key in ("loss", "val_loss", "kl_loss"):
        np.testing.assert_allclose(history[key], single[key], rtol=1e-5)
    decoder = saving.load_model(tmp_path / "models0" / f"{prefix}_decoder.h5")
    images = decoder.predict(np.zeros((2, 2), "float32"), verbose=0)
    assert images.shape == (2, 784) and np.all((images >= 0) & (images <= 1))
