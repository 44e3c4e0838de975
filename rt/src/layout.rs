//! The heap-object layout, read from `ffi_sdk/src/abi.rs` (the one place it
//! is defined) so the header's informative structs cannot drift from it:
//! a change there makes `rt gen --check` fail until the header is regenerated.
//!
//! Reads `pub const HK_*` / `HEAP_MAGIC` and the `#[repr(C)] pub struct`s
//! named `Header`, `*Obj` and `HandleVTable` (the registry's own structs are
//! Rust-internal and left out). An unknown field type is an error, so a new
//! one gets a mapping here instead of a wrong C declaration.

#[derive(Debug, Clone)]
pub struct Const {
    pub name: String,
    pub value: String,
    pub doc: String,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub rust_ty: String,
    pub doc: String,
}

#[derive(Debug, Clone)]
pub struct Struct {
    pub name: String,
    pub doc: String,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub consts: Vec<Const>,
    pub structs: Vec<Struct>,
}

fn wanted_struct(name: &str) -> bool {
    name == "Header" || name == "HandleVTable" || name.ends_with("Obj")
}

pub fn parse(src: &str) -> Result<Layout, String> {
    let mut lay = Layout::default();
    let mut doc: Vec<String> = Vec::new();
    let mut repr_c = false;
    let mut lines = src.lines().enumerate();
    while let Some((ln, raw)) = lines.next() {
        let l = raw.trim();
        if let Some(d) = l.strip_prefix("///") {
            doc.push(d.trim().to_string());
            continue;
        }
        if l == "#[repr(C)]" {
            repr_c = true;
            continue;
        }
        if l.starts_with("#[") {
            continue;
        }
        if let Some(rest) = l.strip_prefix("pub const ") {
            // pub const NAME: TYPE = VALUE;
            if let (Some((name, rhs)), true) = (rest.split_once(':'), rest.ends_with(';')) {
                let name = name.trim();
                if name.starts_with("HK_") || name == "HEAP_MAGIC" {
                    let value = rhs
                        .split_once('=')
                        .map(|(_, v)| v.trim().trim_end_matches(';').replace('_', ""))
                        .ok_or_else(|| format!("line {}: constant {name} has no value", ln + 1))?;
                    if !value.chars().all(|c| c.is_ascii_hexdigit() || c == 'x') {
                        return Err(format!("line {}: constant {name} = {value} is not a number", ln + 1));
                    }
                    lay.consts.push(Const { name: name.to_string(), value, doc: doc.join(" ") });
                }
            }
        } else if let Some(rest) = l.strip_prefix("pub struct ") {
            let name = rest.trim_end_matches('{').trim().to_string();
            if repr_c && wanted_struct(&name) && rest.ends_with('{') {
                let sdoc = doc.join(" ");
                let mut fields = Vec::new();
                let mut fdoc: Vec<String> = Vec::new();
                loop {
                    let Some((fl, fraw)) = lines.next() else {
                        return Err(format!("struct {name}: no closing brace"));
                    };
                    let f = fraw.trim();
                    if f == "}" {
                        break;
                    }
                    if let Some(d) = f.strip_prefix("///") {
                        fdoc.push(d.trim().to_string());
                        continue;
                    }
                    if f.is_empty() || f.starts_with("//") || f.starts_with("#[") {
                        continue;
                    }
                    let body = f.strip_prefix("pub ").unwrap_or(f).trim_end_matches(',');
                    let (fname, fty) =
                        body.split_once(':').ok_or_else(|| format!("line {}: cannot read field {f:?}", fl + 1))?;
                    fields.push(Field {
                        name: fname.trim().to_string(),
                        rust_ty: fty.trim().to_string(),
                        doc: fdoc.join(" "),
                    });
                    fdoc.clear();
                }
                lay.structs.push(Struct { name, doc: sdoc, fields });
            }
        }
        doc.clear();
        repr_c = false;
    }
    for want in ["Header", "BlobObj", "ArrayObj", "DictObj", "ErrorObj", "HandleObj"] {
        if !lay.structs.iter().any(|s| s.name == want) {
            return Err(format!("no #[repr(C)] struct {want} found"));
        }
    }
    // Every field must map to C now, not at rendering time.
    for s in &lay.structs {
        for f in &s.fields {
            c_members(&lay, f).map_err(|e| format!("struct {}, field {}: {e}", s.name, f.name))?;
        }
    }
    Ok(lay)
}

/// C name of a layout struct: `Header` -> `RtHeader`.
pub fn c_struct_name(rust: &str) -> String {
    format!("Rt{rust}")
}

