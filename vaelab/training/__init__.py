"""Training: the loop every model uses, its callbacks, checkpoints and devices.

- ``options``: :class:`~vaelab.training.options.TrainOptions`, how a run trains (resume, devices, …).
- ``loop``: compile, input pipeline, fit, the exits on NaN or a signal.
- ``callbacks``: logs, the NaN guard, learning-rate schedules, early stopping.
- ``tensorboard``: TensorBoard's event files on every backend (no TensorFlow needed), the run's log.
- ``checkpoints``: the checkpoint store, exact resume.
- ``skipping``: the optimizer that skips updates with outsized gradients (``grad_skip``), and its log.
- ``distribute``: several devices or machines, mixed precision.

May import: ``vaelab.core``, ``vaelab.data``, ``vaelab.models``, ``vaelab.config``.
"""
