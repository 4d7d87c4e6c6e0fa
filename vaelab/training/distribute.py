"""Training on several devices and machines with the engines Keras already runs on; mixed precision.

``--distribute`` picks how a train script spreads one training run:

- ``none``: one device, as before.
- ``mirrored``: one replica per local device, every local GPU unless ``--devices`` names some.
  TensorFlow: ``tf.distribute.MirroredStrategy``; JAX: ``keras.distribution.DataParallel``.
- ``multiworker``: TensorFlow's ``tf.distribute.MultiWorkerMirroredStrategy`` over the machines that
  the ``TF_CONFIG`` environment variable lists, one process per machine running the same command.

What does not change: the global batch is ``params.batch_size`` (R replicas see batch/R examples each),
the learning rate is the params' value (not multiplied by R), and the loss is the mean over the global
batch. On ``tf.distribute`` the replicas' gradients are summed, so :meth:`vaelab.models.vae.VAE.compute_loss`
divides its per-replica mean by R; JAX computes on the global batch and needs no such step.

What changes: the batch size must be a multiple of R, and the training and test sets are cut to a multiple
of R (at most R-1 examples, said on the console) so that every batch, the last one included, splits into
equal shares: JAX refuses uneven shards, and on TensorFlow unequal shares would weight the replicas'
means unequally. Keras batches at the global size, prefetches, splits each batch per replica and, on
several workers, shards by example (``AutoShardPolicy.DATA``). Only the chief writes files; the other
workers write theirs to a temporary directory that is deleted (what the TensorFlow guide recommends,
since saving may take part in collective operations).

Nothing here imports Keras or TensorFlow at import time: :func:`check_request` answers a bad command
line at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from vaelab.core.cpu import cpu_flags
from vaelab.core.errors import UserError

MODES = ("none", "mirrored", "multiworker")
PRECISIONS = ("off", "float16", "bfloat16")
POLICIES = {"float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
CPU_PRECISION_NOTE = ("mixed precision has no effect on this CPU (bfloat16 needs its AVX512_BF16 or AMX "
                      "instructions, float16 a GPU); training in float32")
CPU_BF16_NOTE = "bfloat16 on this CPU's native bfloat16 instructions (see docs/distributed.md for where it is faster)"

TF_CONFIG_EXAMPLE = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                     '"task": {"type": "worker", "index": 0}}\'')


# --- the command line, checked before Keras loads -------------------------------------------------


def parse_devices(text: str | None) -> list[str] | None:
    """``"0,1"`` or ``"gpu:0, gpu:1"`` -> the list of names; None when not given."""
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UserError(f"--devices {text!r}: expected a comma list such as 0,1 or gpu:0,gpu:1")
    return names


def read_tf_config(environ=None) -> dict | None:
    """The parsed and checked ``TF_CONFIG`` (None when unset): a cluster of workers and this task."""
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
    except ValueError as e:
        raise UserError(f"TF_CONFIG is not valid JSON ({e}); expected e.g. {TF_CONFIG_EXAMPLE}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise UserError(f"TF_CONFIG needs a \"cluster\" and a \"task\" object; expected e.g. {TF_CONFIG_EXAMPLE}")
    kind, index = task.get("type"), task.get("index")
    if kind not in ("chief", "worker"):
        raise UserError(f"TF_CONFIG task type {kind!r} is not supported; use \"worker\" (or \"chief\")")
    members = cluster.get(kind)
    if not isinstance(members, list) or not members:
        raise UserError(f"TF_CONFIG cluster has no {kind!r} list, but the task is a {kind}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(members):
        raise UserError(f"TF_CONFIG task index {index!r} is not in 0..{len(members) - 1} "
                        f"(the cluster has {len(members)} {kind} address(es))")
    return config


def is_chief(tf_config: dict | None = None, environ=None) -> bool:
    """Whether this process writes the artifacts: the ``chief`` task, else worker 0; True without
    ``TF_CONFIG``."""
    config = tf_config if tf_config is not None else read_tf_config(environ)
    if config is None:
        return True
    task = config["task"]
    if task["type"] == "chief":
        return True
    return "chief" not in config["cluster"] and task["index"] == 0


def check_request(mode: str, devices: str | None = None, environ=None) -> dict | None:
    """One-line errors for a request that cannot work, before any engine loads; returns ``TF_CONFIG``."""
    if mode not in MODES:
        raise UserError(f"--distribute must be one of {', '.join(MODES)}; got {mode!r}")
    if devices is not None and mode != "mirrored":
        raise UserError("--devices needs --distribute mirrored (multiworker uses every GPU of each worker)")
    parse_devices(devices)
    config = read_tf_config(environ) if mode == "multiworker" else None
    if mode == "multiworker" and config is None:
        raise UserError(f"--distribute multiworker needs TF_CONFIG on every worker, e.g. {TF_CONFIG_EXAMPLE}; "
                        "see docs/distributed.md")
    return config


def check_batch(batch_size: int, replicas: int) -> None:
    """The global batch must split into equal shares: it is never changed silently."""
    if batch_size % replicas:
        low = batch_size - batch_size % replicas
        hint = f"{low} or {low + replicas}" if low else str(replicas)
        raise UserError(f"--batch-size {batch_size} does not split evenly over {replicas} replicas; "
                        f"use a multiple of {replicas} (e.g. {hint})")


def resolve_devices(requested: list[str], available: list[str]) -> list[str]:
    """``requested`` names (``0``, ``gpu:1``, ``/device:GPU:1``) as names in ``available`` (``gpu:1``).

    A bare number means the accelerator of that index when there is one, else the CPU of that index.
    """
    kind = next((a.split(":")[0] for a in available if not a.startswith("cpu:")), "cpu")
    out = []
    for name in requested:
        short = name.lower().replace("/device:", "").lstrip("/")
        short = f"{kind}:{short}" if short.isdigit() else short
        if short not in available:
            raise UserError(f"--devices: no device {name!r} here; available: {', '.join(available)}")
        if short in out:
            raise UserError(f"--devices names {short} twice")
        out.append(short)
    return out


# --- the engines ----------------------------------------------------------------------------------


@dataclass
class Plan:
    """How this process trains: the engine's strategy or distribution, its replicas, and its role."""

    mode: str = "none"
    backend: str = ""
    replicas: int = 1
    devices: tuple[str, ...] = ()
    workers: int = 1
    chief: bool = True
    strategy: object = None  # tf.distribute.Strategy or keras.distribution.Distribution
    scratch: Path | None = field(default=None, repr=False)  # a non-chief's throw-away output directory

    def scope(self):
        """The context in which models are built, compiled and trained."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def describe(self, batch_size: int) -> str:
        if self.mode == "none":
            return f"devices: one ({self.backend}); batch {batch_size}"
        where = f"{self.workers} workers, " if self.workers > 1 else ""
        here = "this worker's devices" if self.workers > 1 else "devices"
        role = "" if self.workers == 1 else (" (this one is the chief: it writes the files)" if self.chief
                                            else " (not the chief: its files go to a temp dir and are removed)")
        return (f"devices: {self.mode} on {self.backend}, {where}{self.replicas} replica(s) in all "
                f"({here}: {', '.join(self.devices)}); global batch {batch_size} = {self.replicas} x "
                f"{batch_size // self.replicas} per replica; learning rate unchanged{role}")

    def even(self, x, what: str = "training"):
        """``x`` cut to a multiple of the replica count, so that every batch splits into equal shares."""
        extra = len(x) % self.replicas
        if not extra:
            return x
        print(f"using {len(x) - extra} of {len(x)} {what} examples: a multiple of {self.replicas} replicas")
        return x[:len(x) - extra]

    def adapt(self, model):
        """``model`` ready for this plan's engine; returns it.

        Keras 3 reduces what a train/test step returns with ``strategy.reduce("MEAN", v, axis=0)`` under
        ``MultiWorkerMirroredStrategy``, which fails on scalar metrics ("Invalid reduction dimension 0",
        tensorflow/tensorflow#72388), and ignores ``distribute_reduction_method``. So, on several workers
        only, the step's metric results are given a length-1 axis; every replica already holds the global
        value (Keras sums metric variables across replicas as they update), so the mean is that value.
        """
        if self.mode == "multiworker" and self.backend == "tensorflow":
            model.get_metrics_result = _metrics_with_batch_axis(model.get_metrics_result)
        return model

    def files(self, files):
        """Where this process writes: ``files`` on the chief, a temporary directory on other workers."""
        if self.chief:
            return files
        if self.scratch is None:
            self.scratch = Path(tempfile.mkdtemp(prefix="vaelab-worker-"))
        return replace(files, models_dir=self.scratch)


def _metrics_with_batch_axis(get_metrics_result):
    """Wrap ``Model.get_metrics_result`` to return shape-(1,) values inside a replica step (see
    :meth:`Plan.adapt`), and plain scalars everywhere else."""
    import tensorflow as tf

    def wrapped():
        result = get_metrics_result()
        if tf.distribute.has_strategy() and not tf.distribute.in_cross_replica_context():
            return {k: tf.reshape(v, [1]) for k, v in result.items()}
        return result

    return wrapped


def strategy_for(mode: str, devices: list[str] | None = None, backend: str | None = None,
                 tf_config: dict | None = None) -> Plan:
    """The :class:`Plan` for ``--distribute mode``: a TensorFlow strategy or a Keras distribution."""
    if tf_config is None:
        tf_config = check_request(mode, ",".join(devices) if devices else None)
    if backend is None:
        import keras

        backend = keras.backend.backend()
    if mode == "none":
        return Plan("none", backend)
    if backend == "tensorflow":
        return _tensorflow_plan(mode, devices, tf_config)
    if backend == "jax":
        if mode == "multiworker":
            raise UserError("--distribute multiworker needs the TensorFlow backend (KERAS_BACKEND=tensorflow); "
                            "on JAX use --distribute mirrored on one machine")
        return _jax_plan(devices)
    raise UserError(f"--distribute {mode} is not available on the {backend} backend; "
                    "use KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax")


def _tensorflow_plan(mode, devices, tf_config) -> Plan:
    import tensorflow as tf

    if mode == "mirrored":
        available = [d.name.split("device:")[-1].lower() for d in tf.config.list_logical_devices()]
        chosen = resolve_devices(devices, available) if devices else None
        strategy = tf.distribute.MirroredStrategy([f"/{d}" for d in chosen] if chosen else None)
        workers, chief = 1, True
    else:
        # Must be the first TensorFlow work of the process: it starts this worker's gRPC server.
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        workers = sum(len(tf_config["cluster"].get(k, [])) for k in ("chief", "worker"))
        chief = is_chief(tf_config)
    names = tuple(d.split("device:")[-1].lower() for d in strategy.extended.worker_devices)
    return Plan(mode, "tensorflow", strategy.num_replicas_in_sync, names, workers, chief, strategy)


def _jax_plan(devices) -> Plan:
    import keras

    available = list(keras.distribution.list_devices())
    chosen = resolve_devices(devices, available) if devices else available
    distribution = keras.distribution.DataParallel(devices=chosen)
    return Plan("mirrored", "jax", len(chosen), tuple(chosen), strategy=distribution)


# --- mixed precision ------------------------------------------------------------------------------


def has_accelerator() -> bool:
    """Whether the backend computes on a GPU or TPU here."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"))
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes in bfloat16 natively (the ``avx512_bf16`` or ``amx_bf16`` flag; Linux)."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags(cpuinfo))


