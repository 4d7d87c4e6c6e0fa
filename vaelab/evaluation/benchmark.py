"""Measuring training speed: FLOPs counted from layer shapes, the machine's float32 matmul peak, timed epochs.

Used by ``benchmarks/throughput.py``; nothing here is run by the tests except the FLOP counting, because
timings in tests only measure the test machine's mood.

Counting rule (stated with every number): a Dense layer costs ``2 * in * out`` FLOPs per example forward, a
Conv2D ``2 * H_out * W_out * C_out * kh * kw * C_in / groups``, a Conv2DTranspose
``2 * H_in * W_in * C_in * kh * kw * C_out``; a training step costs 3x the forward matmul/conv FLOPs (the backward
pass computes the gradients with respect to the inputs and to the weights, each as large as the forward).
Element-wise work (activations, the loss, the sampling, the optimizer update) is not counted, so the rate is
a lower bound of the work done and the percentage of the matmul peak is what the matmuls achieved.
"""

from __future__ import annotations

import math
import platform
import resource
import statistics
import time

import numpy as np

from vaelab.core.cpu import cpu_fields

TRAIN_FLOPS_PER_FORWARD = 3


def _shape(tensor_or_shape) -> tuple:
    return tuple(getattr(tensor_or_shape, "shape", tensor_or_shape))


def layer_gemm(layer, batch: int) -> tuple[int, int, int] | None:
    """``(m, k, n)`` of the forward product of a built Dense, Conv2D or Conv2DTranspose layer at ``batch``, None
    for other layers. A convolution is counted as the product it lowers to (im2col): a Conv2D
    ``(B Ho Wo, kh kw Cin) @ (kh kw Cin, Cout)``; a Conv2DTranspose, the input gradient of the convolution it
    mirrors, ``(B Hi Wi, Cin) @ (Cin, kh kw Cout)`` (col2im's scatter-add not counted)."""
    kind = type(layer).__name__
    if kind == "Dense":
        return batch, int(layer.kernel.shape[0]), int(layer.kernel.shape[1])
    if kind not in ("Conv2D", "Conv2DTranspose"):
        return None
    kh, kw, a, b = (int(v) for v in layer.kernel.shape)  # Conv2D: (kh, kw, in, out); transpose: (kh, kw, out, in)
    shape = _shape(layer.output if kind == "Conv2D" else layer.input)
    h, w = (shape[1], shape[2]) if layer.data_format == "channels_last" else (shape[2], shape[3])
    rows = batch * int(h) * int(w)
    return (rows, kh * kw * a, b) if kind == "Conv2D" else (rows, b, kh * kw * a)


def layer_forward_flops(layer) -> int:
    """Multiply-add FLOPs (x2) of one layer per example, from its built input/output shapes; 0 for others."""
    gemm = layer_gemm(layer, 1)
    if gemm is None:
        return 0
    m, k, n = gemm
    return 2 * m * k * n // max(int(getattr(layer, "groups", 1)), 1)


def _layers_in_order(model):
    """The layers of ``model`` and of its nested models, in the order they were added."""
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _layers_in_order(layer)
        else:
            yield layer


def model_forward_flops(model) -> int:
    """Forward FLOPs per example of a model, summed over its layers and nested models."""
    return sum(layer_forward_flops(layer) for layer in _layers_in_order(model))


def vae_train_flops(vae) -> int:
    """Training FLOPs per example of a VAE: 3 x (encoder + decoder forward)."""
    return TRAIN_FLOPS_PER_FORWARD * (model_forward_flops(vae.encoder) + model_forward_flops(vae.decoder))


