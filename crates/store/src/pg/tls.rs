//! TLS as libpq does it: the settings the `postgres` crate does not know (`sslrootcert`,
//! `sslmode=verify-ca|verify-full`) taken out of the connection string, and the TLS client
//! that verifies the server's certificate or, for `prefer` and `require`, only encrypts.

use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{Result, StoreError};

/// How to treat the server's certificate.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct TlsSettings {
    /// `verify-ca`, `verify-full`, or a CA file given.
    pub(super) verify: bool,
    root_cert: Option<std::path::PathBuf>,
}

/// Takes the TLS settings the `postgres` crate does not know out of a URL or key=value
/// connection string: `sslrootcert`, and `sslmode=verify-ca|verify-full` (which become
/// `require` for the crate, with verification on).
pub(super) fn tls_params(url: &str) -> (String, TlsSettings) {
    let mut tls = TlsSettings::default();
    // One `key=value` setting, as written: kept, rewritten or taken out.
    let mut setting = |raw: &str, value: &str| -> Option<String> {
        match raw.split_once('=').map_or(raw, |(k, _)| k) {
            "sslrootcert" => {
                tls.root_cert = Some(std::path::PathBuf::from(value));
                tls.verify = true;
                None
            }
            "sslmode" if matches!(value, "verify-ca" | "verify-full") => {
                tls.verify = true;
                Some("sslmode=require".to_owned())
            }
            _ => Some(raw.to_owned()),
        }
    };
    let url = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let kept: Vec<String> = query
                    .split('&')
                    .filter(|p| !p.is_empty())
                    .filter_map(|p| {
                        let value = p.split_once('=').map_or("", |(_, v)| v);
                        setting(
                            p,
                            &percent_encoding::percent_decode_str(value).decode_utf8_lossy(),
                        )
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        key_values(url)
            .into_iter()
            .filter_map(|(key, raw, value)| {
                // Kept settings stay as written (quotes and all); others are rewritten.
                let plain = format!("{key}={value}");
                setting(&plain, &value)
                    .map(|kept| if kept == plain { raw.to_owned() } else { kept })
            })
            .collect::<Vec<String>>()
            .join(" ")
    };
    (url, tls)
}

/// libpq's `key = value` settings: each key, the setting as written, and its value
/// (single quotes and backslash escapes undone). A word that is no setting is kept as
/// written, for the `postgres` crate to report.
fn key_values(s: &str) -> Vec<(String, &str, String)> {
    let bytes = s.as_bytes();
    let skip_spaces = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    let mut i = skip_spaces(0);
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = s[start..i].to_owned();
        i = skip_spaces(i);
        if bytes.get(i) != Some(&b'=') {
            out.push((key, &s[start..i], String::new()));
            continue;
        }
        i = skip_spaces(i + 1);
        let quoted = bytes.get(i) == Some(&b'\'');
        if quoted {
            i += 1;
        }
        let mut value = Vec::new();
        while i < bytes.len() {
            let b = bytes[i];
            if (quoted && b == b'\'') || (!quoted && b.is_ascii_whitespace()) {
                break;
            }
            if b == b'\\' && i + 1 < bytes.len() {
                i += 1;
            }
            value.push(bytes[i]);
            i += 1;
        }
        if quoted && i < bytes.len() {
            i += 1;
        }
        out.push((
            key,
            &s[start..i],
            String::from_utf8_lossy(&value).into_owned(),
        ));
        i = skip_spaces(i);
    }
    out
}

