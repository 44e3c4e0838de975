//! ffi_crypto through its exports: NIST CAVP SHA vectors, RFC 9106 Argon2
//! vectors, xxHash reference values, streaming handles, bad input.

#![deny(clippy::undocumented_unsafe_blocks)]

use ffi_crypto::argon2::*;
use ffi_crypto::hash::*;
use ffi_crypto::sha::*;
use ffi_crypto::stream::*;
use ffi_sdk::abi::RtValue;
use ffi_sdk::testing::{bytes, err, int, ok, text, NIL};
use ffi_sdk::{Code, Value};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn vectors(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// (message, digest) pairs of a CAVP ShortMsg/LongMsg file.
fn msg_vectors(name: &str) -> Vec<(Vec<u8>, String)> {
    let mut out = Vec::new();
    let (mut len, mut msg) = (0usize, Vec::new());
    for line in vectors(name).lines() {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("Len = ") {
            len = v.parse().unwrap();
        } else if let Some(v) = line.strip_prefix("Msg = ") {
            msg = unhex(v);
            msg.truncate(len / 8);
        } else if let Some(v) = line.strip_prefix("MD = ") {
            out.push((std::mem::take(&mut msg), v.to_string()));
        }
    }
    out
}

fn hex_of(v: RtValue) -> String {
    ok(v).as_text().unwrap().to_string()
}

#[test]
fn sha_cavp_short_and_long_messages() {
    let mut total = 0;
    for (file, f_hex, f_bytes) in [
        ("SHA256ShortMsg.rsp", rt_sha256_hash as extern "C" fn(RtValue) -> RtValue, rt_sha256_bytes as extern "C" fn(RtValue) -> RtValue),
        ("SHA256LongMsg.rsp", rt_sha256_hash, rt_sha256_bytes),
        ("SHA1ShortMsg.rsp", rt_sha1_hash, rt_sha1_bytes),
        ("SHA1LongMsg.rsp", rt_sha1_hash, rt_sha1_bytes),
    ] {
        let vs = msg_vectors(file);
        assert!(vs.len() >= 64, "{file}: only {} vectors parsed", vs.len());
        for (msg, md) in &vs {
            assert_eq!(hex_of(f_hex(bytes(msg))), *md, "{file} len {}", msg.len());
            assert_eq!(ok(f_bytes(bytes(msg))).as_bytes().unwrap(), unhex(md).as_slice());
            // Streaming in uneven pieces gives the same digest.
            let alg = if file.starts_with("SHA256") { "sha256" } else { "sha1" };
            let h = ok(rt_hasher_new(text(alg), NIL));
            for piece in msg.chunks(msg.len() / 3 + 1) {
                ok(rt_hasher_update(h.raw(), bytes(piece)));
            }
            assert_eq!(hex_of(rt_hasher_finish(h.raw())), *md);
            total += 1;
        }
    }
    assert!(total >= 4 * 64, "{total}");
}

/// SHAVS Monte Carlo: 100 checkpoints of 1000 chained digests each.
fn monte(file: &str, f: fn(&[u8]) -> Vec<u8>) {
    let text_ = vectors(file);
    let mut seed = Vec::new();
    let mut expected = Vec::new();
    for line in text_.lines() {
        if let Some(v) = line.trim().strip_prefix("Seed = ") {
            seed = unhex(v);
        } else if let Some(v) = line.trim().strip_prefix("MD = ") {
            expected.push(v.to_string());
        }
    }
    assert_eq!(expected.len(), 100);
    for want in expected {
        let (mut a, mut b, mut c) = (seed.clone(), seed.clone(), seed.clone());
        for _ in 0..1000 {
            let m = [a.as_slice(), b.as_slice(), c.as_slice()].concat();
            let d = f(&m);
            a = b;
            b = c;
            c = d;
        }
        assert_eq!(ffi_crypto::sha::hex(&c), want, "{file}");
        seed = c;
    }
}

#[test]
fn sha_cavp_monte_carlo() {
    monte("SHA256Monte.rsp", |m| ok(rt_sha256_bytes(bytes(m))).as_bytes().unwrap().to_vec());
    monte("SHA1Monte.rsp", |m| ok(rt_sha1_bytes(bytes(m))).as_bytes().unwrap().to_vec());
}

#[test]
fn sha_text_equals_bytes_and_known_values() {
    assert_eq!(hex_of(rt_sha256_hash(text("abc"))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_eq!(hex_of(rt_sha256_hash(bytes(b"abc"))), hex_of(rt_sha256_hash(text("abc"))));
    assert_eq!(hex_of(rt_sha1_hash(text(""))), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    // Interior NULs and non-ASCII text hash as their bytes.
    let s = "a\u{0}é";
    assert_eq!(hex_of(rt_sha256_hash(text(s))), hex_of(rt_sha256_hash(bytes(s.as_bytes()))));
}

#[test]
fn sha_matches_sha256sum_and_sha1sum() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    let data: Vec<u8> = (0..3_000_017u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(&p, &data).unwrap();
    for (tool, f) in [("sha256sum", rt_sha256_hash as extern "C" fn(RtValue) -> RtValue), ("sha1sum", rt_sha1_hash)] {
        let out = std::process::Command::new(tool).arg(&p).output().unwrap();
        let want = String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string();
        assert_eq!(hex_of(f(bytes(&data))), want, "{tool}");
    }
}

#[test]
fn bad_kinds_are_type_mismatch() {
    for f in [rt_sha256_hash, rt_sha256_bytes, rt_sha1_hash, rt_sha1_bytes, rt_ahash] {
        for bad in [NIL, int(3), Value::TRUE.raw(), Value::array(0).raw(), Value::dict().raw()] {
            let (code, msg) = err(f(bad));
            assert_eq!(code, Code::TypeMismatch, "{msg}");
            assert!(msg.contains("argument 1 (data)"), "{msg}");
        }
    }
    for f in [rt_xxhash64, rt_xxhash3] {
        assert_eq!(err(f(NIL, NIL)).0, Code::TypeMismatch);
        assert_eq!(err(f(bytes(b"x"), text("7"))).0, Code::TypeMismatch);
        assert_eq!(err(f(bytes(b"x"), Value::float(1.5).raw())).0, Code::TypeMismatch);
    }
}

fn u64_of(v: RtValue) -> u64 {
    ok(v).as_int().unwrap() as u64
}

#[test]
fn xxhash_reference_values() {
    // Reference values of the xxHash specification / xxhsum.
    assert_eq!(u64_of(rt_xxhash64(bytes(b""), NIL)), 0xEF46_DB37_51D8_E999);
    assert_eq!(u64_of(rt_xxhash3(bytes(b""), NIL)), 0x2D06_8005_38D3_94C2);
    assert_eq!(u64_of(rt_xxhash64(text("abc"), NIL)), 0x44BC_2CF5_AD77_0999);
    assert_eq!(u64_of(rt_xxhash3(text("abc"), NIL)), 0x78AF_5F94_892F_3950);
    // Seed nil = 0; a negative seed is its unsigned bits.
    assert_eq!(u64_of(rt_xxhash3(text("abc"), int(0))), u64_of(rt_xxhash3(text("abc"), NIL)));
    assert_eq!(u64_of(rt_xxhash64(text("abc"), int(-1))), twox_hash::XxHash64::oneshot(u64::MAX, b"abc"));
    assert_ne!(u64_of(rt_xxhash3(text("abc"), int(1))), u64_of(rt_xxhash3(text("abc"), NIL)));
    // Large hashes keep all 64 bits (boxed ints above 61 bits).
    let big = (0..1000).map(|i| u64_of(rt_xxhash3(text(&i.to_string()), int(i)))).max().unwrap();
    assert!(big > 1 << 62);
}

#[test]
fn xxhash_matches_xxhsum() {
    let dir = tempfile::tempdir().unwrap();
    for len in [0usize, 1, 3, 4, 8, 16, 17, 128, 129, 240, 241, 1024, 1025, 65_536, 1_000_003] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        let p = dir.path().join(format!("f{len}"));
        std::fs::write(&p, &data).unwrap();
        for (flag, f) in [("-H64", rt_xxhash64 as extern "C" fn(RtValue, RtValue) -> RtValue), ("-H3", rt_xxhash3)] {
            let out = std::process::Command::new("xxhsum").arg(flag).arg(&p).output().unwrap();
            let s = String::from_utf8(out.stdout).unwrap();
            // "HASH  file" (-H64) or "XXH3 (file) = HASH" (-H3).
            let want = if flag == "-H3" { s.trim().rsplit(' ').next().unwrap() } else { s.split_whitespace().next().unwrap() };
            assert_eq!(format!("{:016x}", u64_of(f(bytes(&data), NIL))), want, "{flag} len {len}");
        }
    }
}

#[test]
fn ahash_is_stable_within_process_and_discriminates() {
    let a = u64_of(rt_ahash(text("hello")));
    assert_eq!(a, u64_of(rt_ahash(bytes(b"hello"))));
    for _ in 0..10 {
        assert_eq!(u64_of(rt_ahash(text("hello"))), a);
    }
    let mut seen = std::collections::HashSet::new();
    for i in 0..10_000 {
        seen.insert(u64_of(rt_ahash(text(&i.to_string()))));
    }
    assert_eq!(seen.len(), 10_000);
    // Stable between runs of one build: a child process computes the same value.
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "ahash_child_print", "--nocapture", "--test-threads=1"])
        .env("RT_AHASH_CHILD", "1")
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains(&format!("AHASH={a}")), "child printed: {s}");
}

