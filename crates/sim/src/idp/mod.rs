//! Stand-ins of the identity providers' APIs, following their public documentation, for
//! tests and `rostersync demo`: Google's Admin SDK Directory API with its JWT-bearer
//! token endpoint ([`google`]) and Microsoft Graph's users and delta with the Entra token
//! endpoint ([`entra`]). Each serves a list of accounts a test sets and changes, and can
//! throttle (429 with `Retry-After`) like the real services.

pub mod entra;
pub mod google;

/// A student or staff member of a simulated district who has an email: what an identity
/// provider's account of them holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistrictPerson {
    /// The email the SIS gives.
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    /// The school's id for the person (OneRoster's `identifier`), when the SIS gives one.
    pub identifier: Option<String>,
    /// Staff (a teacher, an administrator, an aide), not a student.
    pub staff: bool,
}

/// Hands `f` every `every`th (1: all) of the district's active students and staff who have
/// an email, in the district's order. Guardians have no account.
pub fn each_district_person(
    district: &crate::District,
    every: usize,
    mut f: impl FnMut(DistrictPerson),
) {
    use crate::{Collection, Version};
    for (i, id) in district.active_ids(Collection::Users).iter().enumerate() {
        if i % every.max(1) != 0 {
            continue;
        }
        let Some(v) = district.record_json(Collection::Users, Version::V1p1, id) else {
            continue;
        };
        let u = v.get("user").unwrap_or(&v);
        let role = u["role"].as_str().unwrap_or_default();
        if matches!(role, "parent" | "guardian" | "relative") {
            continue;
        }
        let Some(email) = u["email"].as_str().filter(|e| !e.is_empty()) else {
            continue;
        };
        let text = |key: &str| u[key].as_str().unwrap_or_default().to_owned();
        f(DistrictPerson {
            email: email.to_owned(),
            given_name: text("givenName"),
            family_name: text("familyName"),
            identifier: u["identifier"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            staff: role != "student",
        });
    }
}

use base64::Engine as _;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::Value;

/// A JWS in compact form (a client assertion), split into its three parts.
struct Jws<'a> {
    token: &'a str,
    header: &'a str,
    claims: &'a str,
    signature: &'a str,
}

impl<'a> Jws<'a> {
    /// `None` unless `token` is exactly three dot-separated parts.
    fn split(token: &'a str) -> Option<Jws<'a>> {
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        Some(Jws {
            token,
            header,
            claims,
            signature,
        })
    }

    fn header_json(&self) -> Option<Value> {
        base64url_json(self.header)
    }

    fn claims_json(&self) -> Option<Value> {
        base64url_json(self.claims)
    }

    /// Whether the signature is `public_key`'s RS256 signature of the header and claims.
    fn signed_by(&self, public_key: &[u8]) -> bool {
        let Ok(signature) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(self.signature)
        else {
            return false;
        };
        let signed = &self.token.as_bytes()[..self.header.len() + 1 + self.claims.len()];
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
            .verify(signed, &signature)
            .is_ok()
    }
}

fn base64url_json(part: &str) -> Option<Value> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()
        .and_then(|raw| serde_json::from_slice(&raw).ok())
}
