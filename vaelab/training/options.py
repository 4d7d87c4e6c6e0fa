"""How a run trains, beside what it trains (the params): resume, checkpoints, devices, precision, the fast path.

:class:`TrainOptions` holds these choices for :func:`vaelab.api.train.train`; the train scripts' flags
(``--resume``, ``--checkpoint-every``, ``--no-jit``, ``--no-tensorboard``, ``--distribute``, ``--devices``,
``--mixed-precision``)
take their defaults from it. They are not saved in ``…_params.json``: they do not change the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from vaelab.core.errors import UserError


@dataclass
class TrainOptions:
    resume: bool = False  # continue from the newest checkpoint of this model
    checkpoint_every: int = 1  # epochs between checkpoints
    no_jit: bool = False  # no XLA compilation and one step per call (the fast path off)
    no_tensorboard: bool = False  # write no TensorBoard log (vaelab.training.tensorboard)
    distribute: str = "none"  # none | mirrored | multiworker (vaelab.training.distribute)
    devices: str | None = None  # with mirrored: e.g. "0,1"
    mixed_precision: str = "off"  # off | float16 | bfloat16
    deterministic: bool = False  # a seed was given: make the kernels deterministic too

    def __post_init__(self):
        if int(self.checkpoint_every) < 1:
            raise UserError(f"checkpoint_every must be >= 1, got {self.checkpoint_every}")

    @classmethod
    def from_args(cls, args) -> "TrainOptions":
        """The options of a parsed train command line (``--seed`` given makes the run deterministic)."""
        names = [f for f in cls.__dataclass_fields__ if f != "deterministic"]
        return cls(**{n: getattr(args, n) for n in names}, deterministic=getattr(args, "seed", None) is not None)