def matmul_peak(n: int = 2048, repeats: int = 7, dtype=np.float32) -> dict:
    """numpy ``n x n @ n x n`` FLOP rate: median and best of ``repeats`` after two warm-ups (2 n^3 FLOPs each)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=dtype), rng.random((n, n), dtype=dtype)
    for _ in range(2):
        a @ b
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        rates.append(2 * n ** 3 / (time.perf_counter() - started))
    return {"n": n, "median_flops": statistics.median(rates), "best_flops": max(rates),
            "rates": [round(r / 1e9, 1) for r in rates]}


VECTOR_FLAGS = ("avx512f", "avx512_bf16", "amx_bf16", "avx2", "fma")


def cpu_description(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name and the vector instructions the kernels depend on, e.g. ``AMD EPYC (avx512f,
    avx512_bf16, avx2, fma)``: the same "2-vCPU VM" ran TensorFlow's convolutions at less than half the speed on
    a host without AVX-512, so every speed report names them. Off Linux: ``platform.processor()``."""
    fields = cpu_fields(cpuinfo)
    if not fields:
        return platform.processor() or "unknown CPU"
    flags = set(fields.get("flags", "").split())
    present = [f for f in VECTOR_FLAGS if f in flags]
    return f"{fields.get('model name', 'unknown CPU')} ({', '.join(present) or 'no AVX'})"


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def epoch_timer():
    """A Keras callback recording each epoch's wall time (fit's set-up and teardown excluded)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._started)

    return EpochTimer()


def summarize(samples_per_s: list[float]) -> dict:
    return {"median": statistics.median(samples_per_s), "min": min(samples_per_s), "max": max(samples_per_s),
            "n": len(samples_per_s)}


def gflops(flops: float) -> float:
    return round(flops / 1e9, 2) if math.isfinite(flops) else float("nan")


# --- the GEMM-only limit of a training step ------------------------------------------------------


def vae_step_gemms(vae, batch: int, forward_only: bool = False) -> list[tuple[str, int, int, int]]:
    """The matrix products of one training step (or, ``forward_only``, one evaluation step) of ``vae``'s encoder
    and decoder at ``batch``: ``(what, m, k, n)`` for an ``(m, k) @ (k, n)`` product. Per layer of
    :func:`layer_gemm`, the forward ``(m, k) @ (k, n)`` (a Dense layer: ``x (B, in) @ W (in, out)``), the weight
    gradient ``(k, m) @ (m, n)`` and the input gradient ``(m, n) @ (n, k)``, none for the encoder's first layer:
    backpropagation stops at the images."""
    layers = [layer for layer in (*_layers_in_order(vae.encoder), *_layers_in_order(vae.decoder))
              if layer_gemm(layer, batch) is not None]
    out = []
    for i, layer in enumerate(layers):
        m, k, n = layer_gemm(layer, batch)
        out.append((f"{layer.name} forward", m, k, n))
        if not forward_only:
            out.append((f"{layer.name} weight grad", k, m, n))
            if i:  # the images need no gradient
                out.append((f"{layer.name} input grad", m, n, k))
    return out


def gemm_flops(gemms) -> int:
    """2 m k n summed over ``(what, m, k, n)`` products."""
    return sum(2 * m * k * n for _, m, k, n in gemms)


def gemm_step_seconds(gemms, seconds: float = 1.0, dtype=np.float32) -> list[float]:
    """Time the products of one step with numpy's BLAS (``np.matmul`` into preallocated outputs, operands
    laid out as the step has them: transposes are views, as BLAS takes them): seconds per step of each
    block of repeats filling about ``seconds``, after a warm-up."""
    rng = np.random.default_rng(0)
    ops = []
    for what, m, k, n in gemms:
        if "weight grad" in what:  # x^T: the transpose of a (B, in) activation, a view
            a = rng.random((k, m), dtype=dtype).T
        elif "input grad" in what:  # W^T: the transpose of the (in, out) kernel, a view
            a = rng.random((m, k), dtype=dtype)
        else:
            a = rng.random((m, k), dtype=dtype)
        b = rng.random((n, k), dtype=dtype).T if "input grad" in what else rng.random((k, n), dtype=dtype)
        ops.append((a, b, np.empty((m, n), dtype=dtype)))

    def step():
        for a, b, c in ops:
            np.matmul(a, b, out=c)

    for _ in range(5):
        step()
    started = time.perf_counter()
    step()
    once = max(time.perf_counter() - started, 1e-6)
    repeats = max(1, int(seconds / 5 / once))
    times = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeats):
            step()
        times.append((time.perf_counter() - started) / repeats)
    return times
