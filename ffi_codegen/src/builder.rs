//! Simple's builder API (`sffi/codegen.spl`): the same names and argument order over
//! simple-rt values. Where Simple passes a name as pointer + length, one text argument;
//! modules, signatures and function contexts are handles; blocks, values, function ids,
//! function references, stack slots and data objects are ints (Cranelift's own numbers).
//! Type codes as Simple's: 1 i8, 2 i16, 3 i32, 4 i64, 5 f32, 6 f64, 7 bool (i8), 8 pointer
//! (i64). Condition codes: icmp 0 eq, 1 ne, 2 slt, 3 sle, 4 sgt, 5 sge, 6 ult, 7 ule, 8 ugt,
//! 9 uge; fcmp 0 eq, 1 ne, 2 lt, 3 le, 4 gt, 5 ge. Linkage: 0 export, 1 import, 2 local.
//! Every failure is an Error value (Simple's runtime returned 0), naming the function and
//! the offending id; each function is verified when it is defined.

use crate::module::{new_module, CgModule, Config, FnInfo};
use cranelift_codegen::cursor::{Cursor, FuncCursor};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    self, types, AbiParam, Block, Function, InstBuilder, MemFlagsData, Signature, StackSlotData,
    StackSlotKind, Type, UserFuncName,
};
use cranelift_codegen::isa::CallConv;
use cranelift_module::{DataDescription, Linkage, Module};
use ffi_sdk::prelude::*;
use std::sync::{Arc, Mutex, MutexGuard};

/// A signature being built (handle type `cranelift_signature`).
pub struct CgSig(Mutex<Signature>);
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for CgSig {
    const NAME: &'static str = "cranelift_signature";
}

/// A function being built (handle type `cranelift_function`).
pub struct CgCtx(Mutex<Fctx>);
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for CgCtx {
    const NAME: &'static str = "cranelift_function";
}

pub struct Fctx {
    module: Arc<CgModule>,
    func: Function,
    name: String,
    cur: Option<Block>,
    staged: Vec<ir::Value>,
    ended: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Type from Simple's code.
fn ty(func: &'static str, code: i64) -> RtResult<Type> {
    Ok(match code {
        1 | 7 => types::I8,
        2 => types::I16,
        3 => types::I32,
        4 | 8 => types::I64,
        5 => types::F32,
        6 => types::F64,
        _ => return Err(Error::invalid(func, "unknown type code (1 i8, 2 i16, 3 i32, 4 i64, 5 f32, 6 f64, 7 bool, 8 pointer)", code)),
    })
}

impl Fctx {
    fn val(&self, func: &'static str, v: i64) -> RtResult<ir::Value> {
        let ok = v >= 0 && (v as usize) < self.func.dfg.num_values() && self.func.dfg.value_is_valid(ir::Value::from_u32(v as u32));
        if ok {
            Ok(ir::Value::from_u32(v as u32))
        } else {
            Err(Error::invalid(func, "no such value in this function", v))
        }
    }
    fn vty(&self, func: &'static str, v: i64) -> RtResult<(ir::Value, Type)> {
        let x = self.val(func, v)?;
        Ok((x, self.func.dfg.value_type(x)))
    }
    fn block(&self, func: &'static str, b: i64) -> RtResult<Block> {
        if b >= 0 && (b as usize) < self.func.dfg.num_blocks() {
            Ok(Block::from_u32(b as u32))
        } else {
            Err(Error::invalid(func, "no such block in this function", b))
        }
    }
    /// A cursor at the end of the current block, which must not be terminated yet.
    fn at(&mut self, func: &'static str) -> RtResult<FuncCursor<'_>> {
        if self.ended {
            return Err(Error::invalid(func, "the function was ended already", quote(&self.name)));
        }
        let b = self.cur.ok_or_else(|| Error::invalid(func, "no current block: call rt_cranelift_switch_to_block first", quote(&self.name)))?;
        if let Some(last) = self.func.layout.last_inst(b) {
            if self.func.dfg.insts[last].opcode().is_terminator() {
                return Err(Error::invalid(func, "the current block already ends with a jump, branch, return or trap", b.as_u32()));
            }
        }
        Ok(FuncCursor::new(&mut self.func).at_bottom(b))
    }
}

fn id(v: ir::Value) -> i64 {
    v.as_u32() as i64
}

fn quote(s: &str) -> String {
    ffi_sdk::error::quote(s)
}

fn target_config(func: &'static str, jit: bool, target: i64) -> RtResult<Config> {
    if target != 0 && target != -1 {
        return Err(Error::new(Code::Unsupported, func, "only x86_64 (target 0) is built into this library", target));
    }
    Ok(Config::new(jit))
}

/// Makes a JIT module (Simple's `new_module(name, target)`; target 0 = x86_64, this host).
/// Needs `codegen.jit`. Same handle as `rt_cranelift_init`.
///
/// # Errors
/// - InvalidArgument: cannot make an object module; opt_level must be none, speed or speed_and_size; bad target triple; a jit module runs on this host: give no target, or use kind "object"
/// - Unsupported: only x86_64 (target 0) is built into this library; no Cranelift backend in this build for that target; this CPU lacks a feature the settings ask for; no Cranelift backend for this host
#[rt_fn(cap = "codegen.jit", tier = "empirical")]
pub fn rt_cranelift_new_module(name: &str, target: i64) -> RtResult<Value> {
    let mut c = target_config(FN, true, target)?;
    c.name = name.to_string();
    new_module(FN, c)
}

/// Makes an object (AOT) module (target 0 = x86_64 Linux); write it with `rt_cranelift_emit_object`.
///
/// # Errors
/// - InvalidArgument: cannot make an object module; opt_level must be none, speed or speed_and_size; bad target triple; a jit module runs on this host: give no target, or use kind "object"
/// - Unsupported: only x86_64 (target 0) is built into this library; no Cranelift backend in this build for that target; this CPU lacks a feature the settings ask for; no Cranelift backend for this host
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_new_aot_module(name: &str, target: i64) -> RtResult<Value> {
    let mut c = target_config(FN, false, target)?;
    c.name = name.to_string();
    c.imports = crate::module::Imports::Default;
    new_module(FN, c)
}

/// Finalizes a JIT module's definitions (executing and addresses do it on demand too); returns the module.
///
/// # Errors
/// - Closed: `module` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_finalize_module(module: Handle<CgModule>) -> RtResult<Value> {
    module.lock().finalize(FN)?;
    Ok(module.value())
}

/// Closes a module (as `rt_handle_close`): its JIT code is freed once no call is using it.
///
/// # Errors
/// - Closed: `module` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_free_module(module: Handle<CgModule>) -> RtResult<()> {
    module.close();
    Ok(())
}

