"""Random draws inlined into compiled kernels: NumPy's PCG64 streams, number for number.

numba's `Generator` reaches PCG64 through a function pointer, with the state in memory, so each
draw is a call that waits on the store of the draw before (2.1 ns). The kernels that draw
millions of numbers a day (behaviour sampling, observation) take their stream's state as
words instead (`words_of`), keep it in registers as a tuple threaded through the draws
(`u, s = uniform(s)`), and hand it back at the end (`restore`). The draws are the ones numba's
`Generator` gives for the same calls, number for number (tested), so no result depends on which
way a kernel draws.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from llvmlite import ir
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from xinyong.ziggurat import fe_double, ke_double, we_double, ziggurat_exp_r

# PCG64 (XSL-RR 128/64) as NumPy implements it: state = state * MULTIPLIER + inc (mod 2^128),
# then the output is (high ^ low) rotated right by the state's top six bits.
MULTIPLIER = (2549297995355413924 << 64) | 4865540595714422341
WORD = (1 << 64) - 1
# The words of a stream: state high and low, increment high and low, and NumPy's buffer of
# one 32-bit half (has_uint32, uinteger), which `integers` below 2**32 draws from.
N_WORDS = 6
TWO_TO_MINUS_53 = 1.0 / 9007199254740992.0
ONE_THIRD = 0.333333333333333333333333  # NumPy's switch between its two geometric methods


def words_of(rng: np.random.Generator) -> np.ndarray:
    """The state of a PCG64 stream as uint64 words for `load`."""
    address = _raw_address(rng)
    if address is not None:
        words = np.empty(N_WORDS, dtype=np.uint64)
        _read_raw(address, words)
        return words
    return _state_words(rng.bit_generator.state)


def _state_words(state: dict[str, Any]) -> np.ndarray:
    """A PCG64 `state` property's value as words."""
    if state["bit_generator"] != "PCG64":
        raise TypeError(f"inlined draws need a PCG64 stream, not {state['bit_generator']}")
    s, inc = state["state"]["state"], state["state"]["inc"]
    return np.array(
        [s >> 64, s & WORD, inc >> 64, inc & WORD, state["has_uint32"], state["uinteger"]],
        dtype=np.uint64,
    )


def restore(rng: np.random.Generator, words: np.ndarray) -> None:
    """Set the stream to the state a kernel left in `words`."""
    address = _raw_address(rng)
    if address is not None:
        _write_raw(address, words)
        return
    w = words.tolist()  # Python ints
    rng.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3]},
        "has_uint32": w[4],
        "uinteger": w[5],
    }


def drawing(rng: np.random.Generator, kernel: Callable[..., Any], *args: Any) -> Any:
    """kernel(words, *args) drawing from `rng`, which is left where the kernel stopped."""
    words = words_of(rng)
    out = kernel(words, *args)
    restore(rng, words)
    return out


# A stream's state read and written in NumPy's own memory, where its `state` property builds
# and parses a dict of Python ints (7 us a kernel call, a tenth of a small city's day). The
# layout is NumPy's C structs on a 64-bit little-endian machine with 128-bit integers:
# pcg64_state {pcg64_random_t *pcg_state; int has_uint32; uint32_t uinteger} and
# pcg64_random_t {state, inc} as (low, high) words. `_raw_state_readable` checks it against
# the `state` property once per process; where it differs, the property is used.
_raw_checked: list[bool] = []


@intrinsic
def _u64_pointer(typingctx, address):
    """The integer `address` as a pointer to uint64 words."""
    signature = types.CPointer(types.uint64)(types.intp)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(sig.return_type))

    return signature, codegen


@njit(cache=True, nogil=True)
def _read_raw(address: int, words: np.ndarray) -> None:
    head = carray(_u64_pointer(address), 2)
    pcg = carray(_u64_pointer(np.intp(head[0])), 4)
    words[0], words[1], words[2], words[3] = pcg[1], pcg[0], pcg[3], pcg[2]
    words[4], words[5] = head[1] & np.uint64(0xFFFFFFFF), head[1] >> np.uint64(32)


