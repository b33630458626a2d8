//! RS256-signed JSON Web Tokens, the way both providers take a key instead of a secret:
//! Google's JWT-bearer assertion and Microsoft's certificate client assertion. Also the
//! PEM blocks their key files hold. Keys are never shown in messages.

use base64::Engine as _;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::Value;

/// The DER of the first PEM block labelled `label` (`PRIVATE KEY`, `CERTIFICATE`) in
/// `pem`, or why not (without quoting it).
pub(crate) fn pem_block(pem: &str, label: &str) -> Result<Vec<u8>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != begin)
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    if body.is_empty() {
        return Err(format!("has no PEM `BEGIN {label}` block"));
    }
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| "is not valid base64 inside its PEM block".to_owned())
}

/// The RSA key of a PKCS#8 PEM (`BEGIN PRIVATE KEY`), or why not.
pub(crate) fn signing_key(pem: &str) -> Result<RsaKeyPair, String> {
    let der = pem_block(pem, "PRIVATE KEY")?;
    RsaKeyPair::from_pkcs8(&der).map_err(|_| "is not a PKCS#8 RSA key ring can sign with".into())
}

/// `header.claims.signature`, base64url without padding, signed RS256 with `key`; `None`
/// when the key cannot sign.
pub(crate) fn sign_rs256(key: &RsaKeyPair, header: &Value, claims: &Value) -> Option<String> {
    let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signed = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let mut signature = vec![0u8; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signed.as_bytes(),
        &mut signature,
    )
    .ok()?;
    Some(format!("{signed}.{}", b64.encode(signature)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_garbled_block_is_named_not_quoted() {
        let e = pem_block("no pem here", "CERTIFICATE").unwrap_err();
        assert!(e.contains("BEGIN CERTIFICATE"), "{e}");
        let e = pem_block(
            "-----BEGIN PRIVATE KEY-----\nnot*base64\n-----END PRIVATE KEY-----\n",
            "PRIVATE KEY",
        )
        .unwrap_err();
        assert!(!e.contains("not*base64"), "{e}");
    }
}