/// A new signature: call_conv 0 System V, 1 Windows fastcall, 2 tail, other the host's.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_new_signature(call_conv: i64) -> RtResult<Value> {
    let cc = match call_conv {
        0 => CallConv::SystemV,
        1 => CallConv::WindowsFastcall,
        2 => CallConv::Tail,
        _ => CallConv::triple_default(&target_lexicon::Triple::host()),
    };
    Ok(new_handle(CgSig(Mutex::new(Signature::new(cc)))))
}

/// Adds a parameter of a type code to a signature.
///
/// # Errors
/// - InvalidArgument: unknown type code (1 i8, 2 i16, 3 i32, 4 i64, 5 f32, 6 f64, 7 bool, 8 pointer)
/// - Closed: `sig` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_sig_add_param(sig: Handle<CgSig>, type_: i64) -> RtResult<()> {
    lock(&sig.0).params.push(AbiParam::new(ty(FN, type_)?));
    Ok(())
}

/// Sets the (single) return type of a signature.
///
/// # Errors
/// - InvalidArgument: unknown type code (1 i8, 2 i16, 3 i32, 4 i64, 5 f32, 6 f64, 7 bool, 8 pointer)
/// - Closed: `sig` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_sig_set_return(sig: Handle<CgSig>, type_: i64) -> RtResult<()> {
    let t = ty(FN, type_)?;
    let mut s = lock(&sig.0);
    s.returns.clear();
    s.returns.push(AbiParam::new(t));
    Ok(())
}

fn linkage(func: &'static str, code: i64) -> RtResult<Linkage> {
    Ok(match code {
        0 => Linkage::Export,
        1 => Linkage::Import,
        2 => Linkage::Local,
        _ => return Err(Error::invalid(func, "linkage must be 0 (export), 1 (import) or 2 (local)", code)),
    })
}

/// Declares a function in the module (for forward references, or linkage 1 to import a
/// host function: in a JIT module it must be named in the module's `symbols` option, or a
/// loaded rt function / process symbol when the module was made by `rt_cranelift_new_module`).
/// Returns its function id.
///
/// # Errors
/// - InvalidArgument: linkage must be 0 (export), 1 (import) or 2 (local); signature <b> differs from the declared <a>
/// - AlreadyExists: a symbol of that name is already declared differently
/// - Parse: verifier
/// - Unsupported: Cranelift cannot compile this here; register allocation failed
/// - Closed: `module` was closed; `sig` was closed
/// - LimitExceeded: function exceeds Cranelift's limits
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_declare_function(module: Handle<CgModule>, name: &str, sig: Handle<CgSig>, linkage: i64) -> RtResult<i64> {
    let l = self::linkage(FN, linkage)?;
    let s = lock(&sig.0).clone();
    let mut m = module.lock();
    if l == Linkage::Import {
        if let crate::module::Imports::Default = m.allowed {
            if m.jit.is_some() {
                m.allowed = crate::module::Imports::Names(Vec::new());
            }
        }
        if let crate::module::Imports::Names(n) = &mut m.allowed {
            if !n.iter().any(|x| x == name) {
                n.push(name.to_string());
            }
        }
        return Ok(m.import(FN, name, &s)?.as_u32() as i64);
    }
    let id = m
        .module(FN)?
        .declare_function(name, l, &s)
        .map_err(|e| crate::module::module_error(FN, name, e))?;
    Ok(id.as_u32() as i64)
}

/// Starts building a function named `name` (text, or a function id from
/// `rt_cranelift_declare_function`) with a signature; returns the function context.
///
/// # Errors
/// - InvalidArgument: no declared function with that id; a function needs a name
/// - Closed: `module` was closed; `sig` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_begin_function(module: Handle<CgModule>, name: Value, sig: Handle<CgSig>) -> RtResult<Value> {
    let s = lock(&sig.0).clone();
    let name = if let Some(t) = name.as_text() {
        t.to_string()
    } else if let Some(i) = name.as_int() {
        let mut m = module.lock();
        let md = m.module(FN)?;
        let found = md
            .declarations()
            .get_functions()
            .find(|(fid, _)| fid.as_u32() as i64 == i)
            .and_then(|(_, d)| d.name.clone());
        found.ok_or_else(|| Error::invalid(FN, "no declared function with that id", i))?
    } else {
        return Err(Error::plain(Code::TypeMismatch, FN, format!("argument 2 (name) must be text or a function id, got {}", name.describe())));
    };
    if name.is_empty() {
        return Err(Error::invalid(FN, "a function needs a name", "\"\""));
    }
    let func = Function::with_name_signature(UserFuncName::testcase(&name), s);
    Ok(new_handle(CgCtx(Mutex::new(Fctx { module: module.arc(), func, name, cur: None, staged: Vec::new(), ended: false }))))
}

