//! Values in and out of JIT code, by the function's Cranelift signature.
//!
//! Every argument and result travels through a 16-byte slot of a buffer that a
//! trampoline (compiled once per function, see [`build_trampoline`]) loads into
//! registers before the call and stores the results into after it. The host side
//! only ever calls `extern "C" fn(*const Slot, *mut Slot)`.
//!
//! Kinds: i8/i16/i32/i64 take an int in the type's signed or unsigned range and
//! return it sign-extended; f32/f64 take a float (or an int, converted) and return a
//! float (NaN payloads kept bit for bit); vectors (`i32x4`, `f64x2`...) take and
//! return an array of their lanes. i128, f16 and f128 have no value kind: Error
//! Unsupported naming the type.

use cranelift_codegen::ir::{types, AbiParam, InstBuilder, MemFlagsData, Signature, Type};
use ffi_sdk::prelude::*;

/// One argument or result slot.
#[derive(Clone, Copy, Default)]
#[repr(C, align(16))]
pub struct Slot(pub [u8; 16]);

/// The host-side signature of every trampoline.
pub type Tramp = unsafe extern "C" fn(*const Slot, *mut Slot);

/// Why a type cannot cross the boundary, or None when it can.
pub fn unsupported_type(t: Type) -> Option<String> {
    let lane = t.lane_type();
    if lane == types::I128 || lane == types::F16 || lane == types::F128 {
        return Some(format!("type {t} has no value kind (ints are at most 64-bit, floats f32/f64)"));
    }
    if t.is_dynamic_vector() || t.bytes() > 16 || t.bytes() == 0 {
        return Some(format!("type {t} is not supported at the boundary"));
    }
    None
}

/// Checks a whole signature; Error Unsupported naming the first type that cannot cross.
pub fn check_signature(func: &'static str, name: &str, sig: &Signature) -> RtResult<()> {
    for p in sig.params.iter().chain(sig.returns.iter()) {
        if let Some(why) = unsupported_type(p.value_type) {
            return Err(Error::new(Code::Unsupported, func, why, format!("function {name}")).with("type", p.value_type.to_string()));
        }
    }
    Ok(())
}

fn f32_from_f64_bits(d: f64) -> u32 {
    if d.is_nan() {
        // Keep sign and the top payload bits (an f32 NaN widened by f64_from_f32 comes back exactly).
        let b = d.to_bits();
        let sign = ((b >> 63) as u32) << 31;
        let mut mant = ((b >> 29) & 0x7F_FFFF) as u32;
        if mant == 0 {
            mant = 0x40_0000;
        }
        sign | 0x7F80_0000 | mant
    } else {
        (d as f32).to_bits()
    }
}

/// f32 bits to f64, NaN payloads kept (shifted), unlike a hardware conversion that quiets them.
pub fn f64_from_f32_bits(b: u32) -> f64 {
    let f = f32::from_bits(b);
    if f.is_nan() {
        let sign = ((b >> 31) as u64) << 63;
        let mant = ((b & 0x7F_FFFF) as u64) << 29;
        f64::from_bits(sign | 0x7FF0_0000_0000_0000 | mant)
    } else {
        f as f64
    }
}

/// f64 to f32 bits as the boundary converts them.
pub fn f32_bits_from_f64(d: f64) -> u32 {
    f32_from_f64_bits(d)
}

fn lane_in(func: &'static str, what: &dyn Fn() -> String, ty: Type, v: Value, out: &mut [u8]) -> RtResult<()> {
    if ty.is_int() {
        let i = v.as_int().ok_or_else(|| {
            Error::plain(Code::TypeMismatch, func, format!("{} must be an int for {ty}, got {}", what(), v.describe()))
        })?;
        let bits = ty.bits();
        if bits < 64 {
            let lo = -(1i64 << (bits - 1));
            let hi = (1i64 << bits) - 1;
            if i < lo || i > hi {
                return Err(Error::new(Code::OutOfRange, func, format!("{} does not fit {ty} ({lo}..={hi})", what()), i));
            }
        }
        let n = ty.bytes() as usize;
        out[..n].copy_from_slice(&i.to_le_bytes()[..n]);
        return Ok(());
    }
    let d = v
        .as_float()
        .or_else(|| v.as_int().map(|i| i as f64))
        .ok_or_else(|| Error::plain(Code::TypeMismatch, func, format!("{} must be a float for {ty}, got {}", what(), v.describe())))?;
    if ty == types::F32 {
        out[..4].copy_from_slice(&f32_from_f64_bits(d).to_le_bytes());
    } else {
        out[..8].copy_from_slice(&d.to_bits().to_le_bytes());
    }
    Ok(())
}

