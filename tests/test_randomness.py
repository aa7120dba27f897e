"""Inlined draws give numba's Generator's numbers, call for call, and leave the same state."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from numba import njit

from xinyong import randomness

UNIFORM, EXPONENTIAL, GEOMETRIC, INTEGERS = range(4)
# Both of NumPy's geometric methods and their switch; integer ranges of each branch below
# 2**32: no draw, Lemire's rejection on a 32-bit draw (with the buffered half), a whole 32-bit
# draw. Larger ranges are compared with NumPy below.
PROBABILITIES = [1e-6, 0.01, 0.2, 0.333333333333333333333333, 0.34, 0.9, 1.0]
HIGHS = [1, 2, 3, 7, 1000, 2**31 + 5, 2**32 - 1, 2**32]


@njit
def draws_by_generator(rng, ops, p, high, out):
    for k in range(ops.shape[0]):
        if ops[k] == UNIFORM:
            out[k] = rng.random()
        elif ops[k] == EXPONENTIAL:
            out[k] = rng.standard_exponential()
        elif ops[k] == GEOMETRIC:
            out[k] = rng.geometric(p[k])
        else:
            out[k] = rng.integers(0, high[k])


@njit
def draws_inlined(words, ops, p, high, out):
    s = randomness.load(words)
    for k in range(ops.shape[0]):
        if ops[k] == UNIFORM:
            x, s = randomness.uniform(s)
        elif ops[k] == EXPONENTIAL:
            x, s = randomness.standard_exponential(s)
        elif ops[k] == GEOMETRIC:
            y, s = randomness.geometric(s, p[k])
            x = float(y)
        else:
            z, s = randomness.integers(s, high[k])
            x = float(z)
        out[k] = x
    randomness.store(words, s)


def mixed_calls(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pick = np.random.default_rng(0)
    ops = pick.integers(0, 4, n)
    p = pick.choice(PROBABILITIES, n)
    high = pick.choice(np.array(HIGHS, dtype=np.int64), n)
    return ops, p, high


def test_inlined_draws_are_the_generators_call_for_call() -> None:
    ops, p, high = mixed_calls(400_000)
    by_generator, inlined = np.empty(ops.size), np.empty(ops.size)
    rng_a, rng_b = np.random.default_rng(123), np.random.default_rng(123)
    draws_by_generator(rng_a, ops, p, high, by_generator)
    randomness.drawing(rng_b, draws_inlined, ops, p, high, inlined)
    assert np.array_equal(by_generator, inlined)
    # The ziggurat's tail was drawn too.
    assert (by_generator[ops == EXPONENTIAL] > 7.69).any()
    assert rng_a.bit_generator.state == rng_b.bit_generator.state
    # The streams go on alike, through NumPy's own methods too.
    assert np.array_equal(rng_a.integers(0, 5, 9), rng_b.integers(0, 5, 9))
    assert np.array_equal(rng_a.random(9), rng_b.random(9))


def test_an_odd_number_of_32_bit_draws_leaves_the_half_buffered() -> None:
    rng = np.random.default_rng(8)
    ops = np.full(3, INTEGERS)
    out = np.empty(3)
    randomness.drawing(rng, draws_inlined, ops, np.zeros(3), np.full(3, 10), out)
    state = rng.bit_generator.state
    assert state["has_uint32"] == 1
    expected = np.random.default_rng(8)
    assert np.array_equal(out, expected.integers(0, 10, 3))
    assert state == expected.bit_generator.state


@njit
def integers_inlined(words, high, out):
    s = randomness.load(words)
    for k in range(out.shape[0]):
        out[k], s = randomness.integers(s, high)
    randomness.store(words, s)


@pytest.mark.parametrize("high", [2**32 + 1, 2**40 + 3, 2**62 + 11, 2**63 - 1])
def test_ranges_past_32_bits_are_numpys(high: int) -> None:
    """NumPy's 64-bit Lemire rejection (2**62 + 11 rejects a quarter of the draws)."""
    out = np.empty(20_000, dtype=np.int64)
    rng = np.random.default_rng(4)
    randomness.drawing(rng, integers_inlined, high, out)
    expected = np.random.default_rng(4)
    assert np.array_equal(out, expected.integers(0, high, out.size))
    assert rng.bit_generator.state == expected.bit_generator.state


def test_only_pcg64_streams_are_inlined() -> None:
    with pytest.raises(TypeError, match="PCG64"):
        randomness.words_of(np.random.Generator(np.random.SFC64(1)))


@pytest.mark.parametrize("buffered", [False, True])
def test_state_read_in_numpys_memory_is_its_state_property(buffered: bool) -> None:
    # words_of and restore read and write the stream's memory where its layout is the one
    # this machine's NumPy was checked to have; the `state` property is the reference.
    if sys.platform == "linux" and sys.byteorder == "little" and sys.maxsize > 2**32:
        assert randomness._raw_state_readable()
    rng = np.random.default_rng(11)
    rng.random(5)
    if buffered:
        rng.integers(0, 7)  # half of a 64-bit draw kept for the next 32-bit one
    words = randomness.words_of(rng)
    assert words.tolist() == randomness._state_words(rng.bit_generator.state).tolist()
    assert words[4] == int(buffered)
    other = np.random.default_rng(12)
    randomness.restore(other, words)
    assert other.bit_generator.state == rng.bit_generator.state
    assert other.integers(0, 7, size=9).tolist() == rng.integers(0, 7, size=9).tolist()