/// Run by `ahash_is_stable_within_process_and_discriminates` in a child process to print
/// its value; run on its own it checks text and bytes hash alike.
#[test]
fn ahash_child_print() {
    let v = u64_of(rt_ahash(text("hello")));
    assert_eq!(v, u64_of(rt_ahash(bytes(b"hello"))));
    if std::env::var("RT_AHASH_CHILD").is_ok() {
        println!("AHASH={v}");
    }
}

#[test]
fn hasher_streams_xxhash_with_seed() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    for (alg, f) in [("xxh64", rt_xxhash64 as extern "C" fn(RtValue, RtValue) -> RtValue), ("xxh3", rt_xxhash3)] {
        for seed in [None, Some(0i64), Some(42), Some(-5)] {
            let opts = Value::dict();
            if let Some(s) = seed {
                opts.set("seed", Value::int(s));
            }
            let h = ok(rt_hasher_new(text(alg), opts.raw()));
            for piece in data.chunks(777) {
                ok(rt_hasher_update(h.raw(), bytes(piece)));
            }
            let want = u64_of(f(bytes(&data), seed.map(int).unwrap_or(NIL)));
            assert_eq!(u64_of(rt_hasher_finish(h.raw())), want, "{alg} seed {seed:?}");
            // Finishing again gives the same result; raw bytes are big-endian.
            assert_eq!(u64_of(rt_hasher_finish(h.raw())), want);
            assert_eq!(ok(rt_hasher_finish_bytes(h.raw())).as_bytes().unwrap(), want.to_be_bytes());
        }
    }
}

