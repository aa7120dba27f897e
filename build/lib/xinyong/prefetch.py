"""Memory prefetch hints for compiled kernels.

Kernels that visit persons' state in (almost) increasing order but sparsely, such as scoring
1.3 M records a day spread over 10 M adults, wait on memory for most of each record: the
hardware prefetcher cannot guess the next person. Asking for the state of the record a few
dozen ahead overlaps those waits (the scoring kernel: 49 to 34 ms a day at 10 M adults; the
rules of steps 8-9 over 36 k persons: 4.6 to 2.8 ms). A prefetch never faults and changes no
result.

`prefetch` asks for a line to be written (into the first-level cache, owned), `prefetch_read`
for one that is only read, into the second-level cache: for behaviour sampling's random reads
of bucket rows, negative sampling 10.4 -> 9.4 ms and positive 23.3 -> 22.4 ms a day at 10 M
adults (a write hint to the first level: the slowest of the four measured).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

AHEAD = 32  # records ahead: far enough to hide a memory access, near enough to stay cached


def _prefetch(array, flat_index, write: bool, locality: int):
    if not isinstance(array, types.Array) or array.layout != "C":
        return None
    if not isinstance(flat_index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(array)(context, builder, args[0]).data
        byte = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        hint = ir.FunctionType(ir.VoidType(), [byte, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, hint, "llvm.prefetch.p0i8")
        address = builder.bitcast(builder.gep(data, [args[1]]), byte)
        builder.call(fn, [address, i32(int(write)), i32(locality), i32(1)])  # 1: data
        return context.get_dummy_value()

    return types.void(array, flat_index), codegen


@intrinsic
def prefetch(typingctx, array, flat_index):
    """Hint that element `flat_index` of the C-contiguous `array` will be written soon."""
    return _prefetch(array, flat_index, write=True, locality=3)


@intrinsic
def prefetch_read(typingctx, array, flat_index):
    """Hint that element `flat_index` of the C-contiguous `array` will be read soon."""
    return _prefetch(array, flat_index, write=False, locality=2)