/// Ends building (no more instructions); returns the context for `rt_cranelift_define_function`.
///
/// # Errors
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_end_function(ctx: Handle<CgCtx>) -> RtResult<Value> {
    lock(&ctx.0).ended = true;
    Ok(ctx.value())
}

fn define(func: &'static str, module: &CgModule, ctx: &CgCtx, name: Option<&str>) -> RtResult<bool> {
    let (mut f, fname, same) = {
        let c = lock(&ctx.0);
        (c.func.clone(), c.name.clone(), std::ptr::eq(Arc::as_ptr(&c.module), module as *const CgModule))
    };
    if !same {
        return Err(Error::invalid(func, "the function context belongs to another module", quote(&fname)));
    }
    let name = name.unwrap_or(&fname).to_string();
    let mut m = module.lock();
    if m.funcs.contains_key(&name) {
        return Err(Error::new(Code::AlreadyExists, func, "a function of that name is already defined", quote(&name)));
    }
    if let Err(errs) = cranelift_codegen::verify_function(&f, m.isa.as_ref()) {
        return Err(Error::new(Code::Parse, func, format!("verifier: {errs}"), format!("function {name}")));
    }
    crate::module::abi_precheck(func, &f, &m.isa)?;
    let id = m
        .module(func)?
        .declare_function(&name, Linkage::Export, &f.signature)
        .map_err(|e| crate::module::module_error(func, &name, e))?;
    f.name = UserFuncName::testcase(&name);
    let sig = f.signature.clone();
    m.define(func, id, f)?;
    m.funcs.insert(name, FnInfo { id, sig });
    lock(&ctx.0).ended = true;
    Ok(true)
}

/// Verifies and compiles a built function into the module under its name (`func_id` is
/// accepted for Simple's order and not needed). Returns true.
///
/// # Errors
/// - InvalidArgument: the function context belongs to another module; signature <b> differs from the declared <a>
/// - AlreadyExists: a function of that name is already defined; a symbol of that name is already declared differently
/// - Parse: verifier
/// - Unsupported: Cranelift cannot compile this here; register allocation failed
/// - Closed: `module` was closed; `ctx` was closed
/// - LimitExceeded: function exceeds Cranelift's limits
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_define_function(module: Handle<CgModule>, func_id: Value, ctx: Handle<CgCtx>) -> RtResult<bool> {
    let _ = func_id;
    define(FN, &module, &ctx, None)
}

/// As `rt_cranelift_define_function`, under `name` (Simple's AOT spelling).
///
/// # Errors
/// - InvalidArgument: the function context belongs to another module; signature <b> differs from the declared <a>
/// - AlreadyExists: a function of that name is already defined; a symbol of that name is already declared differently
/// - Parse: verifier
/// - Unsupported: Cranelift cannot compile this here; register allocation failed
/// - Closed: `module` was closed; `ctx` was closed
/// - LimitExceeded: function exceeds Cranelift's limits
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_aot_define_function(module: Handle<CgModule>, name: &str, ctx: Handle<CgCtx>) -> RtResult<bool> {
    define(FN, &module, &ctx, Some(name))
}

/// A new block (an int).
///
/// # Errors
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_create_block(ctx: Handle<CgCtx>) -> RtResult<i64> {
    Ok(lock(&ctx.0).func.dfg.make_block().as_u32() as i64)
}

/// Makes `block` the current block (placing it at the end of the function on first use).
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_switch_to_block(ctx: Handle<CgCtx>, block: i64) -> RtResult<()> {
    let mut c = lock(&ctx.0);
    let b = c.block(FN, block)?;
    if !c.func.layout.is_block_inserted(b) {
        c.func.layout.append_block(b);
    }
    c.cur = Some(b);
    Ok(())
}

/// Accepted for Simple's order: blocks here take values explicitly (no SSA variables), so
/// nothing needs sealing. Checks the block exists.
///
/// # Errors
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_seal_block(ctx: Handle<CgCtx>, block: i64) -> RtResult<()> {
    lock(&ctx.0).block(FN, block).map(|_| ())
}

/// Accepted for Simple's order (see `rt_cranelift_seal_block`).
///
/// # Errors
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_seal_all_blocks(ctx: Handle<CgCtx>) -> RtResult<()> {
    let _ = ctx;
    Ok(())
}

/// Adds a parameter of a type code to a block; returns its value.
///
/// # Errors
/// - InvalidArgument: unknown type code (1 i8, 2 i16, 3 i32, 4 i64, 5 f32, 6 f64, 7 bool, 8 pointer)
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_append_block_param(ctx: Handle<CgCtx>, block: i64, type_: i64) -> RtResult<i64> {
    let t = ty(FN, type_)?;
    let mut c = lock(&ctx.0);
    let b = c.block(FN, block)?;
    Ok(id(c.func.dfg.append_block_param(b, t)))
}

