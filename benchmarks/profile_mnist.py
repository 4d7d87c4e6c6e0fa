#!/usr/bin/env python3
"""Where ours' MNIST epoch goes, in CPU seconds (a busy shared machine disturbs them less than wall seconds).

    python benchmarks/profile_mnist.py [ROUNDS] --data-dir DIR

The default dense model on JAX compiled as ``mnist_train.py`` compiles it (the fast path: steps per call), then,
alternated over ROUNDS after a warm-up: one training epoch through ``Model.fit`` on the seeded epoch batches
(no callbacks, no validation), the validation pass on the 10,000 test images at the training batch and at
2,000, and one checkpoint (snapshot and atomic write). Prints each part's median CPU and wall seconds.
"""
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from vaelab.config.experiments import lookup
from vaelab.core import artifacts
from vaelab.data import batches
from vaelab.models.vae import build_vae
from vaelab.training import checkpoints, loop

exp = lookup("mnist"); params = exp.params_cls()
vae = build_vae(params, exp.image_shape)
from vaelab.data import datasets

data_dir = sys.argv[sys.argv.index("--data-dir") + 1] if "--data-dir" in sys.argv else None
ds = datasets.load_mnist(data_dir, None, download=False)
xtr, xte = ds.x_train.reshape(len(ds.x_train), -1), ds.x_test.reshape(len(ds.x_test), -1)
steps = len(batches.batch_bounds(len(xtr), params.batch_size))
vae.compile(optimizer=loop.make_optimizer(params.optimizer, params.learning_rate), **loop.compile_options(True, steps))
vae.optimizer.build(vae.trainable_variables)
src = batches.make_epoch_batches(xtr, params.batch_size, 0, 0)
store = checkpoints.CheckpointStore(artifacts.ModelFiles(tempfile.mkdtemp(), "p"))

def train():
    vae.fit(src, steps_per_epoch=src.steps, epochs=1, shuffle=False, verbose=0)
def validate():
    vae.evaluate(xte, batch_size=params.batch_size, verbose=0)
def validate_big():
    vae.evaluate(xte, batch_size=2000, verbose=0)
def ckpt():
    store.write(checkpoints.snapshot(vae, 1, {"loss": [1.0]}), params)
parts = {"train epoch (fit, 235 steps)": train, "validation (10k, batch 256)": validate,
         "validation (10k, batch 2000)": validate_big, "checkpoint snapshot+write": ckpt}
for f in parts.values(): f()
res = {k: [] for k in parts}; wall = {k: [] for k in parts}
for r in range(int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 3):
    for k, f in (list(parts.items()) if r % 2 == 0 else list(parts.items())[::-1]):
        c, w = time.process_time(), time.perf_counter(); f()
        res[k].append(time.process_time() - c); wall[k].append(time.perf_counter() - w)
print(f"load {os.getloadavg()[0]:.2f}")
for k in parts:
    print(f"{k}: CPU {statistics.median(res[k]):.3f} s (min {min(res[k]):.3f}), wall {statistics.median(wall[k]):.3f} s")
