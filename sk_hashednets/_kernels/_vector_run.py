"""A run of block hashing's 16 signed weights multiplied and added as one LLVM vector.

Numba leaves LLVM's SLP vectoriser off, and a loop of 16 is short for the
loop vectoriser: written as a loop, the run in
:func:`._numba_predict.table_matmul` cost 11 to 15 ns on the development
machine (AVX-512), where the memory it touches allows about half of that.
:func:`signed_run_fma` writes the run as what it is, in LLVM IR: load 16
weights, choose ``-a`` or ``a`` lane by lane from the 16 sign bits (a
``select`` on the bits read as a vector of 16 booleans), one fused
multiply-add into 16 accumulators, store. LLVM lowers it to the target's
vectors (one AVX-512 register of float32, two of AVX2, ...).

The bits are those of the scalar loop it replaces, ``acc[c + t] += (-a if bit
t else a) * w[start + t]`` compiled with ``fastmath={"contract"}``, which
fuses the same multiply-add: ``tests/test_inference.py`` checks it.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: Lanes of a run: ``_hashing.BLOCK_SIZE``, the length of a block-hashing run.
LANES = 16

_FLOATS = (types.float32, types.float64)


@intrinsic
def signed_run_fma(typingctx, acc, c, w, start, a, bits):
    """``acc[c + t] += (-a if bits >> t & 1 else a) * w[start + t]`` for ``t < 16``, fused.

    For Numba-compiled code only. Nothing is checked: the caller makes sure
    that ``c + 16 <= len(acc)`` and ``start + 16 <= len(w)`` (a run that
    wraps around the buckets or ends a chunk early takes the scalar loop).

    Parameters
    ----------
    acc : 1-D C-contiguous array of float32 or float64
        Accumulated into, in place; the products are computed in its dtype.
    c : int
        The run's first column in ``acc``.
    w : 1-D C-contiguous array of float32 or float64
        The buckets.
    start : int
        The run's first bucket.
    a : float
        The input that multiplies the run.
    bits : int
        Bit ``t`` set where entry ``t`` of the run is negated.
    """
    arrays_ok = all(
        isinstance(x, types.Array) and x.ndim == 1 and x.layout == "C" and x.dtype in _FLOATS
        for x in (acc, w)
    )
    scalars_ok = all(isinstance(x, types.Integer) for x in (c, start, bits))
    if not (arrays_ok and scalars_ok and isinstance(a, types.Float) and acc.mutable):
        return None
    sig = types.void(acc, c, w, start, a, bits)

    def codegen(context, builder, signature, args):
        acc_val, c_val, w_val, start_val, a_val, bits_val = args
        acc_ty, c_ty, w_ty, start_ty, a_ty, bits_ty = signature.args
        dtype = acc_ty.dtype
        lane_ty = context.get_value_type(dtype)
        vec_ty = ir.VectorType(lane_ty, LANES)
        align = context.get_abi_sizeof(lane_ty)

        c_val = context.cast(builder, c_val, c_ty, types.intp)
        start_val = context.cast(builder, start_val, start_ty, types.intp)
        a_val = context.cast(builder, a_val, a_ty, dtype)
        bits_val = context.cast(builder, bits_val, bits_ty, types.uint64)

        acc_ptr = builder.gep(context.make_array(acc_ty)(context, builder, acc_val).data, [c_val])
        acc_ptr = builder.bitcast(acc_ptr, vec_ty.as_pointer())
        w_data = context.make_array(w_ty)(context, builder, w_val).data
        w_lane_ty = context.get_value_type(w_ty.dtype)
        w_ptr = builder.bitcast(
            builder.gep(w_data, [start_val]), ir.VectorType(w_lane_ty, LANES).as_pointer()
        )
        weights = builder.load(w_ptr, align=context.get_abi_sizeof(w_lane_ty))
        if w_ty.dtype != dtype:  # float32 buckets into float64 products: exact
            weights = builder.fpext(weights, vec_ty)

        # Bit t of the 16 low bits is lane t (little-endian bit order of a bitcast).
        negate = builder.bitcast(
            builder.trunc(bits_val, ir.IntType(LANES)), ir.VectorType(ir.IntType(1), LANES)
        )
        undef = ir.Constant(vec_ty, ir.Undefined)
        lane0 = ir.Constant(ir.IntType(32), 0)
        broadcast = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
        a_vec = builder.shuffle_vector(
            builder.insert_element(undef, a_val, lane0), undef, broadcast
        )
        factor = builder.select(negate, builder.fneg(a_vec), a_vec)

        fma = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(vec_ty, [vec_ty, vec_ty, vec_ty]),
            f"llvm.fma.v{LANES}f{8 * align}",
        )
        total = builder.call(fma, [factor, weights, builder.load(acc_ptr, align=align)])
        builder.store(total, acc_ptr, align=align)
        return context.get_dummy_value()

    return sig, codegen
