//! The registry and ABI description as the runtime serves them
//! (`rt_registry_json`, `rt_abi_info_json`), parsed into plain structs.
//! Everything the tool prints or generates comes from here.

use serde_json::Value as Json;
use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct Param {
    pub name: String,
    /// Registry vocabulary: `int`, `text?`, `array<text>`, `handle<Regex>`, ...
    pub ty: String,
    /// C type (host-surface entries only).
    pub ctype: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub name: String,
    pub domain: String,
    pub doc: String,
    pub params: Vec<Param>,
    pub returns: String,
    pub arity: usize,
    pub capability: Option<String>,
    pub scoped: bool,
    pub blocking: bool,
    pub tier: String,
    pub host: bool,
    pub signature: String,
    pub c_returns: Option<String>,
}

impl Entry {
    /// The doc's first paragraph on one line (the summary).
    pub fn summary(&self) -> String {
        self.doc.lines().map(str::trim).take_while(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
    }

    /// `fs.read (scoped)`, `sys.info`, or `none`.
    pub fn cap_text(&self) -> String {
        match &self.capability {
            Some(c) if self.scoped => format!("{c} (scoped)"),
            Some(c) => c.clone(),
            None => "none".into(),
        }
    }

    /// The C prototype without the trailing `;`: `RtValue rt_x(RtValue path)`,
    /// `const uint8_t *rt_string_ptr(RtValue v)`, `RtValue rt_dict_new(void)`.
    pub fn c_prototype(&self) -> String {
        let ret = if self.host { self.c_returns.clone().unwrap_or_else(|| "RtValue".into()) } else { "RtValue".into() };
        let params = if self.params.is_empty() {
            "void".to_string()
        } else {
            self.params
                .iter()
                .map(|p| {
                    let ct = if self.host { p.ctype.clone().unwrap_or_else(|| "RtValue".into()) } else { "RtValue".into() };
                    c_decl(&ct, &c_ident(&p.name))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        c_decl(&ret, &format!("{}({params})", self.name))
    }
}

/// `const uint8_t *` + `p` -> `const uint8_t *p`; `size_t` + `n` -> `size_t n`.
pub fn c_decl(ctype: &str, name: &str) -> String {
    if ctype.ends_with('*') {
        format!("{ctype}{name}")
    } else {
        format!("{ctype} {name}")
    }
}

/// Words that cannot be C/C++ parameter names (keywords, and macros a host's
/// headers or GNU mode may define).
const C_RESERVED: &[&str] = &[
    "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break", "case", "catch",
    "char", "char16_t", "char32_t", "char8_t", "class", "co_await", "co_return", "co_yield", "compl", "concept",
    "const", "const_cast", "consteval", "constexpr", "constinit", "continue", "decltype", "default", "delete",
    "do", "double", "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false", "float", "for",
    "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace", "new", "noexcept", "not", "not_eq",
    "nullptr", "operator", "or", "or_eq", "private", "protected", "public", "register", "reinterpret_cast",
    "requires", "restrict", "return", "short", "signed", "sizeof", "static", "static_assert", "static_cast",
    "struct", "switch", "template", "this", "thread_local", "throw", "true", "try", "typedef", "typeid",
    "typename", "union", "unsigned", "using", "virtual", "void", "volatile", "wchar_t", "while", "xor", "xor_eq",
    "errno", "linux", "unix", "i386", "NULL", "EOF", "assert", "offsetof", "stdin", "stdout", "stderr",
];

/// A parameter name usable in C and C++ (`default` -> `default_`).
pub fn c_ident(name: &str) -> String {
    if C_RESERVED.contains(&name) || name.starts_with("__") {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    /// Sorted by domain, then name.
    pub entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
}

fn field<'a>(o: &'a Json, key: &str, ctx: &str) -> Result<&'a Json, String> {
    o.get(key).ok_or_else(|| format!("{ctx}: missing field `{key}`"))
}

fn str_field(o: &Json, key: &str, ctx: &str) -> Result<String, String> {
    field(o, key, ctx)?.as_str().map(str::to_string).ok_or_else(|| format!("{ctx}: field `{key}` is not a string"))
}

fn bool_field(o: &Json, key: &str, ctx: &str) -> Result<bool, String> {
    field(o, key, ctx)?.as_bool().ok_or_else(|| format!("{ctx}: field `{key}` is not a bool"))
}

fn u64_field(o: &Json, key: &str, ctx: &str) -> Result<u64, String> {
    field(o, key, ctx)?.as_u64().ok_or_else(|| format!("{ctx}: field `{key}` is not an unsigned integer"))
}

fn i64_field(o: &Json, key: &str, ctx: &str) -> Result<i64, String> {
    field(o, key, ctx)?.as_i64().ok_or_else(|| format!("{ctx}: field `{key}` is not an integer"))
}

fn opt_str(o: &Json, key: &str, ctx: &str) -> Result<Option<String>, String> {
    match o.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{ctx}: field `{key}` is not a string or null")),
    }
}

fn array_field<'a>(o: &'a Json, key: &str, ctx: &str) -> Result<&'a Vec<Json>, String> {
    field(o, key, ctx)?.as_array().ok_or_else(|| format!("{ctx}: field `{key}` is not an array"))
}