/// The value of a block's parameter `index`.
///
/// # Errors
/// - Closed: `ctx` was closed
/// - OutOfRange: block <block> has … parameters
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_block_param(ctx: Handle<CgCtx>, block: i64, index: i64) -> RtResult<i64> {
    let c = lock(&ctx.0);
    let b = c.block(FN, block)?;
    let ps = c.func.dfg.block_params(b);
    usize::try_from(index)
        .ok()
        .and_then(|i| ps.get(i))
        .map(|v| id(*v))
        .ok_or_else(|| Error::new(Code::OutOfRange, FN, format!("block {block} has {} parameters", ps.len()), index))
}

/// Gives a block (the entry block) one parameter per function parameter.
///
/// # Errors
/// - InvalidArgument: the block has parameters already
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_append_func_params(ctx: Handle<CgCtx>, block: i64) -> RtResult<()> {
    let mut c = lock(&ctx.0);
    let b = c.block(FN, block)?;
    if !c.func.dfg.block_params(b).is_empty() {
        return Err(Error::invalid(FN, "the block has parameters already", block));
    }
    for p in c.func.signature.params.clone() {
        c.func.dfg.append_block_param(b, p.value_type);
    }
    Ok(())
}

fn int_type(func: &'static str, t: Type) -> RtResult<Type> {
    if t.is_int() {
        Ok(t)
    } else {
        Err(Error::invalid(func, "an integer type is needed", t))
    }
}

/// An integer constant of a type code.
///
/// # Errors
/// - InvalidArgument: an integer type is needed; unknown type code (1 i8, 2 i16, 3 i32, 4 i64, 5 f32, 6 f64, 7 bool, 8 pointer)
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_iconst(ctx: Handle<CgCtx>, type_: i64, value: i64) -> RtResult<i64> {
    let t = int_type(FN, ty(FN, type_)?)?;
    let mut c = lock(&ctx.0);
    let v = if t.bits() < 64 { value & ((1i64 << t.bits()) - 1) } else { value };
    Ok(id(c.at(FN)?.ins().iconst(t, v)))
}

/// A float constant (type code 5 f32 or 6 f64).
///
/// # Errors
/// - InvalidArgument: fconst needs type code 5 (f32) or 6 (f64); unknown type code (1 i8, 2 i16, 3 i32, 4 i64, 5 f32, 6 f64, 7 bool, 8 pointer)
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_fconst(ctx: Handle<CgCtx>, type_: i64, value: f64) -> RtResult<i64> {
    let t = ty(FN, type_)?;
    let mut c = lock(&ctx.0);
    let mut cur = c.at(FN)?;
    Ok(id(match t {
        types::F32 => cur.ins().f32const(value as f32),
        types::F64 => cur.ins().f64const(value),
        _ => return Err(Error::invalid(FN, "fconst needs type code 5 (f32) or 6 (f64)", type_)),
    }))
}

/// A boolean constant (i8 0 or 1).
///
/// # Errors
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_bconst(ctx: Handle<CgCtx>, value: bool) -> RtResult<i64> {
    Ok(id(lock(&ctx.0).at(FN)?.ins().iconst(types::I8, value as i64)))
}

/// A zero of an integer type code (a null pointer).
///
/// # Errors
/// - InvalidArgument: an integer type is needed; unknown type code (1 i8, 2 i16, 3 i32, 4 i64, 5 f32, 6 f64, 7 bool, 8 pointer)
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_null(ctx: Handle<CgCtx>, type_: i64) -> RtResult<i64> {
    let t = int_type(FN, ty(FN, type_)?)?;
    Ok(id(lock(&ctx.0).at(FN)?.ins().iconst(t, 0)))
}

#[derive(Clone, Copy, PartialEq)]
enum K {
    Int,
    Float,
}

fn binop(func: &'static str, ctx: &CgCtx, a: i64, b: i64, k: K, f: fn(FuncCursor<'_>, ir::Value, ir::Value) -> ir::Value) -> RtResult<i64> {
    let mut c = lock(&ctx.0);
    let (x, tx) = c.vty(func, a)?;
    let (y, ty_) = c.vty(func, b)?;
    let good = match k {
        K::Int => tx.is_int(),
        K::Float => tx.is_float(),
    };
    let shift = matches!(func, "rt_cranelift_ishl" | "rt_cranelift_sshr" | "rt_cranelift_ushr");
    if !good || (!shift && tx != ty_) || (shift && !ty_.is_int()) {
        let want = if k == K::Int { "integers of one type" } else { "floats of one type" };
        return Err(Error::invalid(func, format!("operands must be {want}"), format!("{tx}, {ty_}")));
    }
    let cur = c.at(func)?;
    Ok(id(f(cur, x, y)))
}

macro_rules! binops {
    ($($name:ident, $k:expr, $m:ident, $doc:literal;)*) => {$(
        #[doc = $doc]
        ///
        /// # Errors
        /// - InvalidArgument: an operand is not a value of the function being built, the operands' types do not fit
        ///   the operation, no block is current, or the function was ended already
        /// - Closed: `ctx` was closed
        #[rt_fn(tier = "empirical")]
        pub fn $name(ctx: Handle<CgCtx>, a: i64, b: i64) -> RtResult<i64> {
            binop(FN, &ctx, a, b, $k, |mut c, x, y| c.ins().$m(x, y))
        }
    )*};
}

