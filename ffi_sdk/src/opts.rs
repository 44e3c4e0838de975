//! Options dicts: the one style every domain uses for optional settings
//! (`rt_process_run(program, args, opts)`, `rt_gzip_compress(data, opts)`...).
//! Nil means "all defaults". Unknown keys are Error InvalidArgument, so a
//! misspelt option never goes silently unused.

use crate::error::{Error, RtResult};
use crate::value::Value;
use crate::{FromArg, TypeDesc};

/// An optional dict of settings, read by key.
#[derive(Clone, Copy, Debug)]
pub struct Opts {
    dict: Value,
    func: &'static str,
}

impl<'a> FromArg<'a> for Opts {
    const TY: TypeDesc = TypeDesc { name: "dict", sub: "", optional: true };
    fn from_arg(v: u64, func: &'static str, idx: usize, name: &'static str) -> RtResult<Self> {
        let val = Value::from_raw(v);
        if val.is_nil() || val.is_dict() {
            Ok(Opts { dict: val, func })
        } else {
            Err(crate::args::kind_error(func, idx, name, "dict or nil", val))
        }
    }
}

impl Opts {
    /// Options for `func` from a dict or nil.
    pub fn new(func: &'static str, dict: Value) -> Opts {
        Opts { dict, func }
    }
    /// Error InvalidArgument naming the first key not in `known`.
    pub fn only(&self, known: &[&str]) -> RtResult<()> {
        for (k, _) in self.dict.entries() {
            let name = k.as_text().unwrap_or("");
            if !known.contains(&name) {
                return Err(Error::invalid(
                    self.func,
                    format!("unknown option (known: {})", known.join(", ")),
                    k.describe(),
                ));
            }
        }
        Ok(())
    }
    /// The raw value of `key` (nil when absent).
    pub fn get(&self, key: &str) -> Value {
        self.dict.get(key)
    }
    fn typed<T>(&self, key: &str, want: &str, f: impl Fn(Value) -> Option<T>) -> RtResult<Option<T>> {
        let v = self.get(key);
        if v.is_nil() {
            return Ok(None);
        }
        f(v).map(Some)
            .ok_or_else(|| Error::invalid(self.func, format!("option {key} must be {want}"), v.describe()))
    }
    pub fn int(&self, key: &str) -> RtResult<Option<i64>> {
        self.typed(key, "int", Value::as_int)
    }
    /// An int within `lo..=hi`.
    pub fn int_in(&self, key: &str, lo: i64, hi: i64) -> RtResult<Option<i64>> {
        match self.int(key)? {
            Some(i) if i < lo || i > hi => {
                Err(Error::invalid(self.func, format!("option {key} must be in {lo}..={hi}"), i))
            }
            x => Ok(x),
        }
    }
    pub fn float(&self, key: &str) -> RtResult<Option<f64>> {
        self.typed(key, "float", |v| v.as_float().or_else(|| v.as_int().map(|i| i as f64)))
    }
    pub fn bool(&self, key: &str) -> RtResult<Option<bool>> {
        self.typed(key, "bool", Value::as_bool)
    }
    pub fn text(&self, key: &str) -> RtResult<Option<&'static str>> {
        self.typed(key, "text", Value::as_text)
    }
    pub fn bytes(&self, key: &str) -> RtResult<Option<&'static [u8]>> {
        self.typed(key, "bytes or text", Value::as_text_or_bytes)
    }
    /// An array of texts.
    pub fn texts(&self, key: &str) -> RtResult<Option<Vec<String>>> {
        let v = self.get(key);
        if v.is_nil() {
            return Ok(None);
        }
        Vec::<String>::from_arg(v.raw(), self.func, 0, "option").map(Some).map_err(|_| {
            Error::invalid(self.func, format!("option {key} must be an array of text"), v.describe())
        })
    }
    /// A dict of text to text, in insertion order.
    pub fn text_map(&self, key: &str) -> RtResult<Option<Vec<(String, String)>>> {
        let v = self.get(key);
        if v.is_nil() {
            return Ok(None);
        }
        let bad = || Error::invalid(self.func, format!("option {key} must be a dict of text to text"), v.describe());
        if !v.is_dict() {
            return Err(bad());
        }
        let mut out = Vec::new();
        for (k, val) in v.entries() {
            match (k.as_text(), val.as_text()) {
                (Some(k), Some(val)) => out.push((k.to_string(), val.to_string())),
                _ => return Err(bad()),
            }
        }
        Ok(Some(out))
    }
    /// A dict of text to text-or-nil, in insertion order (environment style: nil removes).
    pub fn env_map(&self, key: &str) -> RtResult<Option<Vec<(String, Option<String>)>>> {
        let v = self.get(key);
        if v.is_nil() {
            return Ok(None);
        }
        let bad = || Error::invalid(self.func, format!("option {key} must be a dict of text to text or nil"), v.describe());
        if !v.is_dict() {
            return Err(bad());
        }
        let mut out = Vec::new();
        for (k, val) in v.entries() {
            let k = k.as_text().ok_or_else(bad)?;
            let val = if val.is_nil() { None } else { Some(val.as_text().ok_or_else(bad)?.to_string()) };
            out.push((k.to_string(), val));
        }
        Ok(Some(out))
    }
}
