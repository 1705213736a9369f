"""Test-time augmentation (zoo.runtime.tta): views, averaging, and a flip-invariant model unchanged by it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.runtime.errors import RuntimeInputError
from zoo.runtime.model import softmax
from zoo.runtime.tta import average_probabilities, parse_tta, resize_bilinear, views


def pooled_linear(weights):
    """A flip-invariant classifier: global average pooling, then a linear layer."""
    return lambda batch: softmax(batch.mean(axis=(2, 3)) @ weights)


def striped_linear(weights):
    """Not flip-invariant: it weighs the left half of the image only."""
    return lambda batch: softmax(batch[..., : batch.shape[-1] // 2].mean(axis=(2, 3)) @ weights)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 3), h=st.integers(2, 9), w=st.integers(2, 9))
def test_flip_tta_of_a_flip_invariant_model_equals_no_tta(seed, n, h, w):
    rng = np.random.default_rng(seed)
    batch = rng.normal(size=(n, 3, h, w)).astype(np.float32)
    model = pooled_linear(rng.normal(size=(3, 4)))
    np.testing.assert_allclose(average_probabilities(model, batch, ("flip",)), model(batch), rtol=1e-5, atol=1e-7)


def test_tta_averages_the_probabilities_of_the_views():
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)
    model = striped_linear(rng.normal(size=(3, 2)))
    flipped = batch[..., ::-1]
    expected = (model(batch) + model(flipped)) / 2
    got = average_probabilities(model, batch, ("flip",))
    np.testing.assert_allclose(got, expected)
    assert not np.allclose(got, model(batch))  # the flip changes what this model says
    np.testing.assert_allclose(got.sum(axis=1), 1.0)
    assert len(views(batch, parse_tta("flip,crops"))) == 10 and len(views(batch, ("crops",))) == 5
    assert all(v.shape == batch.shape and v.dtype == batch.dtype for v in views(batch, ("flip", "crops")))


def test_resize_keeps_a_constant_image_and_the_identity():
    image = np.full((1, 2, 5, 7), 3.0, dtype=np.float32)
    np.testing.assert_allclose(resize_bilinear(image, 9, 4), 3.0)
    ramp = np.arange(20, dtype=np.float32).reshape(1, 1, 4, 5)
    np.testing.assert_allclose(resize_bilinear(ramp, 4, 5), ramp)


@pytest.mark.parametrize("spec, modes", [(None, ()), ("", ()), ("none", ()), ("flip", ("flip",)),
                                          ("crops,flip", ("flip", "crops")), (["flip", "crops"], ("flip", "crops"))])
def test_parse_tta(spec, modes):
    assert parse_tta(spec) == modes


def test_unknown_tta_is_one_clear_message():
    with pytest.raises(RuntimeInputError, match="choose flip, crops or flip,crops"):
        parse_tta("flip,rotate")
