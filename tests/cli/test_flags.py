"""Every number flag of every top-level script, given a value out of its range (or not a number): exit status 2
and one ``error:`` line, no traceback, before any model or data loads.

The scripts run in this process (``runpy``) and stop at their first check, so the walk costs milliseconds a
flag. Each script's parser is found by running it once with ``ArgumentParser.parse_args`` replaced.
"""

from __future__ import annotations

import argparse
import dataclasses
import math

import pytest
from conftest import ROOT, run_script

from vaelab.cli import options as cli

SCRIPTS = sorted([p.name for p in ROOT.glob("*.py") if not p.name.endswith("_params.py")]
                 + ["dataset/fetch.py", "dataset/caltech101_preprocess.py"])
NUMBER_TYPES = (int, float)


class _Parser(Exception):
    def __init__(self, parser):
        super().__init__("parser found")
        self.parser = parser


def _parser(script, monkeypatch) -> argparse.ArgumentParser | None:
    def found(self, args=None, namespace=None):
        raise _Parser(self)

    with monkeypatch.context() as m:
        m.setattr(argparse.ArgumentParser, "parse_args", found)
        try:
            run_script(script)
        except _Parser as e:
            return e.parser
    return None


def _bad_values(action, field) -> list[str]:
    """Values the flag must refuse: below its minimum, above its maximum, not finite, not a number."""
    bad = ["x1"]
    if field is not None:
        lo, hi, is_int = field.metadata.get("min"), field.metadata.get("max"), field.type in ("int", int)
    else:
        lo, hi = getattr(action.type, "minimum", None), getattr(action.type, "maximum", None)
        is_int = action.type is not cli.positive_float
    if lo is not None:
        bad.append(str(lo - 1 if is_int else (lo - 1 if lo <= 0 else 0)))
    if hi is not None:
        bad.append(str(hi + 1 if is_int else hi * 2))
    if not is_int:
        bad += ["nan", "inf"]
    return bad


def _cases():
    """(script, flag, bad value, extra argv) for every number flag; collected once, at import."""
    import _pytest.monkeypatch

    mp = _pytest.monkeypatch.MonkeyPatch()
    cases, unbounded = [], []
    try:
        for script in SCRIPTS:
            parser = _PARSERS[script] = _parser(script, mp)
            if parser is None:
                continue
            fields = _fields_for(script, parser)
            for action in parser._actions:
                if not action.option_strings or action.choices is not None:
                    continue
                field = fields.get(action.dest)
                numeric = action.type in NUMBER_TYPES or hasattr(action.type, "minimum")
                if not numeric:
                    continue
                if field is None and action.type in NUMBER_TYPES:
                    unbounded.append(f"{script} {action.option_strings[0]}")
                    continue
                extra = ["0"] * ((action.nargs or 1) - 1) if isinstance(action.nargs, int) else []
                for value in _bad_values(action, field):
                    cases.append((script, action.option_strings[0], value, extra))
    finally:
        mp.undo()
    return cases, unbounded


def _fields_for(script, parser) -> dict[str, dataclasses.Field]:
    """The entries of the params class the script has flags for, by dest (the largest class whose every entry
    is a flag; empty for scripts without params)."""
    from vaelab.config import experiments

    dests = {a.dest for a in parser._actions}
    found = [{f.name: f for f in dataclasses.fields(exp.params_cls)} for exp in experiments.DATASETS.values()]
    found = [fields for fields in found if set(fields) <= dests]
    return max(found, key=len) if found else {}


_PARSERS: dict = {}
CASES, UNBOUNDED = _cases()


def test_every_number_flag_of_every_script_has_a_range():
    assert len({c[0] for c in CASES}) >= 12  # the walk found the scripts' parsers
    assert UNBOUNDED == [], "number flags without a range (use cli.count / cli.positive_float)"


