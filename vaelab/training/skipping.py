"""Skipping the updates whose gradient is far larger than usual (VDVAE's guard against KL spikes).

A hierarchical VAE's KL term can spike by orders of magnitude in one batch (docs/quality.md: the 10-mixture
CIFAR-10 pilot's training KL jumped to ~360,000 nats in epoch 3 and the run never recovered). VDVAE skips every
update whose gradient norm exceeds a fixed threshold. A fixed threshold depends on the loss's scale (nats per
image here, per dimension there), so ``grad_skip`` is relative: an update is skipped when its global gradient
norm is more than ``grad_skip`` times the running mean of the norms of the updates taken, or is not finite.
The first :data:`BURN_IN` updates are always taken (the norms of a fresh network fall fast).

A skipped step leaves everything as it was: the weights, the optimizer's moments, its step count (so a
schedule does not advance) and its weight averages. The optimizer computes the update anyway and the old values
are selected back (``where``), which is what works inside one compiled step on TensorFlow, JAX and PyTorch
alike (Keras' own gradient accumulation does the same on JAX). The statistics are optimizer variables, so they
are checkpointed and an exact resume stays exact.
"""

from __future__ import annotations

BURN_IN = 50  # updates always taken before the running mean is trusted
DECAY = 0.99  # of the running mean of the accepted updates' gradient norms


def skipping(optimizer_class, factor: float):
    """A subclass of the Keras optimizer class ``optimizer_class`` that skips the updates whose gradient norm
    exceeds ``factor`` times the running mean (see the module's docstring)."""
    import keras
    from keras import ops

    class Skipping(optimizer_class):
        skip_factor = float(factor)

        def build(self, variables):
            super().build(variables)
            # Names are unique per optimizer, so the checkpoint's list of optimizer variables stays ordered.
            self.grad_norm_mean = self.add_variable((), initializer="zeros", name="grad_norm_mean")
            self.grad_updates = self.add_variable((), initializer="zeros", name="grad_updates_taken")
            self.grad_skipped = self.add_variable((), initializer="zeros", name="grad_updates_skipped")
            self.grad_norm_last = self.add_variable((), initializer="zeros", name="grad_norm_last")

        def apply(self, grads, trainable_variables=None):
            grads = list(grads)
            if not self.built:  # as Keras' own apply does
                with keras.name_scope(self.name, caller=self):
                    self.build(trainable_variables)
                self.built = True
            variables = list(trainable_variables if trainable_variables is not None else self._trainable_variables)
            norm = ops.sqrt(sum(ops.sum(ops.square(ops.cast(g, "float32"))) for g in grads if g is not None))
            taken, mean = self.grad_updates.value, self.grad_norm_mean.value
            accept = ops.logical_and(ops.isfinite(norm),
                                     ops.logical_or(taken < BURN_IN, norm <= self.skip_factor * mean))
            stats = {id(v) for v in (self.grad_norm_mean, self.grad_updates, self.grad_skipped, self.grad_norm_last)}
            kept = [v for v in (*variables, *self.variables) if id(v) not in stats]
            before = [ops.copy(v.value) for v in kept]  # PyTorch's optimizers update in place: copy, not alias
            # A non-finite gradient would still be computed with: give the optimizer zeros, then select back.
            safe = [None if g is None else ops.where(accept, g, ops.zeros_like(g)) for g in grads]
            super().apply(safe, trainable_variables)
            for v, old in zip(kept, before):
                v.assign(ops.where(accept, v.value, old))
            # The running mean: the plain mean of the first 1 / (1 - DECAY) = 100 norms taken, then exponential.
            weight = ops.maximum(1.0 / (taken + 1.0), 1.0 - DECAY)
            self.grad_norm_mean.assign(ops.where(accept, mean + weight * (norm - mean), mean))
            self.grad_updates.assign(taken + ops.cast(accept, "float32"))
            self.grad_skipped.assign(self.grad_skipped.value + 1.0 - ops.cast(accept, "float32"))
            self.grad_norm_last.assign(ops.where(ops.isfinite(norm), norm, -1.0))

        def get_config(self):
            return {**super().get_config(), "skip_factor": self.skip_factor}

        @classmethod
        def from_config(cls, config, custom_objects=None):
            config = dict(config)
            config.pop("skip_factor", None)
            return super().from_config(config, custom_objects=custom_objects)

    Skipping.__name__ = Skipping.__qualname__ = f"Skipping{optimizer_class.__name__}"
    return Skipping


def make_skip_report():
    """A callback adding the epoch's skipped updates (``skipped_updates``) and the running mean gradient norm
    (``grad_norm``) to the logs, and so to the history, the CSV log and TensorBoard."""
    import keras

    class SkipReport(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._skipped = float(keras.ops.convert_to_numpy(self.model.optimizer.grad_skipped.value))

        def on_epoch_end(self, epoch, logs=None):
            if logs is None:
                return
            opt = self.model.optimizer
            skipped = float(keras.ops.convert_to_numpy(opt.grad_skipped.value))
            logs["skipped_updates"] = skipped - getattr(self, "_skipped", 0.0)
            logs["grad_norm"] = float(keras.ops.convert_to_numpy(opt.grad_norm_mean.value))

    return SkipReport()