fn c_type(lay: &Layout, t: &str) -> Result<String, String> {
    let t = t.trim();
    if let Some(inner) = t.strip_prefix("*mut ") {
        return Ok(format!("{} *", c_type(lay, inner)?));
    }
    if let Some(inner) = t.strip_prefix("*const ") {
        return Ok(if inner.trim() == "()" { "const void *".into() } else { format!("const {} *", c_type(lay, inner)?) });
    }
    Ok(match t {
        "u8" => "uint8_t".into(),
        "u32" => "uint32_t".into(),
        "u64" => "uint64_t".into(),
        "i32" => "int32_t".into(),
        "i64" => "int64_t".into(),
        "f64" => "double".into(),
        "usize" => "size_t".into(),
        "bool" => "bool".into(),
        "RtValue" => "RtValue".into(),
        "AtomicU32" => "uint32_t".into(),
        "AtomicU64" => "uint64_t".into(),
        "()" => "void".into(),
        other if lay.structs.iter().any(|s| s.name == other) || wanted_struct(other) => {
            format!("struct {}", c_struct_name(other))
        }
        other => return Err(format!("no C mapping for the Rust type `{other}` (add one in rt/src/layout.rs)")),
    })
}

fn decl(ty: &str, name: &str) -> String {
    if ty.ends_with('*') {
        format!("{ty}{name}")
    } else {
        format!("{ty} {name}")
    }
}

/// The C member declarations (without `;`) for one field, and a note.
pub fn c_members(lay: &Layout, f: &Field) -> Result<(Vec<String>, Option<String>), String> {
    let t = f.rust_ty.as_str();
    if t == "&'static str" {
        return Ok((
            vec![format!("const uint8_t *{}_ptr", f.name), format!("size_t {}_len", f.name)],
            Some("a Rust &str: pointer, then length".into()),
        ));
    }
    if let Some(inner) = t.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        if let Some((elem, n)) = inner.split_once(';') {
            if n.trim() == "0" {
                return Ok((vec![], Some(format!("{} {}[]: the data follows the struct", c_type(lay, elem)?, f.name))));
            }
            return Ok((vec![format!("{} {}[{}]", c_type(lay, elem)?, f.name, n.trim())], None));
        }
    }
    let fnty = t.strip_prefix("unsafe ").unwrap_or(t);
    if let Some(sig) = fnty.strip_prefix("extern \"C\" fn(") {
        let (args, ret) = match sig.rsplit_once(") -> ") {
            Some((a, r)) => (a, c_type(lay, r)?),
            None => (sig.strip_suffix(')').ok_or_else(|| format!("cannot read `{t}`"))?, "void".into()),
        };
        let args: Vec<String> = if args.trim().is_empty() {
            vec!["void".into()]
        } else {
            args.split(',').map(|a| c_type(lay, a)).collect::<Result<_, _>>()?
        };
        return Ok((vec![format!("{ret} (*{})({})", f.name, args.join(", "))], None));
    }
    let note = if t.starts_with("Atomic") { Some("atomic".to_string()) } else { None };
    Ok((vec![decl(&c_type(lay, t)?, &f.name)], note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_real_abi_rs() {
        let src = include_str!("../../ffi_sdk/src/abi.rs");
        let lay = parse(src).expect("abi.rs parses");
        let h = lay.structs.iter().find(|s| s.name == "Header").expect("Header");
        assert_eq!(h.fields[0].name, "kind");
        assert!(lay.consts.iter().any(|c| c.name == "HEAP_MAGIC" && c.value == "0x52540000"));
        assert!(!lay.structs.iter().any(|s| s.name == "Entry"), "registry structs stay out");
    }

    #[test]
    fn maps_field_types_and_refuses_unknown_ones() {
        let src = "#[repr(C)]\npub struct FooObj {\n    /// doc\n    pub a: *mut RtValue,\n    pub f: unsafe extern \"C\" fn(*const ()),\n    pub s: &'static str,\n    pub d: [u8; 0],\n}\n";
        let lay = parse(src).expect_err("Header etc. are required");
        assert!(lay.contains("no #[repr(C)] struct Header"), "{lay}");
        let full = format!(
            "{src}#[repr(C)]\npub struct Header {{\n pub kind: u32,\n}}\n{}",
            ["BlobObj", "ArrayObj", "DictObj", "ErrorObj", "HandleObj"]
                .iter()
                .map(|n| format!("#[repr(C)]\npub struct {n} {{\n pub h: Header,\n}}\n"))
                .collect::<String>()
        );
        let lay = parse(&full).expect("parses");
        let foo = &lay.structs[0];
        let m: Vec<Vec<String>> = foo.fields.iter().map(|f| c_members(&lay, f).expect("maps").0).collect();
        assert_eq!(m[0], vec!["RtValue *a"]);
        assert_eq!(m[1], vec!["void (*f)(const void *)"]);
        assert_eq!(m[2], vec!["const uint8_t *s_ptr", "size_t s_len"]);
        assert!(m[3].is_empty());
        let bad = full.replace("pub kind: u32", "pub kind: HashMap<u32, u32>");
        assert!(parse(&bad).expect_err("refused").contains("no C mapping"));
    }
}
