"""A 4 x uint64 vector type for numba kernels (``u64x4``): explicit SIMD without C.

numba has no vector types, and LLVM's vectorizer only vectorizes innermost
loops. The bit-sliced Hamming scan needs the opposite: a long chain of logic
operations on the same four 64-bit lanes (256 codes) kept in registers. This
module gives numba a value type that is an LLVM ``<4 x i64>``, with loads,
stores, a broadcast and the bitwise operators (``^ & | ~``), so kernels are
written as plain numba code and LLVM lowers each operation to one AVX2
instruction on x86-64, or two NEON instructions on aarch64 (portable LLVM IR,
no target intrinsics).

    from dagh.runtime.search.kernels.simd import load4, splat4
    x = load4(array, offset) ^ splat4(mask)     # array: 1-D contiguous uint64

It also holds the scalar bit intrinsics the kernels use: ``popcount`` (LLVM
ctpop) and ``trailing_zeros64`` (cttz).
"""

from __future__ import annotations

import operator

from llvmlite import ir
from numba import types
from numba.extending import intrinsic, models, overload, register_model

_LANES = 4
_VECTOR = ir.VectorType(ir.IntType(64), _LANES)


class U64x4Type(types.Type):
    """Four uint64 lanes in one LLVM vector register."""

    def __init__(self):
        super().__init__(name="u64x4")


u64x4 = U64x4Type()


@register_model(U64x4Type)
class _U64x4Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VECTOR)


@intrinsic
def popcount(typingctx, value):
    """LLVM ctpop on an unsigned integer (POPCNT, or a vectorized popcount inside vectorized loops)."""
    if not isinstance(value, types.Integer):
        return None
    signature = value(value)

    def codegen(context, builder, sig, args):
        return builder.ctpop(args[0])

    return signature, codegen


@intrinsic
def trailing_zeros64(typingctx, value):
    """LLVM cttz on a uint64 (TZCNT / RBIT+CLZ): the index of the lowest set bit."""
    signature = types.uint64(types.uint64)

    def codegen(context, builder, sig, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return signature, codegen


def _word_pointer(context, builder, source_type, source, offset):
    """An i64* to word ``offset`` of a 1-D uint64 array, or of the words at an integer ``address``."""
    if isinstance(source_type, types.Integer):
        base = builder.inttoptr(source, ir.IntType(64).as_pointer())
    else:
        base = context.make_array(source_type)(context, builder, source).data
    return builder.gep(base, [offset])


def _vector_pointer(context, builder, source_type, source, offset):
    return builder.bitcast(_word_pointer(context, builder, source_type, source, offset), _VECTOR.as_pointer())


def _is_u64_array(array) -> bool:
    return isinstance(array, types.Array) and array.dtype == types.uint64 and array.ndim == 1


@intrinsic
def address(typingctx, array):
    """The address of a 1-D uint64 array's data, for load4 in inlined helpers.

    Why: an array passed to an inlined helper inside a hot loop costs numba two
    reference-count calls per pass (and spills the vector registers around
    them); an integer address costs nothing. The caller keeps the array alive.
    """
    if not _is_u64_array(array):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return builder.ptrtoint(data, ir.IntType(64))

    return types.uint64(array), codegen


@intrinsic
def load4(typingctx, array, offset):
    """Words offset..offset + 3 of a 1-D uint64 array (or of an ``address``) as a vector; no bounds check."""
    if not (_is_u64_array(array) or array == types.uint64) or not isinstance(offset, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        return builder.load(_vector_pointer(context, builder, sig.args[0], args[0], args[1]), align=8)

    return u64x4(array, offset), codegen


@intrinsic
def word_at(typingctx, where, offset):
    """The uint64 at word ``offset`` of an ``address`` (no bounds check)."""
    if where != types.uint64 or not isinstance(offset, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        return builder.load(_word_pointer(context, builder, sig.args[0], args[0], args[1]), align=8)

    return types.uint64(where, offset), codegen


@intrinsic
def store4(typingctx, array, offset, vector):
    """array[offset:offset + 4] = vector (no bounds check)."""
    if not _is_u64_array(array) or not isinstance(offset, types.Integer) or vector != u64x4:
        return None

    def codegen(context, builder, sig, args):
        builder.store(args[2], _vector_pointer(context, builder, sig.args[0], args[0], args[1]), align=8)
        return context.get_dummy_value()

    return types.none(array, offset, vector), codegen


@intrinsic
def splat4(typingctx, value):
    """A vector with ``value`` (a uint64) in every lane."""
    if not isinstance(value, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        word = context.cast(builder, args[0], sig.args[0], types.uint64)
        one = builder.insert_element(ir.Constant(_VECTOR, ir.Undefined), word, ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(one, one, ir.Constant(ir.VectorType(ir.IntType(32), _LANES), [0] * _LANES))

    return u64x4(value), codegen


@intrinsic
def any4(typingctx, vector):
    """True when any bit of any lane is set."""
    if vector != u64x4:
        return None

    def codegen(context, builder, sig, args):
        lanes = [builder.extract_element(args[0], ir.Constant(ir.IntType(32), i)) for i in range(_LANES)]
        merged = builder.or_(builder.or_(lanes[0], lanes[1]), builder.or_(lanes[2], lanes[3]))
        return builder.icmp_unsigned("!=", merged, ir.Constant(ir.IntType(64), 0))

    return types.boolean(vector), codegen


def _binary(build):
    @intrinsic
    def operation(typingctx, a, b):
        if a != u64x4 or b != u64x4:
            return None

        def codegen(context, builder, sig, args):
            return build(builder, args[0], args[1])

        return u64x4(a, b), codegen

    return operation


_xor = _binary(lambda builder, a, b: builder.xor(a, b))
_and = _binary(lambda builder, a, b: builder.and_(a, b))
_or = _binary(lambda builder, a, b: builder.or_(a, b))


@intrinsic
def _not(typingctx, a):
    if a != u64x4:
        return None

    def codegen(context, builder, sig, args):
        return builder.not_(args[0])

    return u64x4(a), codegen


def _overload_binary(python_operator, implementation):
    @overload(python_operator)
    def _typed(a, b):
        if a == u64x4 and b == u64x4:
            return lambda a, b: implementation(a, b)


_overload_binary(operator.xor, _xor)
_overload_binary(operator.and_, _and)
_overload_binary(operator.or_, _or)


@overload(operator.invert)
def _typed_invert(a):
    if a == u64x4:
        return lambda a: _not(a)
