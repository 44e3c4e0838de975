//! The parameter list of a kernel, read from PTX text (`.entry name(.param
//! .u64 a, .param .f32 b, ...)`), so kernel arguments are checked and
//! converted before the launch.

/// The declared type of one kernel parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// Unsigned, signed or untyped integer of `bits` (8, 16, 32, 64).
    U(u32),
    S(u32),
    B(u32),
    F32,
    F64,
    /// Anything else (`.f16`, by-value arrays and structs): not passed.
    Other,
}

impl Param {
    pub fn size(self) -> usize {
        match self {
            Param::U(b) | Param::S(b) | Param::B(b) => (b / 8) as usize,
            Param::F32 => 4,
            Param::F64 => 8,
            Param::Other => 0,
        }
    }
    pub fn name(self) -> String {
        match self {
            Param::U(b) => format!(".u{b}"),
            Param::S(b) => format!(".s{b}"),
            Param::B(b) => format!(".b{b}"),
            Param::F32 => ".f32".into(),
            Param::F64 => ".f64".into(),
            Param::Other => "an unsupported type".into(),
        }
    }
}

fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && i + 1 < b.len() && b[i + 1] == b'/' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && i + 1 < b.len() && b[i + 1] == b'*' {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else {
            // Copy one UTF-8 character.
            let ch = src[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    out
}

/// Names of the kernels (`.entry`) in `ptx`, in order.
pub fn entries(ptx: &str) -> Vec<String> {
    let src = strip_comments(ptx);
    let mut out = Vec::new();
    let mut rest = src.as_str();
    while let Some(i) = rest.find(".entry") {
        rest = &rest[i + 6..];
        let name: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.'))
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

/// The parameter types of kernel `name`, or None when `ptx` has no such `.entry`.
pub fn params(ptx: &str, name: &str) -> Option<Vec<Param>> {
    let src = strip_comments(ptx);
    let mut rest = src.as_str();
    while let Some(i) = rest.find(".entry") {
        rest = &rest[i + 6..];
        let after = rest.trim_start();
        let Some(tail) = after.strip_prefix(name) else { continue };
        let tail = tail.trim_start();
        if !tail.starts_with('(') {
            // A longer name with this prefix, or an entry without a parameter list.
            if tail.starts_with('{') || tail.starts_with('.') && !tail.starts_with(".entry") {
                return Some(Vec::new());
            }
            continue;
        }
        let close = tail.find(')')?;
        let list = &tail[1..close];
        let mut out = Vec::new();
        for p in list.split(',') {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let toks: Vec<&str> = p.split_whitespace().collect();
            let mut ty = Param::Other;
            let mut k = 0;
            while k < toks.len() {
                let t = toks[k];
                if t == ".align" {
                    k += 2;
                    continue;
                }
                let parsed = match t {
                    ".u8" => Some(Param::U(8)),
                    ".u16" => Some(Param::U(16)),
                    ".u32" => Some(Param::U(32)),
                    ".u64" => Some(Param::U(64)),
                    ".s8" => Some(Param::S(8)),
                    ".s16" => Some(Param::S(16)),
                    ".s32" => Some(Param::S(32)),
                    ".s64" => Some(Param::S(64)),
                    ".b8" => Some(Param::B(8)),
                    ".b16" => Some(Param::B(16)),
                    ".b32" => Some(Param::B(32)),
                    ".b64" => Some(Param::B(64)),
                    ".f32" => Some(Param::F32),
                    ".f64" => Some(Param::F64),
                    ".f16" | ".f16x2" | ".bf16" => Some(Param::Other),
                    _ => None,
                };
                if let Some(pt) = parsed {
                    ty = pt;
                    // The name follows; `name[N]` is a by-value array or struct.
                    if toks.get(k + 1).is_some_and(|n| n.contains('[')) {
                        ty = Param::Other;
                    }
                    break;
                }
                k += 1;
            }
            out.push(ty);
        }
        return Some(out);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const VADD: &str = r#"
.version 7.0
.target sm_50
.address_size 64
// a comment .entry fake(
.visible .entry vadd(
	.param .u64 vadd_param_0,
	.param .u64 .ptr .global .align 4 vadd_param_1,
	.param .u64 vadd_param_2,
	.param .u32 vadd_param_3,
	.param .f32 vadd_param_4,
	.param .align 8 .b8 vadd_param_5[16]
)
{ ret; }
.visible .entry vadd2()
{ ret; }
"#;

    #[test]
    fn reads_entry_params() {
        assert_eq!(entries(VADD), vec!["vadd", "vadd2"]);
        assert_eq!(
            params(VADD, "vadd").unwrap(),
            vec![Param::U(64), Param::U(64), Param::U(64), Param::U(32), Param::F32, Param::Other]
        );
        assert_eq!(params(VADD, "vadd2").unwrap(), vec![]);
        assert!(params(VADD, "vad").is_none());
        assert!(params(VADD, "fake").is_none());
        assert!(params(VADD, "nope").is_none());
    }
}
