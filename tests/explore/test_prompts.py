"""The latent prompt: parsing never evaluates, bad input re-asks, q / EOF / Ctrl-C end cleanly."""

import numpy as np
import pytest

from vaelab.explore import prompts


@pytest.mark.parametrize("text, expected", [
    ("0.5,-1", [0.5, -1.0]), ("0.5 -1", [0.5, -1.0]), (" [1e-3; 2] ", [0.001, 2.0]), ("(3, 4)", [3.0, 4.0]),
])
def test_parse_accepts_common_forms(text, expected):
    np.testing.assert_allclose(prompts.parse_latent(text, 2), expected)


@pytest.mark.parametrize("text, message", [
    ("", "type 2 numbers"), ("1", "expected 2 numbers, got 1"), ("1,2,3", "expected 2 numbers, got 3"),
    ("1,abc", "'abc' is not a number"), ("nan, 1", "'nan' is not a finite number"),
    ("inf 1", "'inf' is not a finite number"), ("__import__('os').system('x'), 1", "is not a number"),
])
def test_parse_rejects_with_a_message(text, message):
    with pytest.raises(prompts.ParseError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prompts.parse_latent(text, 2)


def _drive(lines, dim=2):
    feed, seen, out = iter(lines), [], []

    def fake_input(_prompt):
        item = next(feed)
        if isinstance(item, BaseException):
            raise item
        return item

    code = prompts.latent_prompt(dim, seen.append, input_fn=fake_input, print_fn=out.append)
    return code, seen, out


def test_prompt_decodes_good_input_and_reasks_after_bad():
    code, seen, out = _drive(["1", "x,y", "nan,0", "0.5,-1", "q"])
    assert code == 0
    assert len(seen) == 1 and np.allclose(seen[0], [0.5, -1])
    assert "  expected 2 numbers, got 1" in out and "  'x' is not a number" in out


@pytest.mark.parametrize("end", [EOFError(), KeyboardInterrupt()])
def test_prompt_ends_cleanly_on_eof_and_ctrl_c(end):
    code, seen, _ = _drive(["1,2", end])
    assert code == 0 and len(seen) == 1


def test_negative_vectors_on_the_command_line_are_values_not_options():
    from vaelab.cli.options import glue_negative_vectors

    assert glue_negative_vectors(["--z", "-1.5,1", "--z", "0,0", "--z", "-.5 2", "--n", "-3", "--z", "--show"]) == [
        "--z=-1.5,1", "--z", "0,0", "--z=-.5 2", "--n", "-3", "--z", "--show"]


def test_a_class_may_come_before_the_vector():
    from vaelab.explore.prompts import parse_class_and_latent

    def classes(text):
        if text not in ("7", "sandal"):
            raise ValueError(f"unknown class {text!r}; valid names: 7, sandal")
        return 7 if text == "7" else 5

    label, z = parse_class_and_latent("7: 0.5 -1", 2, classes)
    assert label == 7 and z.tolist() == [0.5, -1.0]
    assert parse_class_and_latent("0.5, -1", 2, classes)[0] is None
    with pytest.raises(prompts.ParseError, match="unknown class .cat."):
        parse_class_and_latent("cat: 1 2", 2, classes)
    with pytest.raises(prompts.ParseError, match="expected 2 numbers, got 1"):
        parse_class_and_latent("sandal: 1", 2, classes)


def test_the_conditional_prompt_keeps_the_last_class():
    from vaelab.explore.prompts import latent_prompt

    typed = iter(["0 0", "3: 1 1", "2 2", "x: 1 1", "q"])
    got, printed = [], []
    latent_prompt(2, lambda z, label: got.append((label, z.tolist())), input_fn=lambda prompt: (
        printed.append(prompt), next(typed))[1], print_fn=printed.append, classes=lambda t: int(t) if t.isdigit()
        else (_ for _ in ()).throw(ValueError(f"unknown class {t!r}")), class_names=tuple("0123456789"), label=1)
    assert got == [(1, [0.0, 0.0]), (3, [1.0, 1.0]), (3, [2.0, 2.0])]
    assert "z (2 numbers, class 1)> " in printed and "z (2 numbers, class 3)> " in printed
    assert "  unknown class 'x'" in printed