binops! {
    rt_cranelift_iadd, K::Int, iadd, "Integer addition (wrapping).";
    rt_cranelift_isub, K::Int, isub, "Integer subtraction (wrapping).";
    rt_cranelift_imul, K::Int, imul, "Integer multiplication (wrapping).";
    rt_cranelift_sdiv, K::Int, sdiv, "Signed division (traps on zero or overflow).";
    rt_cranelift_udiv, K::Int, udiv, "Unsigned division (traps on zero).";
    rt_cranelift_srem, K::Int, srem, "Signed remainder (traps on zero).";
    rt_cranelift_urem, K::Int, urem, "Unsigned remainder (traps on zero).";
    rt_cranelift_fadd, K::Float, fadd, "Float addition.";
    rt_cranelift_fsub, K::Float, fsub, "Float subtraction.";
    rt_cranelift_fmul, K::Float, fmul, "Float multiplication.";
    rt_cranelift_fdiv, K::Float, fdiv, "Float division.";
    rt_cranelift_band, K::Int, band, "Bitwise and.";
    rt_cranelift_bor, K::Int, bor, "Bitwise or.";
    rt_cranelift_bxor, K::Int, bxor, "Bitwise exclusive or.";
    rt_cranelift_ishl, K::Int, ishl, "Shift left (amount modulo the width).";
    rt_cranelift_sshr, K::Int, sshr, "Arithmetic shift right.";
    rt_cranelift_ushr, K::Int, ushr, "Logical shift right.";
}

/// Bitwise not.
///
/// # Errors
/// - InvalidArgument: an integer type is needed
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_bnot(ctx: Handle<CgCtx>, a: i64) -> RtResult<i64> {
    let mut c = lock(&ctx.0);
    let (x, t) = c.vty(FN, a)?;
    int_type(FN, t)?;
    Ok(id(c.at(FN)?.ins().bnot(x)))
}

/// Integer comparison (codes in the module doc); the result is an i64 0 or 1, as Simple's runtime gives.
///
/// # Errors
/// - InvalidArgument: unknown icmp condition code (0..=9); operands must be integers of one type
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_icmp(ctx: Handle<CgCtx>, cond: i64, a: i64, b: i64) -> RtResult<i64> {
    let cc = match cond {
        0 => IntCC::Equal,
        1 => IntCC::NotEqual,
        2 => IntCC::SignedLessThan,
        3 => IntCC::SignedLessThanOrEqual,
        4 => IntCC::SignedGreaterThan,
        5 => IntCC::SignedGreaterThanOrEqual,
        6 => IntCC::UnsignedLessThan,
        7 => IntCC::UnsignedLessThanOrEqual,
        8 => IntCC::UnsignedGreaterThan,
        9 => IntCC::UnsignedGreaterThanOrEqual,
        _ => return Err(Error::invalid(FN, "unknown icmp condition code (0..=9)", cond)),
    };
    let mut c = lock(&ctx.0);
    let (x, tx) = c.vty(FN, a)?;
    let (y, ty_) = c.vty(FN, b)?;
    if !tx.is_int() || tx != ty_ {
        return Err(Error::invalid(FN, "operands must be integers of one type", format!("{tx}, {ty_}")));
    }
    let mut cur = c.at(FN)?;
    let r = cur.ins().icmp(cc, x, y);
    Ok(id(cur.ins().uextend(types::I64, r)))
}

/// Float comparison (codes in the module doc); the result is an i64 0 or 1.
///
/// # Errors
/// - InvalidArgument: unknown fcmp condition code (0..=5); operands must be floats of one type
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_fcmp(ctx: Handle<CgCtx>, cond: i64, a: i64, b: i64) -> RtResult<i64> {
    let cc = match cond {
        0 => FloatCC::Equal,
        1 => FloatCC::NotEqual,
        2 => FloatCC::LessThan,
        3 => FloatCC::LessThanOrEqual,
        4 => FloatCC::GreaterThan,
        5 => FloatCC::GreaterThanOrEqual,
        _ => return Err(Error::invalid(FN, "unknown fcmp condition code (0..=5)", cond)),
    };
    let mut c = lock(&ctx.0);
    let (x, tx) = c.vty(FN, a)?;
    let (y, ty_) = c.vty(FN, b)?;
    if !tx.is_float() || tx != ty_ {
        return Err(Error::invalid(FN, "operands must be floats of one type", format!("{tx}, {ty_}")));
    }
    let mut cur = c.at(FN)?;
    let r = cur.ins().fcmp(cc, x, y);
    Ok(id(cur.ins().uextend(types::I64, r)))
}

fn offset32(func: &'static str, o: i64) -> RtResult<i32> {
    i32::try_from(o).map_err(|_| Error::new(Code::OutOfRange, func, "offset must fit 32 bits", o))
}

/// Loads a value of a type code from `addr + offset`.
///
/// # Errors
/// - InvalidArgument: address must be an i64; unknown type code (1 i8, 2 i16, 3 i32, 4 i64, 5 f32, 6 f64, 7 bool, 8 pointer)
/// - Closed: `ctx` was closed
/// - OutOfRange: offset must fit 32 bits
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_load(ctx: Handle<CgCtx>, type_: i64, addr: i64, offset: i64) -> RtResult<i64> {
    let t = ty(FN, type_)?;
    let off = offset32(FN, offset)?;
    let mut c = lock(&ctx.0);
    let (a, ta) = c.vty(FN, addr)?;
    if ta != types::I64 {
        return Err(Error::invalid(FN, "address must be an i64", ta));
    }
    Ok(id(c.at(FN)?.ins().load(t, MemFlagsData::new(), a, off)))
}

