//! Target facts: the host triple and the CPU features Cranelift uses here.

use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use ffi_sdk::prelude::*;

/// The host's ISA with the CPU features detected at run time and `shared` settings.
pub(crate) fn native_isa(func: &'static str, shared: settings::Builder) -> RtResult<OwnedTargetIsa> {
    let b = cranelift_native::builder().map_err(|e| Error::unsupported(func, format!("no Cranelift backend for this host: {e}")))?;
    b.finish(settings::Flags::new(shared))
        .map_err(|e| Error::unsupported(func, format!("Cranelift cannot target this host: {e}")))
}

/// Names of the boolean ISA flags that are on in `isa` (`has_avx`, `has_sse41`...).
pub(crate) fn isa_features(isa: &OwnedTargetIsa) -> Vec<String> {
    isa.isa_flags()
        .iter()
        .filter(|v| v.as_bool() == Some(true))
        .map(|v| v.name.to_string())
        .collect()
}

/// Shared settings with one value set, for callers building flags.
pub(crate) fn set_shared(b: &mut settings::Builder, name: &str, value: &str) -> Result<(), String> {
    b.set(name, value).map_err(|e| e.to_string())
}

/// The host's target triple, as Cranelift names it (e.g. `x86_64-unknown-linux-gnu`).
///
/// # Errors
/// Only the implicit codes.
///
/// # Example
/// rt_target_triple() -> "x86_64-unknown-linux-gnu"
#[rt_fn(tier = "verified")]
pub fn rt_target_triple() -> RtResult<String> {
    Ok(target_lexicon::Triple::host().to_string())
}

/// The CPU features Cranelift will use for JIT code on this host, detected at run time
/// (its ISA flags that are on, e.g. `has_sse41`, `has_avx`, `has_bmi2`), sorted.
///
/// # Errors
/// - Unsupported: no Cranelift backend for this host; Cranelift cannot target this host
#[rt_fn(tier = "empirical")]
pub fn rt_target_features() -> RtResult<Vec<String>> {
    let isa = native_isa(FN, settings::builder())?;
    let mut v = isa_features(&isa);
    v.sort();
    Ok(v)
}
