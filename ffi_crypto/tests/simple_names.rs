//! The functions serving Simple's crypto externs: RFC/NIST vectors and
//! Python's hashlib / hmac / base64 / zlib / uuid as oracles in a child process.

use ffi_crypto::aead::*;
use ffi_crypto::digest::*;
use ffi_crypto::encode::*;
use ffi_crypto::password::*;
use ffi_crypto::random::*;
use ffi_crypto::sign::*;
use ffi_sdk::testing::{bytes, err, int, ok, text, NIL};
use ffi_sdk::Code;
use std::process::Command;

fn py(expr: &str, data: &[u8]) -> String {
    use std::io::Write;
    let prog = format!("import hashlib,hmac,base64,zlib,sys\nd=sys.stdin.buffer.read()\nprint({expr})");
    let mut c = Command::new("python3")
        .arg("-c")
        .arg(prog)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    c.stdin.take().unwrap().write_all(data).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn t(v: ffi_sdk::abi::RtValue) -> String {
    ok(v).as_text().unwrap().to_string()
}

fn inputs() -> Vec<Vec<u8>> {
    let mut big = Vec::new();
    for i in 0..300_000u32 {
        big.push((i.wrapping_mul(2654435761) >> 13) as u8);
    }
    vec![vec![], b"abc".to_vec(), "héllo wörld".as_bytes().to_vec(), vec![0u8; 1025], big]
}

#[test]
fn digests_match_hashlib() {
    for d in inputs() {
        assert_eq!(t(rt_hash_sha512(bytes(&d))), py("hashlib.sha512(d).hexdigest()", &d));
        assert_eq!(t(rt_sha512_hash(bytes(&d))), py("hashlib.sha512(d).hexdigest()", &d));
        assert_eq!(t(rt_hash_sha3_256(bytes(&d))), py("hashlib.sha3_256(d).hexdigest()", &d));
        assert_eq!(t(rt_hash_sha256(bytes(&d))), py("hashlib.sha256(d).hexdigest()", &d));
        assert_eq!(ok(rt_crc32_text(bytes(&d))).as_int().unwrap().to_string(), py("zlib.crc32(d)", &d));
        assert_eq!(t(rt_hmac_sha256(bytes(b"key"), bytes(&d))), py("hmac.new(b'key', d, 'sha256').hexdigest()", &d));
        assert_eq!(t(rt_hmac_sha512(bytes(&d), bytes(b"msg"))), py("hmac.new(d, b'msg', 'sha512').hexdigest()", &d));
        assert_eq!(t(rt_base64url_encode(bytes(&d), NIL)), py("base64.urlsafe_b64encode(d).rstrip(b'=').decode()", &d));
        assert_eq!(t(rt_base64_encode(bytes(&d))), py("base64.b64encode(d).decode()", &d));
    }
}

#[test]
fn blake3_and_sha_vectors() {
    // BLAKE3 reference (official test_vectors.json, input length 0) and "abc" (NIST SHA-512 / SHA3-256).
    assert_eq!(t(rt_hash_blake3(text(""))), "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
    assert_eq!(t(rt_blake3_hash(text("abc"))), "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85");
    assert_eq!(ok(rt_blake3_bytes(text("abc"))).as_bytes().unwrap().len(), 32);
    assert_eq!(
        t(rt_hash_sha512(text("abc"))),
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
    );
    assert_eq!(t(rt_hash_sha3_256(text("abc"))), "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532");
    // RFC 4231 test case 2.
    assert_eq!(
        t(rt_hmac_sha256(text("Jefe"), text("what do ya want for nothing?"))),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // RFC 7914 §11 / RFC 6070-style PBKDF2-HMAC-SHA256 vector (c = 1).
    assert_eq!(
        t(rt_derive_key_pbkdf2(text("passwd"), text("salt"), int(1), int(64))),
        "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
    );
}

#[test]
fn pbkdf2_matches_hashlib_and_checks_bounds() {
    let got = t(rt_derive_key_pbkdf2(text("pw"), text("NaCl"), int(1000), int(32)));
    assert_eq!(got, py("hashlib.pbkdf2_hmac('sha256', b'pw', b'NaCl', 1000, 32).hex()", b""));
    assert_eq!(err(rt_derive_key_pbkdf2(text("pw"), text("s"), int(0), int(32))).0, Code::OutOfRange);
    assert_eq!(err(rt_derive_key_pbkdf2(text("pw"), text("s"), int(1), int(0))).0, Code::OutOfRange);
    assert_eq!(err(rt_derive_key_pbkdf2(int(1), text("s"), int(1), int(1))).0, Code::TypeMismatch);
}

#[test]
fn base64_round_trips_and_bad_input() {
    let d: Vec<u8> = (0..=255u8).collect();
    let enc = t(rt_base64url_encode(bytes(&d), int(-1)));
    assert_eq!(ok(rt_base64url_decode(text(&enc))).as_bytes().unwrap(), &d[..]);
    assert_eq!(t(rt_base64url_encode(text("hello"), int(3))), "aGVs");
    let (c, m) = err(rt_base64url_encode(text("hi"), int(3)));
    assert_eq!(c, Code::OutOfRange);
    assert!(m.starts_with("rt_base64url_encode"), "{m}");
    let e = t(rt_base64_encode(bytes(&d)));
    assert_eq!(ok(rt_base64_decode(text(&e))).as_bytes().unwrap(), &d[..]);
    assert_eq!(err(rt_base64_decode(text("ab$d"))).0, Code::Parse);
}

#[test]
fn random_and_uuid() {
    let a = ok(rt_random_bytes(int(32))).as_bytes().unwrap().to_vec();
    let b = ok(rt_random_bytes(int(32))).as_bytes().unwrap().to_vec();
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
    assert_eq!(t(rt_random_hex(int(16))).len(), 32);
    assert_eq!(t(rt_generate_key_hex(int(32))).len(), 64);
    let k = t(rt_generate_key(int(32)));
    assert_eq!(py(&format!("len(base64.b64decode('{k}'))"), b""), "32");
    assert_eq!(err(rt_random_bytes(int(-1))).0, Code::OutOfRange);
    assert_eq!(err(rt_generate_key(int(0))).0, Code::OutOfRange);
    let u = t(rt_uuid_v4());
    assert_eq!(py(&format!("__import__('uuid').UUID('{u}').version"), b""), "4");
    assert_eq!(py(&format!("str(__import__('uuid').UUID('{u}')) == '{u}'"), b""), "True");
    assert_ne!(u, t(rt_uuid_v4()));
}

#[test]
fn ed25519_rfc8032_vectors() {
    let unhex = |s: &str| (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect::<Vec<u8>>();
    // RFC 8032 §7.1 TEST 2.
    let sk = unhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
    let pk = unhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
    let sig = unhex("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00");
    let msg = [0x72u8];
    assert_eq!(ok(rt_ed25519_public_key(bytes(&sk))).as_bytes().unwrap(), &pk[..]);
    assert_eq!(ok(rt_ed25519_sign(bytes(&msg), bytes(&sk))).as_bytes().unwrap(), &sig[..]);
    assert_eq!(ok(rt_ed25519_verify(bytes(&msg), bytes(&pk), bytes(&sig))).as_bool(), Some(true));
    let mut bad = sig.clone();
    bad[5] ^= 1;
    assert_eq!(ok(rt_ed25519_verify(bytes(&msg), bytes(&pk), bytes(&bad))).as_bool(), Some(false));
    assert_eq!(ok(rt_ed25519_verify(bytes(b"other"), bytes(&pk), bytes(&sig))).as_bool(), Some(false));
    assert_eq!(err(rt_ed25519_verify(bytes(&msg), bytes(&pk[..31]), bytes(&sig))).0, Code::InvalidArgument);
    assert_eq!(err(rt_ed25519_verify(bytes(&msg), bytes(&pk), bytes(&sig[..63]))).0, Code::InvalidArgument);
}

#[test]
fn aes256_gcm_round_trip_and_tamper() {
    let key = t(ffi_crypto::random::rt_generate_key_hex(int(32)));
    let enc = t(rt_encrypt_aes256(text(&key), text("secret message")));
    assert_ne!(enc, t(rt_encrypt_aes256(text(&key), text("secret message"))), "fresh nonce each time");
    assert_eq!(ok(rt_decrypt_aes256(text(&key), text(&enc))).as_text(), Some("secret message"));
    // Python's cryptography-free check of the layout: 12-byte nonce + 14-byte text + 16-byte tag.
    assert_eq!(enc.len(), 2 * (12 + 14 + 16));
    let mut tampered = enc.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
    let (c, m) = err(rt_decrypt_aes256(text(&key), text(std::str::from_utf8(&tampered).unwrap())));
    assert_eq!(c, Code::InvalidArgument, "{m}");
    let other = t(ffi_crypto::random::rt_generate_key_hex(int(32)));
    assert_eq!(err(rt_decrypt_aes256(text(&other), text(&enc))).0, Code::InvalidArgument);
    assert_eq!(err(rt_encrypt_aes256(text("short"), text("x"))).0, Code::InvalidArgument);
    assert_eq!(err(rt_decrypt_aes256(text(&key), text("zz"))).0, Code::Parse);
}

#[test]
fn passwords_argon2_and_bcrypt() {
    let h = t(rt_password_hash(text("hunter2")));
    assert!(h.starts_with("$argon2id$v=19$"), "{h}");
    assert_eq!(ok(rt_password_verify(text("hunter2"), text(&h))).as_bool(), Some(true));
    assert_eq!(ok(rt_password_verify(text("nope"), text(&h))).as_bool(), Some(false));
    let (c, m) = err(rt_password_verify(text("x"), text("garbage")));
    assert_eq!(c, Code::Parse);
    assert!(m.starts_with("rt_password_verify"), "{m}");
    let b = t(rt_password_hash_bcrypt(text("pw"), int(4)));
    assert!(b.starts_with("$2b$04$"), "{b}");
    assert_eq!(ok(rt_password_verify_bcrypt(text("pw"), text(&b))).as_bool(), Some(true));
    assert_eq!(ok(rt_password_verify_bcrypt(text("px"), text(&b))).as_bool(), Some(false));
    // OpenBSD test vector ($2a$, cost 5).
    assert_eq!(
        ok(rt_password_verify_bcrypt(text("U*U"), text("$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"))).as_bool(),
        Some(true)
    );
    assert_eq!(err(rt_password_hash_bcrypt(text("pw"), int(3))).0, Code::OutOfRange);
    assert_eq!(err(rt_password_hash_bcrypt(text("pw"), int(25))).0, Code::LimitExceeded);
    assert_eq!(err(rt_password_verify_bcrypt(text("pw"), text("$2b$nonsense"))).0, Code::Parse);
}