/// Stores a value to `addr + offset`.
///
/// # Errors
/// - InvalidArgument: address must be an i64
/// - Closed: `ctx` was closed
/// - OutOfRange: offset must fit 32 bits
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_store(ctx: Handle<CgCtx>, value: i64, addr: i64, offset: i64) -> RtResult<()> {
    let off = offset32(FN, offset)?;
    let mut c = lock(&ctx.0);
    let v = c.val(FN, value)?;
    let (a, ta) = c.vty(FN, addr)?;
    if ta != types::I64 {
        return Err(Error::invalid(FN, "address must be an i64", ta));
    }
    c.at(FN)?.ins().store(MemFlagsData::new(), v, a, off);
    Ok(())
}

/// A stack slot of `size` bytes aligned to `align` (a power of two ≤ 2^31); returns its number.
///
/// # Errors
/// - InvalidArgument: align must be a power of two
/// - Closed: `ctx` was closed
/// - OutOfRange: size must be 0..2^32
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_stack_slot(ctx: Handle<CgCtx>, size: i64, align: i64) -> RtResult<i64> {
    let size = u32::try_from(size).map_err(|_| Error::new(Code::OutOfRange, FN, "size must be 0..2^32", size))?;
    if align <= 0 || align & (align - 1) != 0 || align > 1 << 31 {
        return Err(Error::invalid(FN, "align must be a power of two", align));
    }
    let shift = align.trailing_zeros() as u8;
    let mut c = lock(&ctx.0);
    let s = c.func.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, size, shift));
    Ok(s.as_u32() as i64)
}

/// The address (i64) of `slot + offset`.
///
/// # Errors
/// - InvalidArgument: no such stack slot
/// - Closed: `ctx` was closed
/// - OutOfRange: offset must fit 32 bits
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_stack_addr(ctx: Handle<CgCtx>, slot: i64, offset: i64) -> RtResult<i64> {
    let off = offset32(FN, offset)?;
    let mut c = lock(&ctx.0);
    let n = c.func.sized_stack_slots.len();
    if slot < 0 || slot as usize >= n {
        return Err(Error::invalid(FN, "no such stack slot", slot));
    }
    let s = ir::StackSlot::from_u32(slot as u32);
    Ok(id(c.at(FN)?.ins().stack_addr(types::I64, s, off)))
}

fn staged_for(c: &mut Fctx, b: Block) -> Vec<ir::BlockArg> {
    if c.func.dfg.block_params(b).is_empty() {
        Vec::new()
    } else {
        c.staged.drain(..).map(ir::BlockArg::Value).collect()
    }
}

/// Jumps to `block` (a block with parameters takes the values staged with `rt_cranelift_call_arg`).
///
/// # Errors
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_jump(ctx: Handle<CgCtx>, block: i64) -> RtResult<()> {
    let mut c = lock(&ctx.0);
    let b = c.block(FN, block)?;
    let args = staged_for(&mut c, b);
    c.at(FN)?.ins().jump(b, &args);
    Ok(())
}

/// Branches to `then_block` if `cond` is non-zero, else to `else_block`.
///
/// # Errors
/// - InvalidArgument: an integer type is needed
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_brif(ctx: Handle<CgCtx>, cond: i64, then_block: i64, else_block: i64) -> RtResult<()> {
    let mut c = lock(&ctx.0);
    let (v, t) = c.vty(FN, cond)?;
    int_type(FN, t)?;
    let tb = c.block(FN, then_block)?;
    let eb = c.block(FN, else_block)?;
    c.at(FN)?.ins().brif(v, tb, &[], eb, &[]);
    Ok(())
}

/// Returns `value`.
///
/// # Errors
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_return(ctx: Handle<CgCtx>, value: i64) -> RtResult<()> {
    let mut c = lock(&ctx.0);
    let v = c.val(FN, value)?;
    c.at(FN)?.ins().return_(&[v]);
    Ok(())
}

/// Returns nothing.
///
/// # Errors
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_return_void(ctx: Handle<CgCtx>) -> RtResult<()> {
    lock(&ctx.0).at(FN)?.ins().return_(&[]);
    Ok(())
}

/// Traps with user code `code` (1..=255; a trap kills the process running the code).
///
/// # Errors
/// - Closed: `ctx` was closed
/// - OutOfRange: trap code must be 1..=255
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_trap(ctx: Handle<CgCtx>, code: i64) -> RtResult<()> {
    let tc = u8::try_from(code)
        .ok()
        .and_then(ir::TrapCode::user)
        .ok_or_else(|| Error::new(Code::OutOfRange, FN, "trap code must be 1..=255", code))?;
    lock(&ctx.0).at(FN)?.ins().trap(tc);
    Ok(())
}

/// Forgets the staged call arguments.
///
/// # Errors
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_call_args_clear(ctx: Handle<CgCtx>) -> RtResult<()> {
    lock(&ctx.0).staged.clear();
    Ok(())
}

/// Stages an argument for the next call (or jump to a block with parameters). Returns true.
///
/// # Errors
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_call_arg(ctx: Handle<CgCtx>, value: i64) -> RtResult<bool> {
    let mut c = lock(&ctx.0);
    let v = c.val(FN, value)?;
    c.staged.push(v);
    Ok(true)
}

