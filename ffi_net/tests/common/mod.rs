//! Shared by the ffi_net test binaries.
#![allow(dead_code)]

use std::sync::Arc;

/// A rustls server config over a fresh rcgen certificate for localhost / 127.0.0.1, and the
/// certificate's PEM (the CA a client trusts it with).
pub fn self_signed_tls() -> (Arc<rustls::ServerConfig>, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let pem = ck.cert.pem();
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    (Arc::new(cfg), pem)
}