def set_precision(kind: str) -> str:
    """Set the global dtype policy for ``--mixed-precision kind``; returns the policy's name.

    Layers then compute in float16 or bfloat16 with float32 weights; the VAE's last layers and its loss stay
    in float32 (see :mod:`vaelab.models.vae`), and Keras scales the float16 loss against underflow. On a CPU
    only bfloat16 on native bfloat16 instructions (:func:`cpu_has_bf16`) is applied: oneDNN's bfloat16
    convolutions there ran the CIFAR-10 conv step 2.1x as fast as float32 (docs/distributed.md); otherwise it
    says it has no effect and keeps float32.
    """
    if kind not in PRECISIONS:
        raise UserError(f"--mixed-precision must be one of {', '.join(PRECISIONS)}; got {kind!r}")
    import keras

    if kind == "off":
        return keras.mixed_precision.global_policy().name
    if not has_accelerator():
        if kind != "bfloat16" or not cpu_has_bf16():
            print(CPU_PRECISION_NOTE)
            return keras.mixed_precision.global_policy().name
        print(CPU_BF16_NOTE)
    keras.mixed_precision.set_global_policy(POLICIES[kind])
    return POLICIES[kind]


# --- the one entry train scripts use --------------------------------------------------------------


@contextlib.contextmanager
def session(mode: str = "none", devices: str | None = None, precision: str = "off", batch_size: int = 1):
    """Set up ``--distribute``/``--devices``/``--mixed-precision`` and yield the :class:`Plan`, inside its
    scope. On leaving, the dtype policy is restored and a non-chief's temporary files are deleted."""
    import keras

    plan = strategy_for(mode, parse_devices(devices))
    check_batch(batch_size, plan.replicas)
    previous = keras.mixed_precision.global_policy()
    policy = set_precision(precision)
    print(plan.describe(batch_size) + (f"; dtype policy {policy}" if precision != "off" else ""))
    try:
        with plan.scope():
            yield plan
    finally:
        keras.mixed_precision.set_global_policy(previous)
        if plan.scratch is not None:
            shutil.rmtree(plan.scratch, ignore_errors=True)
