"""Command lines: params overrides for every entry, common options, and the error boundary.

:func:`run` is the only place a script turns a :class:`~vaelab.core.errors.UserError` into
``error: <message>`` on stderr and exit status 2 (``--debug`` shows the traceback instead).
Nothing here imports Keras, so ``--help`` and parameter errors answer at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import sys
import types
from typing import Callable

from vaelab.config import params as params_mod
from vaelab.config import paramsfile
from vaelab.core.errors import UserError
from vaelab.training.options import TrainOptions


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse whose errors look like every other error: one ``error:`` line, exit status 2, no usage dump."""

    def error(self, message):
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def parser(description: str, params_cls: type[params_mod.Params],
           params_module: types.ModuleType | str | None = None, extra_flags: bool = True) -> argparse.ArgumentParser:
    """A parser with an override for every params entry plus the options every script has.

    ``params_module`` may be given by name (``"mnist_params"``): it is then read here, inside :func:`run`'s
    error boundary, so a broken params file is a one-line error (:func:`vaelab.config.paramsfile.read_module`).
    ``extra_flags`` adds the entries' short aliases (``--k`` for ``--iwae-k``); evaluate.py has its own ``--k``.
    """
    p = OneLineErrorParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    params_module = paramsfile.as_module(params_module)
    defaults = paramsfile.module_entries(params_module) if params_module else {}
    group = p.add_argument_group("params (override the params module)")
    for f in dataclasses.fields(params_cls):
        kind = {"int": int, "float": float, "str": str, "bool": _parse_bool}[f.type if isinstance(f.type, str)
                                                                             else f.type.__name__]
        default = defaults.get(f.name, f.default)
        choices = f.metadata.get("choices")
        flags = (_flag(f.name), *(f.metadata.get("flags", ()) if extra_flags else ()))
        bare = {"nargs": "?", "const": True} if kind is _parse_bool else {}  # --conditional = --conditional true
        group.add_argument(*flags, dest=f.name, type=kind, default=None, metavar=f.name.upper(), **bare,
                           help=f"{f.metadata.get('help', '')} (default: {default}"
                                f"{'; one of ' + ', '.join(map(str, choices)) if choices else ''})".replace("%", "%%"))
    common = p.add_argument_group("files and runs")
    common.add_argument("--data-dir", type=_data_dir, help="directory with the dataset files (default: "
                                                           "$VAELAB_DATA_DIR, then ~/.keras/datasets, then download)")
    common.add_argument("--models-dir", default="models", help="where models are saved and read (default: models)")
    common.add_argument("--results-dir", default="results", help="where figures are saved (default: results)")
    common.add_argument("--limit", type=_positive_int, metavar="N",
                        help="use only the first N training and test examples (quick runs)")
    common.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return p


def add_generate_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    g = p.add_argument_group("generating")
    add_model_option(g, "ld_2_id_512_e_60")
    g.add_argument("--show", action="store_true", help="also open the figures in windows (needs a display)")
    g.add_argument("--no-prompt", action="store_true", help="skip the interactive latent-vector prompt")
    g.add_argument("--z", action="append", default=[], metavar="\"Z0,Z1,...\"",
                   help="decode this latent vector and save the image (repeatable)")
    g.add_argument("--class", dest="label", metavar="CLASS",
                   help="a conditional model (--conditional): draw this class, by name or number (default: one "
                        "row of the sample grid per class; the prompt takes '7: 0.5 -1')")
    add_explore_option(g)
    return p


def add_interpolation_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    g = p.add_argument_group("interpolating between two test images")
    g.add_argument("--interpolate", nargs=2, type=count(0), action="append", default=[], metavar=("I", "J"),
                   help="save the images decoded along the path between the codes of test images I and J "
                        "(repeatable)")
    g.add_argument("--steps", type=_positive_int, default=10, help="points along the path (default: 10)")
    g.add_argument("--slerp", action="store_true",
                   help="also the spherical path (along the great circle between the codes)")
    return p


EXPLORE_MODES = ("window", "web")


