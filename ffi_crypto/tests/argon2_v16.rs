//! Issue 9 §5: rt_argon2_verify against the reference implementation's own
//! Argon2i test vectors (P-H-C/phc-winner-argon2, src/test.c, `hashtest`).
//! Version 16 (0x10) PHC strings there carry no `v=` field; the reference
//! decoder reads a missing `v=` as version 16, and so must we.

use ffi_crypto::argon2::*;
use ffi_sdk::testing::{err, ok, text, NIL};
use ffi_sdk::Code;

/// (password, PHC string) of test.c's version-0x10 `hashtest` calls (all but
/// the 1 GiB one, which test.c too runs only under TEST_LARGE_RAM).
const V16: &[(&str, &str)] = &[
    ("password", "$argon2i$m=65536,t=2,p=1$c29tZXNhbHQ$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ"),
    ("password", "$argon2i$m=262144,t=2,p=1$c29tZXNhbHQ$Pmiaqj0op3zyvHKlGsUxZnYXURgvHuKS4/Z3p9pMJGc"),
    ("password", "$argon2i$m=256,t=2,p=1$c29tZXNhbHQ$/U3YPXYsSb3q9XxHvc0MLxur+GP960kN9j7emXX8zwY"),
    ("password", "$argon2i$m=256,t=2,p=2$c29tZXNhbHQ$tsEVYKap1h6scGt5ovl9aLRGOqOth+AMB+KwHpDFZPs"),
    ("password", "$argon2i$m=65536,t=1,p=1$c29tZXNhbHQ$gWMFUrjzsfSM2xmSxMZ4ZD1JCytetP9sSzQ4tWIXJLI"),
    ("password", "$argon2i$m=65536,t=4,p=1$c29tZXNhbHQ$8hLwFhXm6110c03D70Ct4tUdBSRo2MaUQKOh8sHChHs"),
    ("differentpassword", "$argon2i$m=65536,t=2,p=1$c29tZXNhbHQ$6ckCB0tnVFMaOgvlGeW69ASzDOabPwGsO/ISKZYBCaM"),
    ("password", "$argon2i$m=65536,t=2,p=1$ZGlmZnNhbHQ$eaEDuQ/orvhXDLMfyLIiWXeJFvgza3vaw4kladTxxJc"),
];

/// The same test.c's version-0x13 vectors (explicit `v=19`), a few of them.
const V19: &[(&str, &str)] = &[
    ("password", "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$wWKIMhR9lyDFvRz9YTZweHKfbftvj+qf+YFY4NeBbtA"),
    ("password", "$argon2i$v=19$m=256,t=2,p=2$c29tZXNhbHQ$T/XOJ2mh1/TIpJHfCdQan76Q5esCFVoT5MAeIM1Oq2E"),
    ("differentpassword", "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$FK6NoBr+qHAMI1jc73xTWNkCEoK9iGY6RWL1n7dNIu4"),
];

fn verify(password: &str, phc: &str) -> Option<bool> {
    ok(rt_argon2_verify(text(password), text(phc), NIL)).as_bool()
}

/// `phc` with `v=16$` inserted after the algorithm.
fn with_v16(phc: &str) -> String {
    phc.replacen("$argon2i$", "$argon2i$v=16$", 1)
}

#[test]
fn issue_vector_without_v_verifies() {
    let phc = "$argon2i$m=65536,t=2,p=1$c29tZXNhbHQ$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ";
    assert_eq!(verify("password", phc), Some(true));
    assert_eq!(verify("passwore", phc), Some(false));
    assert_eq!(verify("", phc), Some(false));
}

#[test]
fn reference_v16_vectors_without_v_verify() {
    for (pw, phc) in V16 {
        assert_eq!(verify(pw, phc), Some(true), "{pw} {phc}");
    }
}

#[test]
fn reference_v16_vectors_with_explicit_v16_verify() {
    // All but the 256 MiB one (already run above; slow in a debug build).
    for (pw, phc) in V16.iter().filter(|(_, phc)| !phc.contains("m=262144")) {
        let phc = with_v16(phc);
        assert_eq!(verify(pw, &phc), Some(true), "{pw} {phc}");
    }
}

#[test]
fn wrong_password_and_wrong_version_are_false() {
    let (pw, phc) = V16[2]; // m=256: cheap
    assert_eq!(verify("Password", phc), Some(false));
    assert_eq!(verify(&format!("{pw}x"), phc), Some(false));
    // The same parameters read as version 19 give another hash: no match.
    let as_v19 = phc.replacen("$argon2i$", "$argon2i$v=19$", 1);
    assert_eq!(verify(pw, &as_v19), Some(false));
    // test.c's mismatch case: this hash is of "passwore", so "password" is false.
    let passwore = "$argon2i$m=65536,t=2,p=1$c29tZXNhbHQ$b2G3seW+uPzerwQQC+/E1K50CLLO7YXy0JRcaTuswRo";
    assert_eq!(verify("password", passwore), Some(false));
    assert_eq!(verify("passwore", passwore), Some(true));
}

#[test]
fn reference_v19_vectors_still_verify() {
    for (pw, phc) in V19 {
        assert_eq!(verify(pw, phc), Some(true), "{pw} {phc}");
    }
    // Without its v=19 the string means version 16: a different hash.
    let (pw, phc) = V19[1];
    assert_eq!(verify(pw, &phc.replacen("$v=19$", "$", 1)), Some(false));
}

#[test]
fn v16_strings_still_refuse_malformed_and_hostile_input() {
    let cases = [
        // test.c's invalid encodings: missing `$` before the salt, before the hash; empty salt.
        ("$argon2i$m=65536,t=2,p=1c29tZXNhbHQ$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ", Code::Parse),
        ("$argon2i$m=65536,t=2,p=1$c29tZXNhbHQ9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ", Code::Parse),
        ("$argon2i$m=65536,t=2,p=1$$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ", Code::Parse),
        // No v= but beyond the memory limit: refused before anything is allocated.
        ("$argon2i$m=4194304,t=2,p=1$c29tZXNhbHQ$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ", Code::LimitExceeded),
        ("$argon2i$m=256,t=5000,p=1$c29tZXNhbHQ$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ", Code::LimitExceeded),
    ];
    for (phc, code) in cases {
        let (c, m) = err(rt_argon2_verify(text("password"), text(phc), NIL));
        assert_eq!(c, code, "{phc}: {m}");
        assert!(m.starts_with("rt_argon2_verify: "), "{m}");
    }
}
