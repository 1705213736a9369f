"""Property-based: the CLI's number and size parsers take what they should and refuse the rest in one line."""

from __future__ import annotations

import math

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.cli.train import _input_size
from zoo.runtime.cli import floats

FINITE = st.floats(allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(values=st.lists(FINITE, min_size=1, max_size=4), space=st.booleans())
def test_floats_round_trip(values, space):
    text = (", " if space else ",").join(repr(float(v)) for v in values)
    assert floats(text, "--mean") == [float(v) for v in values]


@settings(max_examples=80, deadline=None, derandomize=True)
@given(text=st.text(alphabet="0123456789.,-+e_ naifINFty", max_size=12))
def test_floats_give_finite_numbers_or_a_usage_error(text):
    try:
        out = floats(text, "--mean")
    except click.BadParameter as exc:
        assert "--mean" in (exc.param_hint or "")
        return
    assert all(isinstance(v, float) and math.isfinite(v) for v in out)


@pytest.mark.parametrize("text", ["nan", "0.5,inf,0.5", "-Infinity"])
def test_non_finite_numbers_are_refused(text):
    with pytest.raises(click.BadParameter, match="finite"):
        floats(text, "--std")


@settings(max_examples=50, deadline=None, derandomize=True)
@given(c=st.integers(1, 4), h=st.integers(1, 4096), w=st.integers(1, 4096), sep=st.sampled_from(["x", "X", ","]))
def test_input_size_round_trips(c, h, w, sep):
    assert _input_size(f"{c}{sep}{h}{sep}{w}") == (c, h, w)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(text=st.text(alphabet="0123456789x,-+ .e", max_size=12))
def test_input_size_gives_three_positive_ints_or_a_usage_error(text):
    try:
        size = _input_size(text)
    except click.BadParameter as exc:
        assert exc.param_hint == "--input-size"
        return
    assert len(size) == 3 and all(isinstance(v, int) and v >= 1 for v in size)