@njit(cache=True, nogil=True)
def _write_raw(address: int, words: np.ndarray) -> None:
    head = carray(_u64_pointer(address), 2)
    pcg = carray(_u64_pointer(np.intp(head[0])), 4)
    pcg[1], pcg[0], pcg[3], pcg[2] = words[0], words[1], words[2], words[3]
    head[1] = (words[5] << np.uint64(32)) | (words[4] & np.uint64(0xFFFFFFFF))


def _raw_address(rng: np.random.Generator) -> int | None:
    """Where a PCG64 stream's state is, when it can be read there (else None)."""
    bits = rng.bit_generator
    if type(bits) is np.random.PCG64 and _raw_state_readable():
        return bits.ctypes.state_address
    return None


def _raw_state_readable() -> bool:
    if not _raw_checked:
        _raw_checked.append(_raw_state_matches())
    return _raw_checked[0]


def _raw_state_matches() -> bool:
    """Whether reading and writing NumPy's memory gives what its `state` property does."""
    if sys.byteorder != "little" or np.dtype(np.intp).itemsize != 8:
        return False
    try:
        rng = np.random.default_rng(20261207)
        rng.integers(0, 10)  # leaves half a 32-bit draw buffered (has_uint32, uinteger)
        address = rng.bit_generator.ctypes.state_address
        raw = np.empty(N_WORDS, dtype=np.uint64)
        _read_raw(address, raw)
        if not np.array_equal(raw, _state_words(rng.bit_generator.state)):
            return False
        other = np.random.default_rng(7)
        other.integers(0, 10)
        _write_raw(address, _state_words(other.bit_generator.state))
        return rng.bit_generator.state == other.bit_generator.state
    except Exception:  # any surprise: keep to the property
        return False


@intrinsic
def _pcg_step(typingctx, hi, lo, inc_hi, inc_lo):
    """The next state (high, low) and its output, in 128-bit integer arithmetic."""
    u64 = types.uint64
    signature = types.UniTuple(u64, 3)(u64, u64, u64, u64)

    def codegen(context, builder, sig, args):
        i64, i128 = ir.IntType(64), ir.IntType(128)

        def join(high, low):
            high = builder.shl(builder.zext(high, i128), i128(64))
            return builder.or_(high, builder.zext(low, i128))

        state = builder.mul(join(args[0], args[1]), i128(MULTIPLIER))
        state = builder.add(state, join(args[2], args[3]))
        high = builder.trunc(builder.lshr(state, i128(64)), i64)
        low = builder.trunc(state, i64)
        rotation = builder.trunc(builder.lshr(state, i128(122)), i64)
        funnel = ir.FunctionType(i64, [i64, i64, i64])
        rotr = cgutils.get_or_insert_function(builder.module, funnel, "llvm.fshr.i64")
        mixed = builder.xor(high, low)
        out = builder.call(rotr, [mixed, mixed, rotation])
        return context.make_tuple(builder, sig.return_type, [high, low, out])

    return signature, codegen


@njit(cache=True, nogil=True)
def load(words: np.ndarray):
    return (words[0], words[1], words[2], words[3], words[4], words[5])


@njit(cache=True, nogil=True)
def store(words: np.ndarray, s) -> None:
    for k in range(N_WORDS):
        words[k] = s[k]


@njit(cache=True, nogil=True, inline="always")
def next_uint64(s):
    high, low, out = _pcg_step(s[0], s[1], s[2], s[3])
    return out, (high, low, s[2], s[3], s[4], s[5])


@njit(cache=True, nogil=True)
def next_uint32(s):
    """NumPy's PCG64 32-bit draw: the low half of a 64-bit one, the high half kept for the
    next call."""
    if s[4]:
        return np.uint32(s[5]), (s[0], s[1], s[2], s[3], np.uint64(0), s[5])
    x, s = next_uint64(s)
    return np.uint32(x & np.uint64(0xFFFFFFFF)), (s[0], s[1], s[2], s[3], np.uint64(1), x >> 32)


@njit(cache=True, nogil=True, inline="always")
def uniform(s):
    """Generator.random()."""
    x, s = next_uint64(s)
    return (x >> np.uint64(11)) * TWO_TO_MINUS_53, s