fn call_args(func: &'static str, c: &mut Fctx, args: Value) -> RtResult<Vec<ir::Value>> {
    if args.is_array() {
        let mut out = Vec::new();
        for a in args.items() {
            let i = a.as_int().ok_or_else(|| Error::plain(Code::TypeMismatch, func, format!("args must hold value ids, got {}", a.describe())))?;
            out.push(c.val(func, i)?);
        }
        Ok(out)
    } else {
        Ok(std::mem::take(&mut c.staged))
    }
}

fn check_call_types(func: &'static str, c: &Fctx, sig: &Signature, args: &[ir::Value]) -> RtResult<()> {
    let got: Vec<Type> = args.iter().map(|v| c.func.dfg.value_type(*v)).collect();
    let want: Vec<Type> = sig.params.iter().map(|p| p.value_type).collect();
    if got != want {
        return Err(Error::invalid(func, format!("arguments {got:?} do not match the signature {sig}"), "call"));
    }
    Ok(())
}

/// Calls a function reference (from `rt_cranelift_import_function`) with `args` (an array
/// of value ids) or, when args is 0/nil as Simple passes, the staged arguments. Returns the
/// first result's value, or nil when the callee returns nothing.
///
/// # Errors
/// - InvalidArgument: no such function reference (see rt_cranelift_import_function); arguments <got> do not match the signature <sig>
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_call(ctx: Handle<CgCtx>, func: i64, args: Value, args_len: Value) -> RtResult<Value> {
    let _ = args_len;
    let mut c = lock(&ctx.0);
    let n = c.func.dfg.ext_funcs.len();
    if func < 0 || func as usize >= n {
        return Err(Error::invalid(FN, "no such function reference (see rt_cranelift_import_function)", func));
    }
    let fr = ir::FuncRef::from_u32(func as u32);
    let a = call_args(FN, &mut c, args)?;
    let sig = c.func.dfg.signatures[c.func.dfg.ext_funcs[fr].signature].clone();
    check_call_types(FN, &c, &sig, &a)?;
    let mut cur = c.at(FN)?;
    let inst = cur.ins().call(fr, &a);
    Ok(cur.func.dfg.inst_results(inst).first().map(|v| Value::int(id(*v))).unwrap_or(Value::NIL))
}

/// Calls the address `addr` (an i64 value) with a signature handle; arguments as `rt_cranelift_call`.
///
/// # Errors
/// - InvalidArgument: address must be an i64; arguments <got> do not match the signature <sig>
/// - Closed: `ctx` was closed; `sig` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_call_indirect(ctx: Handle<CgCtx>, sig: Handle<CgSig>, addr: i64, args: Value, args_len: Value) -> RtResult<Value> {
    let _ = args_len;
    let s = lock(&sig.0).clone();
    let mut c = lock(&ctx.0);
    let (p, tp) = c.vty(FN, addr)?;
    if tp != types::I64 {
        return Err(Error::invalid(FN, "address must be an i64", tp));
    }
    let a = call_args(FN, &mut c, args)?;
    check_call_types(FN, &c, &s, &a)?;
    let sr = c.func.import_signature(s);
    let mut cur = c.at(FN)?;
    let inst = cur.ins().call_indirect(sr, p, &a);
    Ok(cur.func.dfg.inst_results(inst).first().map(|v| Value::int(id(*v))).unwrap_or(Value::NIL))
}

/// Makes a declared function (id from `rt_cranelift_declare_function`) callable in this
/// function; returns the function reference for `rt_cranelift_call`.
///
/// # Errors
/// - InvalidArgument: no declared function with that id
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_import_function(ctx: Handle<CgCtx>, func_handle: i64) -> RtResult<i64> {
    let mut c = lock(&ctx.0);
    let module = c.module.clone();
    let mut m = module.lock();
    let md = m.module(FN)?;
    let fid = md
        .declarations()
        .get_functions()
        .find(|(fid, _)| fid.as_u32() as i64 == func_handle)
        .map(|(fid, _)| fid)
        .ok_or_else(|| Error::invalid(FN, "no declared function with that id", func_handle))?;
    let fr = md.declare_func_in_func(fid, &mut c.func);
    Ok(fr.as_u32() as i64)
}

/// A read-only data object holding `bytes` (8-byte aligned); returns its id for
/// `rt_cranelift_data_addr_in_func`.
///
/// # Errors
/// - InvalidArgument: signature <b> differs from the declared <a>
/// - AlreadyExists: a symbol of that name is already declared differently
/// - Parse: verifier
/// - Unsupported: Cranelift cannot compile this here; register allocation failed
/// - Closed: `module` was closed
/// - LimitExceeded: function exceeds Cranelift's limits
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_declare_string_data(module: Handle<CgModule>, bytes: &[u8]) -> RtResult<i64> {
    let mut m = module.lock();
    m.data_count += 1;
    let name = format!("__rt_data_{}", m.data_count);
    let mut d = DataDescription::new();
    d.set_align(8);
    d.define(bytes.to_vec().into_boxed_slice());
    let md = m.module(FN)?;
    let id = md.declare_data(&name, Linkage::Local, false, false).map_err(|e| crate::module::module_error(FN, &name, e))?;
    md.define_data(id, &d).map_err(|e| crate::module::module_error(FN, &name, e))?;
    m.dirty = true;
    Ok(id.as_u32() as i64)
}