/// Writes argument `idx` (of type `ty`) into `slot`.
pub fn arg_in(func: &'static str, idx: usize, ty: Type, v: Value, slot: &mut Slot) -> RtResult<()> {
    if ty.is_vector() {
        let lanes = ty.lane_count() as usize;
        let lt = ty.lane_type();
        if !v.is_array() || v.len() != lanes {
            return Err(Error::plain(
                Code::TypeMismatch,
                func,
                format!("argument {} must be an array of {lanes} lanes for {ty}, got {}", idx + 1, v.describe()),
            )
            .with("argument", idx + 1));
        }
        let w = lt.bytes() as usize;
        for (l, item) in v.items().enumerate() {
            lane_in(func, &|| format!("argument {} lane {l}", idx + 1), lt, item, &mut slot.0[l * w..(l + 1) * w])?;
        }
        return Ok(());
    }
    lane_in(func, &|| format!("argument {}", idx + 1), ty, v, &mut slot.0).map_err(|e| e.with("argument", idx + 1))
}

fn lane_out(ty: Type, b: &[u8]) -> Value {
    match ty {
        types::I8 => Value::int(b[0] as i8 as i64),
        types::I16 => Value::int(i16::from_le_bytes([b[0], b[1]]) as i64),
        types::I32 => Value::int(i32::from_le_bytes(b[..4].try_into().unwrap_or_default()) as i64),
        types::I64 => Value::int(i64::from_le_bytes(b[..8].try_into().unwrap_or_default())),
        types::F32 => Value::float(f64_from_f32_bits(u32::from_le_bytes(b[..4].try_into().unwrap_or_default()))),
        _ => Value::float(f64::from_bits(u64::from_le_bytes(b[..8].try_into().unwrap_or_default()))),
    }
}

/// The value of a result of type `ty` from its slot.
pub fn ret_out(ty: Type, slot: &Slot) -> RtResult<Value> {
    if ty.is_vector() {
        let lt = ty.lane_type();
        let w = lt.bytes() as usize;
        let mut a = ffi_sdk::ArrayBuilder::new(ty.lane_count() as usize)?;
        for l in 0..ty.lane_count() as usize {
            a.push(lane_out(lt, &slot.0[l * w..(l + 1) * w]))?;
        }
        return Ok(a.finish());
    }
    Ok(lane_out(ty, &slot.0))
}

/// The trampoline's body: `(args, rets)` pointers in, every parameter loaded from its
/// slot, a direct call of `callee`, every result stored to its slot.
pub fn build_trampoline(
    func: &mut cranelift_codegen::ir::Function,
    callee_sig: &Signature,
    callee: cranelift_codegen::ir::FuncRef,
    ptr: Type,
) {
    use cranelift_codegen::cursor::{Cursor, FuncCursor};
    let block = func.dfg.make_block();
    let args_p = func.dfg.append_block_param(block, ptr);
    let rets_p = func.dfg.append_block_param(block, ptr);
    func.layout.append_block(block);
    let mut cur = FuncCursor::new(func).at_bottom(block);
    let flags = MemFlagsData::trusted();
    let mut vals = Vec::with_capacity(callee_sig.params.len());
    for (i, p) in callee_sig.params.iter().enumerate() {
        vals.push(cur.ins().load(p.value_type, flags, args_p, (i * 16) as i32));
    }
    let call = cur.ins().call(callee, &vals);
    let results: Vec<_> = cur.func.dfg.inst_results(call).to_vec();
    for (j, r) in results.into_iter().enumerate() {
        cur.ins().store(flags, r, rets_p, (j * 16) as i32);
    }
    cur.ins().return_(&[]);
}

/// The trampoline's own signature for pointer type `ptr` and calling convention `cc`.
pub fn trampoline_signature(ptr: Type, cc: cranelift_codegen::isa::CallConv) -> Signature {
    let mut s = Signature::new(cc);
    s.params.push(AbiParam::new(ptr));
    s.params.push(AbiParam::new(ptr));
    s
}