@njit(cache=True, nogil=True, inline="always")
def _ziggurat_box(s):
    """A draw's box of NumPy's exponential ziggurat and value, and whether the value falls in
    the box's rectangle (then it is the draw)."""
    ri, s = next_uint64(s)
    ri >>= np.uint64(3)
    idx = ri & np.uint64(0xFF)
    ri >>= np.uint64(8)
    return ri * we_double[idx], idx, ri < ke_double[idx], s


@njit(cache=True, nogil=True, inline="always")
def standard_exponential(s):
    """Generator.standard_exponential(). The first box takes 98.9% of the draws; it is
    inlined into the caller, the rest is a call."""
    x, idx, inside, s = _ziggurat_box(s)
    if inside:
        return x, s
    return _exponential_rejected(s, idx, x)


@njit(cache=True, nogil=True)
def _exponential_rejected(s, idx, x):
    while True:
        u, s = uniform(s)
        if idx == 0:
            return ziggurat_exp_r - np.log1p(-u), s
        if (fe_double[idx - 1] - fe_double[idx]) * u + fe_double[idx] < np.exp(-x):
            return x, s
        x, idx, inside, s = _ziggurat_box(s)
        if inside:
            return x, s


@njit(cache=True, nogil=True)
def geometric(s, p: float):
    """Generator.geometric(p)."""
    return geometric_with_log(s, p, np.log1p(-p))


@njit(cache=True, nogil=True, inline="always")
def geometric_with_log(s, p: float, log_q: float):
    """Generator.geometric(p) given log_q = log1p(-p): samplers compute it once per bucket.
    Below p = 1/3 (NumPy's inversion, one exponential) it is inlined into the caller."""
    if p >= ONE_THIRD:
        return _geometric_search(s, p)
    e, s = standard_exponential(s)
    return np.int64(np.ceil(-e / log_q)), s


@njit(cache=True, nogil=True)
def _geometric_search(s, p: float):
    """NumPy's search method, for p >= 1/3."""
    x = np.int64(1)
    total = prod = p
    q = 1.0 - p
    u, s = uniform(s)
    while u > total:
        prod *= q
        total += prod
        x += 1
    return x, s


@njit(cache=True, nogil=True)
def integers(s, high: int):
    """Generator.integers(0, high) for high >= 1: NumPy's Lemire rejection, from a 32-bit
    draw when the range fits one. (Above 2**32, numba's Generator differs from NumPy where it
    rejects a draw: it computes the threshold in floating point. This follows NumPy.)"""
    rng = np.uint64(high - 1)
    if rng == 0:
        return np.int64(0), s
    if rng < np.uint64(0xFFFFFFFF):
        excl = np.uint64(rng + np.uint64(1))
        x, s = next_uint32(s)
        m = np.uint64(x) * excl
        leftover = m & np.uint64(0xFFFFFFFF)
        if leftover < excl:
            threshold = (np.uint64(0xFFFFFFFF) - rng) % excl
            while leftover < threshold:
                x, s = next_uint32(s)
                m = np.uint64(x) * excl
                leftover = m & np.uint64(0xFFFFFFFF)
        return np.int64(m >> np.uint64(32)), s
    if rng == np.uint64(0xFFFFFFFF):
        x, s = next_uint32(s)
        return np.int64(x), s
    excl = np.uint64(rng + np.uint64(1))
    x, s = next_uint64(s)
    leftover = x * excl
    if leftover < excl:
        threshold = (np.uint64(0xFFFFFFFFFFFFFFFF) - rng) % excl
        while leftover < threshold:
            x, s = next_uint64(s)
            leftover = x * excl
    # The high 64 bits of x * excl.
    low_mask = np.uint64(0xFFFFFFFF)
    x0, x1 = x & low_mask, x >> np.uint64(32)
    e0, e1 = excl & low_mask, excl >> np.uint64(32)
    w0 = x0 * e0
    t = x1 * e0 + (w0 >> np.uint64(32))
    w1 = (t & low_mask) + x0 * e1
    return np.int64(x1 * e1 + (t >> np.uint64(32)) + (w1 >> np.uint64(32))), s