class _ExploreAction(argparse.Action):
    """``--explore [window|web]``: checked as it is parsed, so a missing display stops a window explorer before
    any loading; bare ``--explore`` is the window, as it always was."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs="?", const="window", default=False, metavar="window|web",
                         **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if values not in EXPLORE_MODES:
            parser.error(f"--explore takes window or web, got {values!r}")
        if values == "window":
            from vaelab.explore.explorer import require_display

            require_display()
        setattr(namespace, self.dest, values)


def add_model_option(group, example: str) -> None:
    group.add_argument("--model", metavar="PREFIX",
                       help=f"the model: a file prefix in --models-dir (e.g. {example}), a path to one of its files, "
                            "or a directory holding it (the model the params name there, else the only one); "
                            "default: the prefix the params give")


def add_explore_option(group) -> None:
    group.add_argument("--explore", action=_ExploreAction,
                       help="open the live explorer after the figures: click or drag on the latent scatter, move "
                            "one slider per latent dimension, and the decoded image follows (replaces the prompt). "
                            "window (the default): a window, needs a display; web: a page served on --host:--port "
                            "for a browser, e.g. over ssh -L (docs/explore.md)")
    add_web_options(group)


def add_web_options(group) -> None:
    """``--host`` and ``--port`` of the web explorer (:mod:`vaelab.explore.webexplorer`)."""
    from vaelab.explore.webexplorer import DEFAULT_HOST, DEFAULT_PORT

    group.add_argument("--host", default=DEFAULT_HOST,
                       help=f"the web explorer's address (default: {DEFAULT_HOST}, this machine only; 0.0.0.0 "
                            "opens it to the network)")
    group.add_argument("--port", type=_port, default=DEFAULT_PORT,
                       help=f"the web explorer's port (default: {DEFAULT_PORT}; 0: any free port)")


def add_train_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options only train scripts have: checkpoints (docs/robustness.md), devices and precision
    (docs/distributed.md, checked by :mod:`vaelab.training.distribute`)."""
    g = p.add_argument_group("model")
    g.add_argument("--summary", action="store_true",
                   help="print the encoder's and decoder's layers, output shapes and parameter counts for these "
                        "params, then exit without reading data or training (every training also writes them to "
                        "<prefix>_architecture.txt beside the model)")

    g = p.add_argument_group("checkpoints (see docs/robustness.md)")
    g.add_argument("--resume", action="store_true",
                   help="continue from the newest checkpoint of this model (same params; --learning-rate may change)")
    g.add_argument("--checkpoint-every", type=_positive_int, default=TrainOptions.checkpoint_every, metavar="N",
                   help="write a checkpoint every N epochs (default: 1); Ctrl-C/SIGTERM always writes one")

    g = p.add_argument_group("speed (see docs/mnist.md, Training speed)")
    g.add_argument("--no-jit", action="store_true",
                   help="turn the fast path off: no XLA compilation and one step per call, as before it was the "
                        "default (MNIST under TensorFlow; other experiments and backends have none)")

    g = p.add_argument_group("watching a run (see README, Watching a run)")
    g.add_argument("--no-tensorboard", action="store_true",
                   help="write no TensorBoard log (by default models/tensorboard/<prefix> gets the curves every "
                        "epoch and sample, reconstruction and manifold images every --tensorboard-images-every "
                        "epochs; view it with: tensorboard --logdir models/tensorboard)")

    from vaelab.training.distribute import MODES, PRECISIONS

    g = p.add_argument_group("devices and precision (see docs/distributed.md)")
    g.add_argument("--distribute", choices=MODES, default=TrainOptions.distribute,
                   help="none: one device; mirrored: every local GPU (or --devices); multiworker: the machines "
                        "listed in TF_CONFIG (TensorFlow backend). The global batch and the learning rate stay "
                        "the params' (default: none)")
    g.add_argument("--devices", metavar="LIST",
                   help="with --distribute mirrored: the devices to use, e.g. 0,1 or gpu:0,gpu:1 "
                        "(default: all local GPUs)")
    g.add_argument("--mixed-precision", choices=PRECISIONS, default=TrainOptions.mixed_precision,
                   help="compute in float16 or bfloat16 with float32 weights and a float32 loss; "
                        "on CPUs only bfloat16 on native bfloat16 instructions (AVX512_BF16, AMX), otherwise no "
                        "effect (default: off)")
    return p


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _data_dir(text: str) -> str:
    """``--data-dir`` must name a directory: checked as it is parsed, before any model, data or download."""
    from vaelab.data.datasets import check_data_dir

    check_data_dir(text)
    return text


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535, got {value}")
    return value


