"""Property-based tests of the latent-vector parser: any text gives a valid vector or a message, never a crash."""

import math

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vaelab.explore import prompts

dims = st.integers(min_value=1, max_value=8)
FLOAT32_MAX = float(np.finfo(np.float32).max)


@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=60), dim=dims)
@example(text="1e39, 0", dim=2)
@example(text="-3.5e38 1", dim=2)
@example(text="[[1, 2]]", dim=2)
@example(text="1_000, 2", dim=2)
@example(text="\x00", dim=1)
def test_any_text_parses_or_gives_a_message(text, dim):
    try:
        z = prompts.parse_latent(text, dim)
    except prompts.ParseError as e:
        message = str(e)
        assert message and "\n" not in message and len(message) < 200
        return
    assert isinstance(z, np.ndarray) and z.dtype == np.float32 and z.shape == (dim,)
    assert np.isfinite(z).all()


numbers = st.floats(min_value=-FLOAT32_MAX, max_value=FLOAT32_MAX, allow_nan=False, width=32)
separators = st.sampled_from([",", ", ", " ", ";", " ,\t", "  "])


@settings(max_examples=300, deadline=None)
@given(values=st.lists(numbers, min_size=1, max_size=8), sep=separators,
       brackets=st.sampled_from(["{}", "[{}]", "({})", " {} "]))
def test_formatted_vectors_round_trip(values, sep, brackets):
    text = brackets.format(sep.join(repr(v) for v in values))
    z = prompts.parse_latent(text, len(values))
    np.testing.assert_array_equal(z, np.asarray(values, dtype=np.float32))


@settings(max_examples=200, deadline=None)
@given(values=st.lists(numbers, min_size=1, max_size=8), extra=st.integers(min_value=1, max_value=3))
def test_wrong_count_names_both_counts(values, extra):
    text = ",".join(map(repr, values))
    dim = len(values) + extra
    try:
        prompts.parse_latent(text, dim)
    except prompts.ParseError as e:
        assert str(e) == f"expected {dim} numbers, got {len(values)}"
    else:
        raise AssertionError("a vector of the wrong length was accepted")


@settings(max_examples=100, deadline=None)
@given(big=st.floats(min_value=3.5e38, max_value=1e308), dim=dims)
def test_numbers_beyond_float32_are_refused(big, dim):
    text = ",".join([repr(big)] + ["0"] * (dim - 1))
    try:
        prompts.parse_latent(text, dim)
    except prompts.ParseError as e:
        assert "out of range" in str(e)
    else:
        raise AssertionError(f"{big} parsed to a non-finite float32")
    assert math.isfinite(big)