/// The TLS client: verifying against the system's trusted roots and the CA file, or, as
/// libpq's `prefer` and `require` do, encrypting without checking who answers.
pub(super) fn tls_connector(tls: &TlsSettings) -> Result<MakeRustlsConnect> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Open(format!("TLS set-up failed: {e}")))?;
    if !tls.verify {
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(EncryptOnly(provider)))
            .with_no_client_auth();
        return Ok(MakeRustlsConnect::new(config));
    }
    // As libpq: the CA file alone when one is named (`system`: the system's roots), the
    // system's trusted roots when none is.
    let mut roots = rustls::RootCertStore::empty();
    match tls.root_cert.as_deref() {
        Some(path) if path != std::path::Path::new("system") => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<std::result::Result<_, _>>())
                .map_err(|e| {
                    StoreError::Invalid(format!(
                        "cannot read the CA certificates in sslrootcert={}: {e} — expected a PEM file",
                        path.display()
                    ))
                })?;
            if certs.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "sslrootcert={} holds no certificate — expected a PEM file with the CA that signed the server's",
                    path.display()
                )));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    StoreError::Invalid(format!(
                        "a certificate in sslrootcert={} is not usable: {e}",
                        path.display()
                    ))
                })?;
            }
        }
        _ => {
            for cert in rustls_native_certs::load_native_certs().certs {
                // A system certificate rustls cannot use is no reason to refuse the others.
                let _ = roots.add(cert);
            }
        }
    }
    let config = builder.with_root_certificates(roots).with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// libpq's `sslmode=prefer|require`: any certificate is accepted (the handshake's own
/// signatures are still checked), so the connection is encrypted but its peer unproven.
#[derive(Debug)]
struct EncryptOnly(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn tls_settings_the_postgres_crate_does_not_know() {
        let path = |p: &str| Some(std::path::PathBuf::from(p));
        let (url, tls) = tls_params(
            "postgres://u@db:5432/d?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        );
        assert_eq!(
            url,
            "postgres://u@db:5432/d?sslmode=require&application_name=x"
        );
        assert_eq!(
            tls,
            TlsSettings {
                verify: true,
                root_cert: path("/etc/ca.pem")
            }
        );
        let (url, tls) = tls_params("host=db user=u sslrootcert=/ca.pem sslmode=verify-ca");
        assert_eq!(url, "host=db user=u sslmode=require");
        assert_eq!(
            tls,
            TlsSettings {
                verify: true,
                root_cert: path("/ca.pem")
            }
        );
        let (url, tls) = tls_params("postgres://u@db/d?sslrootcert=/ca.pem");
        assert_eq!((url.as_str(), tls.verify), ("postgres://u@db/d", true));
        let (url, tls) = tls_params("postgres://u@db/d?sslmode=verify-ca");
        assert_eq!(url, "postgres://u@db/d?sslmode=require");
        assert_eq!(
            tls,
            TlsSettings {
                verify: true,
                root_cert: None
            }
        );
        for plain in [
            "postgres://u:p%40ss@db/d?sslmode=disable",
            "postgres://u@db/d?sslmode=require",
        ] {
            assert_eq!(
                tls_params(plain),
                (plain.to_owned(), TlsSettings::default())
            );
        }
        assert!(
            postgres::Config::from_str(&tls_params("postgres://u@db/d?sslmode=verify-full").0)
                .is_ok()
        );
    }

    #[test]
    fn key_value_settings_keep_their_quoting() {
        let (url, tls) = tls_params(
            r"host=db password='two  words\' x' sslrootcert = '/etc/my ca.pem' sslmode='verify-full'",
        );
        assert_eq!(url, r"host=db password='two  words\' x' sslmode=require");
        assert_eq!(
            tls.root_cert,
            Some(std::path::PathBuf::from("/etc/my ca.pem"))
        );
        assert!(tls.verify);
        let c = postgres::Config::from_str(&url).unwrap();
        assert_eq!(c.get_password(), Some(&b"two  words' x"[..]));
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let e = tls_connector(&TlsSettings {
            verify: true,
            root_cert: Some("/nonexistent/ca.pem".into()),
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("sslrootcert=/nonexistent/ca.pem"), "{e}");
        assert!(tls_connector(&TlsSettings::default()).is_ok());
    }
}