impl Registry {
    pub fn parse(text: &str) -> Result<Registry, String> {
        let j: Json = serde_json::from_str(text).map_err(|e| format!("rt_registry_json is not valid JSON: {e}"))?;
        let arr = j.as_array().ok_or("rt_registry_json is not a JSON array")?;
        let mut entries = Vec::with_capacity(arr.len());
        for (i, o) in arr.iter().enumerate() {
            let ctx0 = format!("registry entry {i}");
            let name = str_field(o, "name", &ctx0)?;
            let ctx = format!("registry entry {i} ({name})");
            let mut params = Vec::new();
            for (k, p) in array_field(o, "params", &ctx)?.iter().enumerate() {
                let pctx = format!("{ctx}, parameter {k}");
                params.push(Param {
                    name: str_field(p, "name", &pctx)?,
                    ty: str_field(p, "type", &pctx)?,
                    ctype: opt_str(p, "ctype", &pctx)?,
                });
            }
            let e = Entry {
                domain: str_field(o, "domain", &ctx)?,
                doc: str_field(o, "doc", &ctx)?,
                returns: str_field(o, "returns", &ctx)?,
                arity: u64_field(o, "arity", &ctx)? as usize,
                capability: opt_str(o, "capability", &ctx)?.filter(|c| !c.is_empty()),
                scoped: bool_field(o, "scoped", &ctx)?,
                blocking: bool_field(o, "blocking", &ctx)?,
                tier: str_field(o, "tier", &ctx)?,
                host: bool_field(o, "host", &ctx)?,
                signature: str_field(o, "signature", &ctx)?,
                c_returns: opt_str(o, "c_returns", &ctx)?,
                params,
                name,
            };
            if e.arity != e.params.len() {
                return Err(format!("{ctx}: arity {} but {} parameters", e.arity, e.params.len()));
            }
            entries.push(e);
        }
        entries.sort_by(|a, b| (&a.domain, &a.name).cmp(&(&b.domain, &b.name)));
        let mut by_name = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if by_name.insert(e.name.clone(), i).is_some() {
                return Err(format!("the registry lists {} twice", e.name));
            }
        }
        Ok(Registry { entries, by_name })
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    /// Domain names in sorted order.
    pub fn domains(&self) -> Vec<String> {
        let mut d: Vec<String> = self.entries.iter().map(|e| e.domain.clone()).collect();
        d.sort();
        d.dedup();
        d
    }

    /// Domain-style entries (host = false) of one domain, sorted by name.
    pub fn domain_fns<'a>(&'a self, domain: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| !e.host && e.domain == domain)
    }

    pub fn host_fns(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.host)
    }
}

#[derive(Debug, Clone, Default)]
pub struct ErrorCode {
    pub code: u32,
    pub name: String,
    pub doc: String,
}