@pytest.mark.parametrize("script, flag, value, extra", CASES, ids=[f"{c[0]} {c[1]} {c[2]}" for c in CASES])
def test_a_number_flag_out_of_range_is_one_error_line(script, flag, value, extra, capsys, tmp_path):
    given = [flag, value, *extra] if extra else [f"{flag}={value}"]  # --interpolate I J: two words
    code = run_script(script, "--models-dir", tmp_path / "m", "--results-dir", tmp_path / "r", *given)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert value in lines[0] or (value in ("nan", "inf") and ("finite" in lines[0] or "> 0" in lines[0])), lines[0]
    assert not (tmp_path / "m").exists() and not (tmp_path / "r").exists()  # refused before writing anything


def test_count_and_positive_float_types():
    three = cli.count(1, 3)
    assert [three(t) for t in ("1", "3")] == [1, 3]
    for text, message in [("0", "must be >= 1 and <= 3, got 0"), ("4", "must be >= 1 and <= 3, got 4"),
                          ("2.5", "expected a whole number, got '2.5'")]:
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            three(text)
    assert cli.positive_float("0.5") == 0.5 and math.isclose(cli.positive_float("1e-3"), 1e-3)
    for text in ("0", "-1", "nan", "inf", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.positive_float(text)


def _choice_cases():
    cases = []
    for script in SCRIPTS:
        parser = _PARSERS.get(script)
        for action in parser._actions if parser else []:
            if action.option_strings and action.choices is not None:
                cases.append((script, action.option_strings[0], "64" if action.type is int else "nope"))
    return cases


@pytest.mark.parametrize("script, flag, value", _choice_cases())
def test_a_choice_flag_given_another_value_is_one_error_line(script, flag, value, capsys, tmp_path):
    code = run_script(script, "--models-dir", tmp_path / "m", "--results-dir", tmp_path / "r", flag, value)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: argument {flag}: invalid choice: "), err


def test_a_mistyped_option_is_one_error_line(capsys):
    for script in SCRIPTS:
        code = run_script(script, "--epochz", "3")
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: unrecognized arguments: --epochz 3"), (script, err)
        assert len(err.strip().splitlines()) == 1, (script, err)


@pytest.mark.parametrize("given", ["11", "10", "-1", "1.5"])
def test_a_fashion_class_index_out_of_range_is_one_line(given):
    from vaelab.cli.morph import class_index
    from vaelab.core.errors import UserError
    from vaelab.data.datasets import FASHION_CLASSES

    assert class_index("9", FASHION_CLASSES) == 9 and class_index("0", FASHION_CLASSES) == 0
    with pytest.raises(UserError) as e:
        class_index(given, FASHION_CLASSES)
    assert str(e.value) == (f"unknown class {given!r}; valid names: t-shirt-top, trouser, pullover, dress, coat, "
                            "sandal, shirt, sneaker, bag, ankle-boot (or an index 0-9)")


FAULTS_SCRIPT = r"""
import resource
from vaelab.cli import options as cli

def main(argv):
    import tensorflow as tf
    tf.reduce_sum(tf.random.uniform((4096, 4096)))  # start-up allocations out of the count
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):  # 64 MB tensors made and freed, as a conv model's step makes its activations
        tf.reduce_sum(tf.random.uniform((4096, 4096)) * 2.0)
    print("faults", resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return 0

cli.run(main, argv=[])
"""


def _page_faults(env_value):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
    if env_value is not None:
        env["TF_CPU_ALLOCATOR_USE_BFC"] = env_value
    env.update(KERAS_BACKEND="tensorflow", PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split("faults")[-1])


def test_scripts_give_tensorflow_its_reusing_cpu_allocator_unless_the_user_chose():
    """Every script runs TensorFlow with its BFC allocator on the CPU (reused memory: a few page faults), where
    malloc maps and unmaps each large tensor (a page fault per 4 KB touched); TF_CPU_ALLOCATOR_USE_BFC=false
    given by the user still wins."""
    ours, plain = _page_faults(None), _page_faults("false")
    assert plain > 20 * 64 * 2**20 / 4096 / 2  # at least half of the 20 tensors' pages faulted in afresh
    assert ours * 5 < plain
