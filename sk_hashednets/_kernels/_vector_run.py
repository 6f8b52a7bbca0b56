"""A run of block hashing's 16 signed weights multiplied and added as one LLVM vector.

Numba leaves LLVM's SLP vectoriser off, and a loop of 16 is short for the
loop vectoriser: written as a loop, a run in the block-table kernel
(:func:`._numba_predict.table_matmul`) cost 11 to 15 ns on the development
machine (AVX-512). Here a run is written as what it is, in LLVM IR: load 16
weights, choose ``-a`` or ``a`` lane by lane from the 16 sign bits (a
``select`` on the bits read as a vector of 16 booleans), one fused
multiply-add into 16 accumulators. LLVM lowers it to the target's vectors
(one AVX-512 register of float32, two of AVX2, ...).

- :func:`signed_run_fma` adds a run into 16 entries of an array.
- At batch 1 the kernel walks a run's column down the rows and keeps its 16
  outputs in a register: :class:`Lanes` is a Numba type whose value is an
  LLVM vector of 16 floats, made by :func:`zero_lanes`, advanced by
  :func:`lanes_fma` (:func:`lanes_fma_wrapped` for a run that wraps around
  the buckets) and written out once by :func:`store_lanes`.

The bits are those of the scalar loop they replace, ``acc[c + t] += (-a if
bit t else a) * w[start + t]`` compiled with ``fastmath={"contract"}``, which
fuses the same multiply-add: ``tests/test_inference.py`` checks both.
These are for Numba-compiled code only, and check nothing at run time: the
caller keeps every index in bounds.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

#: Lanes of a run: ``_hashing.BLOCK_SIZE``, the length of a block-hashing run.
LANES = 16

_FLOATS = (types.float32, types.float64)


class Lanes(types.Type):
    """The Numba type of 16 accumulators of ``dtype`` held as one LLVM vector."""

    def __init__(self, dtype):
        self.dtype = dtype
        super().__init__(name=f"Lanes({dtype})")


@register_model(Lanes)
class _LanesModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        lane = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(lane, LANES))


def _is_floats(array):
    """Whether ``array`` is the Numba type of a 1-D C-contiguous float32 or float64 array."""
    return (
        isinstance(array, types.Array)
        and array.ndim == 1
        and array.layout == "C"
        and array.dtype in _FLOATS
    )


def _run_args_ok(w, start, a, bits):
    return (
        _is_floats(w)
        and isinstance(a, types.Float)
        and isinstance(start, types.Integer)
        and isinstance(bits, types.Integer)
    )


def _run_scalars(context, builder, types_, values, dtype):
    """``start`` as intp, ``a`` in ``dtype`` and ``bits`` as uint64."""
    (start_ty, a_ty, bits_ty), (start, a, bits) = types_, values
    return (
        context.cast(builder, start, start_ty, types.intp),
        context.cast(builder, a, a_ty, dtype),
        context.cast(builder, bits, bits_ty, types.uint64),
    )


def _signed_run_sum(context, builder, acc, w_ty, w_val, start, a, bits, dtype, wrapped):
    """IR: ``fma(where(bits, -a, a), w[start:start + 16], acc)``, 16 lanes of ``dtype``.

    ``wrapped``: lane ``t`` reads bucket ``(start + t) % len(w)``, one lane
    at a time, for a run that wraps around the buckets.
    """
    lane_ty = context.get_value_type(dtype)
    vec_ty = ir.VectorType(lane_ty, LANES)
    w_lane_ty = context.get_value_type(w_ty.dtype)
    w_vec_ty = ir.VectorType(w_lane_ty, LANES)
    w_array = context.make_array(w_ty)(context, builder, w_val)
    if wrapped:
        n_buckets = builder.extract_value(w_array.shape, 0)
        weights = ir.Constant(w_vec_ty, ir.Undefined)
        for t in range(LANES):
            bucket = builder.urem(builder.add(start, ir.Constant(start.type, t)), n_buckets)
            lane = builder.load(builder.gep(w_array.data, [bucket]))
            weights = builder.insert_element(weights, lane, ir.Constant(ir.IntType(32), t))
    else:
        w_ptr = builder.bitcast(builder.gep(w_array.data, [start]), w_vec_ty.as_pointer())
        weights = builder.load(w_ptr, align=context.get_abi_sizeof(w_lane_ty))
    if w_ty.dtype != dtype:  # float32 buckets into float64 products: exact
        weights = builder.fpext(weights, vec_ty)
    # Bit t of the 16 low bits is lane t (the little-endian bit order of a bitcast).
    negate = builder.bitcast(
        builder.trunc(bits, ir.IntType(LANES)), ir.VectorType(ir.IntType(1), LANES)
    )
    undef = ir.Constant(vec_ty, ir.Undefined)
    lane0 = ir.Constant(ir.IntType(32), 0)
    broadcast = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
    a_vec = builder.shuffle_vector(builder.insert_element(undef, a, lane0), undef, broadcast)
    factor = builder.select(negate, builder.fneg(a_vec), a_vec)
    fma = cgutils.get_or_insert_function(
        builder.module,
        ir.FunctionType(vec_ty, [vec_ty, vec_ty, vec_ty]),
        f"llvm.fma.v{LANES}f{8 * context.get_abi_sizeof(lane_ty)}",
    )
    return builder.call(fma, [factor, weights, acc])


def _lanes_pointer(context, builder, array_ty, array_val, index):
    """IR: a pointer to the 16 entries of a 1-D array from ``index``, as one vector."""
    lane_ty = context.get_value_type(array_ty.dtype)
    data = context.make_array(array_ty)(context, builder, array_val).data
    ptr = builder.gep(data, [index])
    return builder.bitcast(ptr, ir.VectorType(lane_ty, LANES).as_pointer())


@intrinsic
def signed_run_fma(typingctx, acc, c, w, start, a, bits):
    """``acc[c + t] += (-a if bits >> t & 1 else a) * w[start + t]`` for ``t < 16``, fused.

    The caller makes sure that ``c + 16 <= len(acc)`` and ``start + 16 <=
    len(w)`` (a run that wraps around the buckets, or ends a chunk early,
    takes the scalar loop).

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
    if not (_is_floats(acc) and acc.mutable and isinstance(c, types.Integer)):
        return None
    if not _run_args_ok(w, start, a, bits):
        return None

    def codegen(context, builder, signature, args):
        c_val = context.cast(builder, args[1], signature.args[1], types.intp)
        start_val, a_val, bits_val = _run_scalars(
            context, builder, signature.args[3:], args[3:], acc.dtype
        )
        ptr = _lanes_pointer(context, builder, acc, args[0], c_val)
        align = context.get_abi_sizeof(context.get_value_type(acc.dtype))
        total = _signed_run_sum(
            context,
            builder,
            builder.load(ptr, align=align),
            w,
            args[2],
            start_val,
            a_val,
            bits_val,
            acc.dtype,
            wrapped=False,
        )
        builder.store(total, ptr, align=align)
        return context.get_dummy_value()

    return types.void(acc, c, w, start, a, bits), codegen