#[derive(Debug, Clone, Default)]
pub struct Abi {
    pub major: u32,
    pub minor: u32,
    /// Tag name -> value, in the order served.
    pub tags: Vec<(String, u64)>,
    pub specials: Vec<(String, u64)>,
    pub inline_int_min: i64,
    pub inline_int_max: i64,
    pub kinds: Vec<(String, u32)>,
    pub errors: Vec<ErrorCode>,
    /// Capability name and scope family (`path`, `name`, `host`, `none`).
    pub capabilities: Vec<(String, String)>,
}

impl Abi {
    pub fn parse(text: &str) -> Result<Abi, String> {
        let ctx = "rt_abi_info_json";
        let j: Json = serde_json::from_str(text).map_err(|e| format!("{ctx} is not valid JSON: {e}"))?;
        let pairs = |key: &str| -> Result<Vec<(String, u64)>, String> {
            let o = field(&j, key, ctx)?.as_object().ok_or_else(|| format!("{ctx}: `{key}` is not an object"))?;
            o.iter()
                .map(|(k, v)| {
                    v.as_u64().map(|n| (k.clone(), n)).ok_or_else(|| format!("{ctx}: `{key}.{k}` is not an integer"))
                })
                .collect()
        };
        let mut kinds = Vec::new();
        for k in array_field(&j, "kinds", ctx)? {
            kinds.push((str_field(k, "name", "kind")?, u64_field(k, "value", "kind")? as u32));
        }
        let mut errors = Vec::new();
        for e in array_field(&j, "errors", ctx)? {
            errors.push(ErrorCode {
                code: u64_field(e, "code", "error code")? as u32,
                name: str_field(e, "name", "error code")?,
                doc: str_field(e, "doc", "error code")?,
            });
        }
        let mut capabilities = Vec::new();
        for c in array_field(&j, "capabilities", ctx)? {
            capabilities.push((str_field(c, "name", "capability")?, str_field(c, "scope", "capability")?));
        }
        let abi = Abi {
            major: u64_field(&j, "abi_major", ctx)? as u32,
            minor: u64_field(&j, "abi_minor", ctx)? as u32,
            tags: pairs("tags")?,
            specials: pairs("specials")?,
            inline_int_min: i64_field(&j, "inline_int_min", ctx)?,
            inline_int_max: i64_field(&j, "inline_int_max", ctx)?,
            kinds,
            errors,
            capabilities,
        };
        if abi.inline_int_max <= 0 || (abi.inline_int_max as u64).wrapping_add(1).count_ones() != 1 {
            return Err(format!("{ctx}: inline_int_max {} is not 2^k - 1", abi.inline_int_max));
        }
        Ok(abi)
    }

    pub fn kind_name(&self, k: u32) -> &str {
        self.kinds.iter().find(|(_, v)| *v == k).map_or("invalid", |(n, _)| n.as_str())
    }

    pub fn special(&self, name: &str) -> Option<u64> {
        self.specials.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// Number of tag bits, derived from the inline int range (61-bit ints -> 3 bits).
    pub fn tag_bits(&self) -> u32 {
        let value_bits = (self.inline_int_max as u64 + 1).trailing_zeros() + 1;
        64 - value_bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_prototypes() {
        let mut e = Entry { name: "rt_x".into(), host: false, ..Default::default() };
        assert_eq!(e.c_prototype(), "RtValue rt_x(void)");
        e.params.push(Param { name: "default".into(), ty: "int".into(), ctype: None });
        assert_eq!(e.c_prototype(), "RtValue rt_x(RtValue default_)");
        e.host = true;
        e.c_returns = Some("const uint8_t *".into());
        e.params[0].ctype = Some("uint32_t *".into());
        assert_eq!(e.c_prototype(), "const uint8_t *rt_x(uint32_t *default_)");
    }

    #[test]
    fn registry_parse_reports_missing_fields() {
        let err = Registry::parse(r#"[{"name":"rt_x"}]"#).expect_err("incomplete");
        assert!(err.contains("registry entry 0 (rt_x)") && err.contains("missing field"), "{err}");
    }
}