def count(minimum: int = 1, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number in ``minimum..maximum``, else one ``error:`` line at parse time. Every
    count or index flag of every script uses one (a test walks them all with values out of range)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be >= {minimum}" + (f" and <= {maximum}" if maximum is not None
                                                                        else "") + f", got {value}")
        return value

    parse.minimum, parse.maximum, parse.__name__ = minimum, maximum, "int"  # the name argparse's messages show
    return parse


def temperatures(text: str) -> list[float]:
    """An argparse type: comma-separated finite numbers >= 0 (temperatures of a hierarchical model's lower
    latents, e.g. ``0.6,0.8,1``), returned sorted without repeats; anything else is one ``error:`` line."""
    values = set()
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers >= 0, got {text!r}") from None
        if not (math.isfinite(value) and value >= 0):
            raise argparse.ArgumentTypeError(f"a temperature is a finite number >= 0, got {part}")
        values.add(value)
    return sorted(values)


temperatures.minimum, temperatures.maximum = 0.0, None


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


positive_float.minimum, positive_float.maximum = 0.0, None
_positive_int = count(1)


def params_from_args(params_cls, params_module, args: argparse.Namespace):
    """The params module's values with the command line's overrides, validated."""
    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(params_cls)}
    return params_mod.load(params_cls, params_module, overrides)


def glue_negative_vectors(argv: list[str], options=("--z",)) -> list[str]:
    """``--z -1.5,1`` -> ``--z=-1.5,1``: argparse would take ``-1.5,1`` for an option."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in options and i + 1 < len(argv) and re.match(r"-[\d.]", argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


# Options whose value is a place on this machine: a recorded command shows such a value as DIR.
PATH_OPTIONS = ("--data-dir", "--models-dir", "--results-dir", "--model", "--out")


def is_machine_path(text: str) -> bool:
    """Whether a path names a folder of this machine rather than one inside the project: absolute (``/…``,
    ``C:\\…``), in a home folder (``~…``, ``$HOME…``) or leaving the project (a ``..`` part)."""
    path = str(text).replace("\\", "/")
    return (path.startswith(("/", "~", "$")) or re.match(r"[A-Za-z]:/", path) is not None
            or ".." in path.split("/"))


def shareable_argv(argv, options=PATH_OPTIONS) -> list[str]:
    """``argv`` as it may be recorded in files others read: the value of every option in ``options`` that
    names a folder of this machine (:func:`is_machine_path`) becomes ``DIR``; relative paths such as
    ``models`` and model prefixes stay. Both ``--data-dir X`` and ``--data-dir=X`` are handled."""
    out, hide_next = [], False
    for word in map(str, argv):
        if hide_next:
            out.append("DIR" if is_machine_path(word) else word)
            hide_next = False
            continue
        option, equals, value = word.partition("=")
        if equals and option in options and is_machine_path(value):
            word = f"{option}=DIR"
        hide_next = word in options
        out.append(word)
    return out


def run(main: Callable[..., int | None], *main_args, argv: list[str] | None = None) -> None:
    """Run ``main(*main_args, argv)`` and exit: 0 on success, 2 with a one-line message on a user error,
    130 on Ctrl-C."""
    argv = glue_negative_vectors(sys.argv[1:] if argv is None else list(argv))
    debug = "--debug" in argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow's CPU tensors otherwise come from malloc, which maps every buffer over 32 MB afresh and
    # unmaps it when freed: the conv models' steps spent more CPU time in the kernel's page faults than in
    # the convolutions (docs/benchmarks.md). Its BFC allocator keeps and reuses one arena, as on GPUs.
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
    if not debug:
        from vaelab.core.startup import quiet_import

        quiet_import()  # TensorFlow's start-up lines out of the output; real errors still show
    try:
        code = main(*main_args, argv)
    except UserError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