/// The address (i64) of a data object in the function being built.
///
/// # Errors
/// - InvalidArgument: no data object with that id
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_data_addr_in_func(ctx: Handle<CgCtx>, data_id: i64) -> RtResult<i64> {
    let mut c = lock(&ctx.0);
    let module = c.module.clone();
    let mut m = module.lock();
    let md = m.module(FN)?;
    let did = md
        .declarations()
        .get_data_objects()
        .find(|(d, _)| d.as_u32() as i64 == data_id)
        .map(|(d, _)| d)
        .ok_or_else(|| Error::invalid(FN, "no data object with that id", data_id))?;
    let gv = md.declare_data_in_func(did, &mut c.func);
    Ok(id(c.at(FN)?.ins().symbol_value(types::I64, gv)))
}

/// The address (i64) of a function of the module, by name, in the function being built.
///
/// # Errors
/// - NotFound: no function of that name declared in the module
/// - Closed: `ctx` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cranelift_function_addr_in_func(ctx: Handle<CgCtx>, name: &str) -> RtResult<i64> {
    let mut c = lock(&ctx.0);
    let module = c.module.clone();
    let mut m = module.lock();
    let md = m.module(FN)?;
    let fid = md
        .declarations()
        .get_functions()
        .find(|(_, d)| d.name.as_deref() == Some(name))
        .map(|(fid, _)| fid)
        .ok_or_else(|| Error::not_found(FN, "no function of that name declared in the module", quote(name)))?;
    let fr = md.declare_func_in_func(fid, &mut c.func);
    Ok(id(c.at(FN)?.ins().func_addr(types::I64, fr)))
}

/// The address of a JIT-compiled function by name (as `rt_cranelift_function_address`).
///
/// # Errors
/// - Closed: `module` was closed
#[rt_fn(cap = "codegen.jit", tier = "empirical")]
pub fn rt_cranelift_get_function_ptr(module: Handle<CgModule>, name: &str) -> RtResult<i64> {
    Ok(module.lock().address(FN, name)? as i64)
}

#[derive(Clone, Copy)]
enum Conv {
    Sext,
    Uext,
    Reduce,
    Bitcast,
    ToSint,
    ToUint,
    FromSint,
    FromUint,
    Promote,
    Demote,
}

fn convert(func: &'static str, ctx: &CgCtx, to: i64, value: i64, k: Conv) -> RtResult<i64> {
    let t = ty(func, to)?;
    let mut c = lock(&ctx.0);
    let (v, f) = c.vty(func, value)?;
    let ok = match k {
        Conv::Sext | Conv::Uext => f.is_int() && t.is_int() && t.bits() > f.bits(),
        Conv::Reduce => f.is_int() && t.is_int() && t.bits() < f.bits(),
        Conv::Bitcast => f.bits() == t.bits() && f != t,
        Conv::ToSint | Conv::ToUint => f.is_float() && t.is_int() && t.bits() >= 32,
        Conv::FromSint | Conv::FromUint => f.is_int() && t.is_float(),
        Conv::Promote => f == types::F32 && t == types::F64,
        Conv::Demote => f == types::F64 && t == types::F32,
    };
    if !ok {
        return Err(Error::invalid(func, format!("cannot convert {f} to {t} this way"), value));
    }
    let mut cur = c.at(func)?;
    let ins = cur.ins();
    Ok(id(match k {
        Conv::Sext => ins.sextend(t, v),
        Conv::Uext => ins.uextend(t, v),
        Conv::Reduce => ins.ireduce(t, v),
        Conv::Bitcast => ins.bitcast(t, MemFlagsData::new(), v),
        Conv::ToSint => ins.fcvt_to_sint(t, v),
        Conv::ToUint => ins.fcvt_to_uint(t, v),
        Conv::FromSint => ins.fcvt_from_sint(t, v),
        Conv::FromUint => ins.fcvt_from_uint(t, v),
        Conv::Promote => ins.fpromote(t, v),
        Conv::Demote => ins.fdemote(t, v),
    }))
}

macro_rules! convs {
    ($($name:ident, $k:expr, $doc:literal;)*) => {$(
        #[doc = $doc]
        ///
        /// # Errors
        /// - InvalidArgument: `to_type` is not a type code, `value` is not a value of the function being built, the
        ///   conversion does not exist between the two types, no block is current, or the function was ended already
        /// - Closed: `ctx` was closed
        #[rt_fn(tier = "empirical")]
        pub fn $name(ctx: Handle<CgCtx>, to_type: i64, value: i64) -> RtResult<i64> {
            convert(FN, &ctx, to_type, value, $k)
        }
    )*};
}

convs! {
    rt_cranelift_sextend, Conv::Sext, "Sign-extends an integer to a wider type code.";
    rt_cranelift_uextend, Conv::Uext, "Zero-extends an integer to a wider type code.";
    rt_cranelift_ireduce, Conv::Reduce, "Truncates an integer to a narrower type code.";
    rt_cranelift_bitcast, Conv::Bitcast, "Reinterprets the bits as another type code of the same width.";
    rt_cranelift_fcvt_to_sint, Conv::ToSint, "Float to signed integer (i32/i64; traps on NaN or overflow).";
    rt_cranelift_fcvt_to_uint, Conv::ToUint, "Float to unsigned integer (i32/i64; traps on NaN or overflow).";
    rt_cranelift_fcvt_from_sint, Conv::FromSint, "Signed integer to float.";
    rt_cranelift_fcvt_from_uint, Conv::FromUint, "Unsigned integer to float.";
    rt_cranelift_fpromote, Conv::Promote, "f32 to f64.";
    rt_cranelift_fdemote, Conv::Demote, "f64 to f32.";
}