@intrinsic
def zero_lanes(typingctx, like):
    """16 zeros of the dtype of the array ``like``, as :class:`Lanes`."""
    if not _is_floats(like):
        return None
    lanes_ty = Lanes(like.dtype)

    def codegen(context, builder, signature, args):
        return ir.Constant(context.get_value_type(lanes_ty), None)

    return lanes_ty(like), codegen


def _lanes_fma_typing(lanes, w, start, a, bits, wrapped):
    """Signature and code of :func:`lanes_fma` (``wrapped``: of the wrapped one)."""
    if not (isinstance(lanes, Lanes) and _run_args_ok(w, start, a, bits)):
        return None

    def codegen(context, builder, signature, args):
        start_val, a_val, bits_val = _run_scalars(
            context, builder, signature.args[2:], args[2:], lanes.dtype
        )
        return _signed_run_sum(
            context, builder, args[0], w, args[1], start_val, a_val, bits_val, lanes.dtype, wrapped
        )

    return lanes(lanes, w, start, a, bits), codegen


@intrinsic
def lanes_fma(typingctx, lanes, w, start, a, bits):
    """``lanes + (-a if bits >> t & 1 else a) * w[start + t]``, fused, for ``t < 16``.

    The caller makes sure that ``start + 16 <= len(w)``.
    """
    return _lanes_fma_typing(lanes, w, start, a, bits, wrapped=False)


@intrinsic
def lanes_fma_wrapped(typingctx, lanes, w, start, a, bits):
    """:func:`lanes_fma` with bucket ``(start + t) % len(w)`` for lane ``t``."""
    return _lanes_fma_typing(lanes, w, start, a, bits, wrapped=True)


@intrinsic
def store_lanes(typingctx, out, c, lanes):
    """``out[c:c + 16] = lanes`` (the caller makes sure that ``c + 16 <= len(out)``)."""
    if not (_is_floats(out) and out.mutable and isinstance(c, types.Integer)):
        return None
    if not (isinstance(lanes, Lanes) and lanes.dtype == out.dtype):
        return None

    def codegen(context, builder, signature, args):
        c_val = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = _lanes_pointer(context, builder, out, args[0], c_val)
        align = context.get_abi_sizeof(context.get_value_type(out.dtype))
        builder.store(args[2], ptr, align=align)
        return context.get_dummy_value()

    return types.void(out, c, lanes), codegen