#[test]
fn hasher_lifecycle_errors() {
    let h = ok(rt_hasher_new(text("SHA-256"), NIL));
    ok(rt_hasher_update(h.raw(), text("ab")));
    ok(rt_hasher_update(h.raw(), text("c")));
    let d = hex_of(rt_hasher_finish(h.raw()));
    assert_eq!(d, hex_of(rt_sha256_hash(text("abc"))));
    // Update after finish: Closed; finish again: same digest.
    let (code, msg) = err(rt_hasher_update(h.raw(), text("x")));
    assert_eq!(code, Code::Closed, "{msg}");
    assert_eq!(hex_of(rt_hasher_finish(h.raw())), d);
    assert_eq!(ok(rt_hasher_finish_bytes(h.raw())).as_bytes().unwrap(), unhex(&d).as_slice());
    // Closed handle: Error Closed, never a crash.
    extern "C" {
        fn rt_handle_close(h: RtValue) -> RtValue;
    }
    let h2 = ok(rt_hasher_new(text("sha1"), NIL));
    // SAFETY: the declaration above matches core's export `RtValue rt_handle_close(RtValue)`;
    // `h2` is the live hasher handle just returned (on this stack); closing it is the point.
    unsafe { rt_handle_close(h2.raw()) };
    assert_eq!(err(rt_hasher_update(h2.raw(), text("x"))).0, Code::Closed);
    assert_eq!(err(rt_hasher_finish(h2.raw())).0, Code::Closed);
    // Bad arguments.
    let (code, msg) = err(rt_hasher_new(text("md5"), NIL));
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("unknown algorithm") && msg.contains("md5"), "{msg}");
    assert_eq!(err(rt_hasher_new(NIL, NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_hasher_new(text("sha1"), int(1))).0, Code::TypeMismatch);
    let opts = Value::dict().set("seed", Value::int(1));
    assert_eq!(err(rt_hasher_new(text("sha1"), opts.raw())).0, Code::InvalidArgument);
    let opts = Value::dict().set("sed", Value::int(1));
    assert_eq!(err(rt_hasher_new(text("xxh3"), opts.raw())).0, Code::InvalidArgument);
    assert_eq!(err(rt_hasher_update(text("not a handle"), text("x"))).0, Code::TypeMismatch);
    assert_eq!(err(rt_hasher_update(h.raw(), NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_hasher_finish(int(5))).0, Code::TypeMismatch);
}

#[test]
fn hasher_from_many_threads() {
    let h = ok(rt_hasher_new(text("sha256"), NIL));
    let root = ffi_sdk::Root::new(h);
    let chunk = vec![7u8; 4096];
    std::thread::scope(|s| {
        for _ in 0..4 {
            let r = &root;
            let c = &chunk;
            s.spawn(move || {
                for _ in 0..100 {
                    ok(rt_hasher_update(r.get().raw(), bytes(c)));
                }
            });
        }
    });
    let want = hex_of(rt_sha256_hash(bytes(&vec![7u8; 4096 * 400])));
    assert_eq!(hex_of(rt_hasher_finish(root.get().raw())), want);
}

// ---------------- Argon2 ----------------

/// Key/value records of the argon2*.txt vector files.
fn kdf_vectors(name: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut out = Vec::new();
    let mut cur = std::collections::HashMap::new();
    for line in vectors(name).lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if line.is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            cur.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn b64(data: &[u8]) -> String {
    // Unpadded standard base64, as PHC strings use.
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..=c.len() {
            s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    s
}

#[test]
fn argon2_rfc9106_vectors() {
    let mut checked = 0;
    for (file, ident) in [("argon2id.txt", "argon2id"), ("argon2i.txt", "argon2i"), ("argon2d.txt", "argon2d")] {
        for v in kdf_vectors(file) {
            let get = |k: &str| v.get(k).map(|s| unhex(&s.to_lowercase())).unwrap_or_default();
            let (pass, salt, secret, ad, want) = (get("pass"), get("salt"), get("secret"), get("ad"), get("output"));
            let (m, t, p): (u32, u32, u32) =
                (v["memcost"].parse().unwrap(), v["iter"].parse().unwrap(), v["lanes"].parse().unwrap());
            // The wrapped crate, for every vector (PHC strings cannot carry outputs under 10 bytes).
            let mut b = argon2::ParamsBuilder::new();
            b.m_cost(m).t_cost(t).p_cost(p).output_len(want.len());
            if !ad.is_empty() {
                b.data(argon2::AssociatedData::new(&ad).unwrap());
            }
            let params = b.build().unwrap();
            let alg = argon2::Algorithm::try_from(ident).unwrap();
            let ctx = if secret.is_empty() {
                argon2::Argon2::new(alg, argon2::Version::V0x13, params)
            } else {
                argon2::Argon2::new_with_secret(&secret, alg, argon2::Version::V0x13, params).unwrap()
            };
            let mut out = vec![0u8; want.len()];
            ctx.hash_password_into(&pass, &salt, &mut out).unwrap();
            assert_eq!(out, want, "{file} {v:?}");
            if want.len() < 10 {
                continue;
            }
            // The export (argon2id): same output inside the PHC string.
            let opts = Value::dict()
                .set("m_cost", Value::int(m as i64))
                .set("t_cost", Value::int(t as i64))
                .set("p_cost", Value::int(p as i64))
                .set("output_len", Value::int(want.len() as i64))
                .set("salt", Value::bytes(&salt));
            if !secret.is_empty() {
                opts.set("secret", Value::bytes(&secret));
            }
            if !ad.is_empty() {
                opts.set("data", Value::bytes(&ad));
            }
            let sec = Value::dict();
            if !secret.is_empty() {
                sec.set("secret", Value::bytes(&secret));
            }
            if ident == "argon2id" {
                let phc = ok(rt_argon2_hash(bytes(&pass), opts.raw())).as_text().unwrap().to_string();
                assert!(phc.starts_with(&format!("$argon2id$v=19$m={m},t={t},p={p}")), "{phc}");
                assert!(phc.ends_with(&format!("${}", b64(&want))), "{phc} vs {}", b64(&want));
                assert!(phc.contains(&format!("${}$", b64(&salt))), "{phc}");
                assert_eq!(ok(rt_argon2_verify(bytes(&pass), text(&phc), sec.raw())).as_bool(), Some(true));
            }
            // Verify accepts the vector written as a PHC string for all three variants.
            let mut params = format!("m={m},t={t},p={p}");
            if !ad.is_empty() {
                params += &format!(",data={}", b64(&ad));
            }
            let phc = format!("${ident}$v=19${params}${}${}", b64(&salt), b64(&want));
            assert_eq!(ok(rt_argon2_verify(bytes(&pass), text(&phc), sec.raw())).as_bool(), Some(true), "{phc}");
            let mut wrong = pass.clone();
            wrong.push(b'!');
            assert_eq!(ok(rt_argon2_verify(bytes(&wrong), text(&phc), sec.raw())).as_bool(), Some(false));
            if !secret.is_empty() {
                // Without the secret the hash does not match.
                assert_eq!(ok(rt_argon2_verify(bytes(&pass), text(&phc), NIL)).as_bool(), Some(false));
            }
            checked += 1;
        }
    }
    assert!(checked >= 6, "{checked}");
}

fn small_opts() -> Value {
    Value::dict().set("m_cost", Value::int(256)).set("t_cost", Value::int(1))
}

#[test]
fn argon2_defaults_and_random_salt() {
    let a = ok(rt_argon2_hash(text("hunter2"), NIL)).as_text().unwrap().to_string();
    assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
    let b = ok(rt_argon2_hash(text("hunter2"), NIL)).as_text().unwrap().to_string();
    assert_ne!(a, b, "two hashes of one password must have different salts");
    let parts: Vec<&str> = a.split('$').collect();
    assert_eq!(parts.len(), 6);
    assert_eq!(parts[4].len(), 22, "16-byte salt"); // base64 of 16 bytes
    assert_eq!(parts[5].len(), 43, "32-byte hash");
    assert_eq!(ok(rt_argon2_verify(text("hunter2"), text(&a), NIL)).as_bool(), Some(true));
    assert_eq!(ok(rt_argon2_verify(bytes(b"hunter2"), text(&b), NIL)).as_bool(), Some(true));
    assert_eq!(ok(rt_argon2_verify(text("hunter3"), text(&a), NIL)).as_bool(), Some(false));
    assert_eq!(ok(rt_argon2_verify(text(""), text(&a), NIL)).as_bool(), Some(false));
    // Empty password is allowed and verifies.
    let e = ok(rt_argon2_hash(text(""), small_opts().raw())).as_text().unwrap().to_string();
    assert_eq!(ok(rt_argon2_verify(text(""), text(&e), NIL)).as_bool(), Some(true));
    // output_len and p_cost show in the string.
    let o = small_opts().set("output_len", Value::int(64)).set("p_cost", Value::int(2));
    let h = ok(rt_argon2_hash(text("x"), o.raw())).as_text().unwrap().to_string();
    assert!(h.contains("m=256,t=1,p=2$"), "{h}");
    assert_eq!(h.rsplit('$').next().unwrap().len(), 86);
}

#[test]
fn argon2_limits_and_bad_options() {
    let cases: Vec<(Value, Code)> = vec![
        (Value::dict().set("m_cost", Value::int(4 * 1024 * 1024)), Code::LimitExceeded),
        (Value::dict().set("m_cost", Value::int(1 << 40)), Code::InvalidArgument),
        (Value::dict().set("t_cost", Value::int(5000)), Code::LimitExceeded),
        (Value::dict().set("t_cost", Value::int(0)), Code::InvalidArgument),
        (Value::dict().set("p_cost", Value::int(0)), Code::InvalidArgument),
        (Value::dict().set("p_cost", Value::int(1000)), Code::InvalidArgument),
        (Value::dict().set("m_cost", Value::int(8)).set("p_cost", Value::int(2)), Code::InvalidArgument),
        (Value::dict().set("output_len", Value::int(4)), Code::InvalidArgument),
        (Value::dict().set("output_len", Value::int(65)), Code::InvalidArgument),
        (Value::dict().set("salt", Value::bytes(b"short")), Code::InvalidArgument),
        (Value::dict().set("salt", Value::bytes(&[1u8; 49])), Code::InvalidArgument),
        (Value::dict().set("data", Value::bytes(&[1u8; 33])), Code::InvalidArgument),
        (Value::dict().set("m_cost", Value::text("big")), Code::InvalidArgument),
        (Value::dict().set("memory", Value::int(1)), Code::InvalidArgument),
    ];
    for (o, code) in cases {
        let (c, msg) = err(rt_argon2_hash(text("pw"), o.raw()));
        assert_eq!(c, code, "{msg}");
        assert!(msg.starts_with("rt_argon2_hash: "), "{msg}");
    }
    assert_eq!(err(rt_argon2_hash(NIL, NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_argon2_hash(text("pw"), int(3))).0, Code::TypeMismatch);
}

#[test]
fn argon2_verify_malformed_and_hostile_hashes() {
    let good = ok(rt_argon2_hash(text("pw"), small_opts().raw())).as_text().unwrap().to_string();
    let salt_hash: Vec<&str> = good.rsplitn(3, '$').collect();
    let tail = format!("{}${}", salt_hash[1], salt_hash[0]);
    for bad in [
        "".to_string(),
        "not a hash".to_string(),
        "$argon2id$v=19$m=256,t=1,p=1".to_string(),
        format!("$argon2id$v=19$m=256,t=1,p=1${}", salt_hash[1]),
        format!("$bcrypt$v=19$m=256,t=1,p=1${tail}"),
        format!("$argon2id$v=7$m=256,t=1,p=1${tail}"),
        format!("$argon2id$v=19$m=256,t=1,p=1,q=3${tail}"),
        format!("$argon2id$v=19$m=abc,t=1,p=1${tail}"),
        format!("$argon2id$v=19$m=256,t=1,p=1${}$@@@", salt_hash[1]),
        format!("$argon2id$v=19$m=256,t=1,p=1${}$QUJD", salt_hash[1]), // 3-byte hash < 10
    ] {
        let (code, msg) = err(rt_argon2_verify(text("pw"), text(&bad), NIL));
        assert_eq!(code, Code::Parse, "{bad:?}: {msg}");
        assert!(msg.starts_with("rt_argon2_verify: "), "{msg}");
    }
    // A hash asking for 4 GiB or 2^20 passes is refused before any work.
    let t0 = std::time::Instant::now();
    for hostile in [format!("$argon2id$v=19$m=4194304,t=1,p=1${tail}"), format!("$argon2id$v=19$m=256,t=1000000,p=1${tail}")] {
        assert_eq!(err(rt_argon2_verify(text("pw"), text(&hostile), NIL)).0, Code::LimitExceeded, "{hostile}");
    }
    assert!(t0.elapsed().as_secs() < 5);
    assert_eq!(err(rt_argon2_verify(text("pw"), bytes(good.as_bytes()), NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_argon2_verify(NIL, text(&good), NIL)).0, Code::TypeMismatch);
    let bad_opt = Value::dict().set("pepper", Value::bytes(b"x"));
    assert_eq!(err(rt_argon2_verify(text("pw"), text(&good), bad_opt.raw())).0, Code::InvalidArgument);
}

#[test]
fn pure_functions_need_no_capability() {
    ffi_sdk::testing::in_child("pure_functions_need_no_capability", || {
        ffi_sdk::testing::restrict("*=false");
        ok(rt_sha256_hash(text("x")));
        ok(rt_sha1_bytes(text("x")));
        ok(rt_xxhash3(text("x"), NIL));
        ok(rt_xxhash64(text("x"), NIL));
        ok(rt_ahash(text("x")));
        let h = ok(rt_hasher_new(text("xxh3"), NIL));
        ok(rt_hasher_update(h.raw(), text("x")));
        ok(rt_hasher_finish(h.raw()));
        let phc = ok(rt_argon2_hash(text("x"), small_opts().raw())).as_text().unwrap().to_string();
        assert_eq!(ok(rt_argon2_verify(text("x"), text(&phc), NIL)).as_bool(), Some(true));
    });
}

#[test]
fn collections_during_hashing_lose_nothing() {
    // Values made and hashed on several threads while collections run.
    std::thread::scope(|s| {
        for t in 0..3u8 {
            s.spawn(move || {
                for i in 0..300u32 {
                    let data: Vec<u8> = (0..(i % 97) as u8).map(|x| x ^ t).collect();
                    let v = Value::bytes(&data);
                    let h = hex_of(rt_sha256_hash(v.raw()));
                    assert_eq!(h, ffi_crypto::sha::hex(&ffi_crypto::sha::sha256(&data)));
                }
            });
        }
        s.spawn(|| {
            for _ in 0..20 {
                ffi_sdk::testing::collect();
            }
        });
    });
}
