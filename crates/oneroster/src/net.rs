//! Where outgoing requests may go, and what a remote answer may put in front of a person.
//!
//! rostersync sends a district's SIS credentials to the URLs in its settings, and those
//! URLs can be set from the console. So every HTTP client rostersync builds for a source
//! or a webhook:
//! - refuses link-local and metadata addresses (169.254.0.0/16, fe80::/10), unspecified,
//!   multicast and broadcast addresses, always;
//! - refuses loopback and private ranges unless the owner allowed them
//!   ([`AddressPolicy`]); districts do run their SIS on private networks;
//! - checks the addresses a name resolves to at connect time (not only when the setting
//!   was saved), so a name that later resolves inward is refused too;
//! - follows a redirect only to the same scheme, host and port: credentials never follow
//!   a redirect to another host.
//!
//! And what a remote server answers is shown to people only as a short, sanitised line
//! ([`short_remote_text`]); a URL is logged and shown without its `user:password@`
//! ([`redact_url`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Which internal address ranges requests may reach. Link-local and metadata addresses
/// are refused whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPolicy {
    /// 127.0.0.0/8 and ::1 (this machine: the console itself, local services).
    pub allow_loopback: bool,
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (carrier-grade NAT) and fc00::/7.
    pub allow_private: bool,
}

impl AddressPolicy {
    /// Public addresses only: what a setting changed from the console gets by default.
    pub const PUBLIC_ONLY: AddressPolicy = AddressPolicy {
        allow_loopback: false,
        allow_private: false,
    };

    /// Loopback and private ranges too (still never link-local): for addresses the
    /// operator typed on the command line.
    pub const OPERATOR: AddressPolicy = AddressPolicy {
        allow_loopback: true,
        allow_private: true,
    };

    /// Why `ip` may not be reached, or `None` when it may.
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        match classify(ip) {
            Range::Public => None,
            Range::Forbidden => Some(
                "a link-local, metadata, multicast or unspecified address, which rostersync never contacts",
            ),
            Range::Loopback if self.allow_loopback => None,
            Range::Loopback => Some(
                "a loopback address (this machine); the owner may allow it with allow_loopback = true under [network]",
            ),
            Range::Private if self.allow_private => None,
            Range::Private => Some(
                "a private-network address; the owner may allow it with allow_private = true under [network]",
            ),
        }
    }

    /// Checks a URL before anything is sent: http(s) only, no `user:password@`, and a
    /// host given as an address must be one the policy allows (names are checked when
    /// they resolve, by the client from [`AddressPolicy::client_builder`]).
    pub fn check_url(&self, what: &str, url: &str) -> Result<reqwest::Url, String> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| format!("{what} '{}' is not a URL: {e}", redact_url(url)))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "{what} '{}' must start with https:// (or http:// for a local test server)",
                redact_url(url)
            ));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(format!(
                "{what} '{}' carries a user name or password: put credentials in the client id and secret, not in the URL",
                redact_url(url)
            ));
        }
        let Some(host) = parsed.host_str() else {
            return Err(format!("{what} '{}' has no host", redact_url(url)));
        };
        let ip = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        if let Some(reason) = ip.and_then(|ip| self.refusal(ip)) {
            return Err(format!("{what} '{}' points at {reason}", redact_url(url)));
        }
        Ok(parsed)
    }

    /// An HTTP client builder that resolves names through this policy and follows
    /// redirects only within one origin.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(PolicyResolver { policy: *self }))
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let same = attempt
                    .previous()
                    .last()
                    .is_some_and(|prev| same_origin(prev, attempt.url()));
                if same && attempt.previous().len() < 5 {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }))
    }
}

fn same_origin(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

#[derive(Debug, PartialEq, Eq)]
enum Range {
    Public,
    Loopback,
    Private,
    Forbidden,
}

fn classify(ip: IpAddr) -> Range {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Range {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Range::Loopback
    } else if ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0
        || a >= 240
    {
        Range::Forbidden
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Range::Private
    } else {
        Range::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> Range {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Range::Loopback
    } else if ip.is_unspecified() || ip.is_multicast() || (first & 0xffc0) == 0xfe80 {
        Range::Forbidden
    } else if (first & 0xfe00) == 0xfc00 {
        Range::Private
    } else {
        Range::Public
    }
}

/// Resolves names with the system resolver and keeps only the addresses the policy
/// allows; a name with none left fails with the reason.
struct PolicyResolver {
    policy: AddressPolicy,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.refusal(a.ip()) {
                    None => true,
                    Some(reason) => {
                        refused = Some(reason);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let reason = refused.unwrap_or("no address");
                return Err(format!("{host} resolves to {reason}").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// `url` without its `user:password@` part and with the values of query parameters that
/// carry a credential (`password=`, `client_secret=`, `access_token=`, `sig=`, `key=` …)
/// replaced by `REDACTED`, for logs and messages.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let userinfo = !u.username().is_empty() || u.password().is_some();
            if userinfo {
                let _ = u.set_username("");
                let _ = u.set_password(None);
            }
            let secret_query = u.query_pairs().any(|(name, _)| names_a_credential(&name));
            if secret_query {
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(name, value)| {
                        let value = if names_a_credential(&name) {
                            "REDACTED".to_owned()
                        } else {
                            value.into_owned()
                        };
                        (name.into_owned(), value)
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            // Nothing hidden: the URL as given, not as the parser would write it.
            if userinfo || secret_query {
                u.to_string()
            } else {
                url.to_owned()
            }
        }
        // Not a URL: drop anything up to an '@' that comes before the first '/' after
        // the scheme, the only place userinfo can hide, and everything after a '?'.
        Err(_) => {
            let url = url.split_once('?').map_or(url, |(base, _)| base);
            match (url.find("://"), url.find('@')) {
                (Some(s), Some(at)) if at > s && !url[s + 3..at].contains('/') => {
                    format!("{}{}", &url[..s + 3], &url[at + 1..])
                }
                _ => url.to_owned(),
            }
        }
    }
}

/// Whether a query parameter or a setting named `name` may carry a credential (a
/// password, a secret, a token, a key, a signature, a webhook's address).
pub fn names_a_credential(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "pass", "secret", "token", "key", "sig", "auth", "code", "webhook",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// The causes behind an error, each after `: ` (empty when it has none), to follow the
/// error's own words: an HTTP client's message alone rarely says what went wrong.
pub fn error_causes(e: &dyn std::error::Error) -> String {
    let mut text = String::new();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Whether a body is an HTML page (a login, proxy or maintenance page) rather than an
/// answer: its first 64 bytes, blanks skipped, open a document or its head.
pub fn is_html_page(body: &[u8]) -> bool {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let head = String::from_utf8_lossy(&body[start..body.len().min(start + 64)]).to_lowercase();
    head.starts_with("<!doctype html") || head.starts_with("<html") || head.contains("<head")
}

/// The most of a remote server's words shown to a person.
pub const REMOTE_TEXT_MAX: usize = 120;

/// A remote server's text as one short line fit to show: control characters and
/// line breaks become spaces, runs of spaces collapse, and it is cut at
/// [`REMOTE_TEXT_MAX`] characters. An HTML page is named, not shown.
pub fn short_remote_text(text: &str) -> String {
    if is_html_page(text.as_bytes()) {
        return "an HTML page (a login, proxy or maintenance page?), not an API answer".into();
    }
    let trimmed = text.trim_start();
    let mut out = String::new();
    let mut space = false;
    for c in trimmed.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        if out.chars().count() >= REMOTE_TEXT_MAX {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_are_classified() {
        let strict = AddressPolicy::PUBLIC_ONLY;
        let open = AddressPolicy::OPERATOR;
        for public in ["8.8.8.8", "203.0.114.7", "2001:4860::8888", "100.128.0.1"] {
            assert_eq!(strict.refusal(ip(public)), None, "{public}");
        }
        for never in [
            "169.254.169.254",
            "169.254.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "fe80::1",
            "::",
            "ff02::1",
            "::ffff:169.254.169.254",
        ] {
            assert!(strict.refusal(ip(never)).is_some(), "{never}");
            assert!(
                open.refusal(ip(never)).is_some(),
                "{never} even when allowed"
            );
        }
        for lo in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            assert!(strict.refusal(ip(lo)).unwrap().contains("loopback"), "{lo}");
            assert_eq!(open.refusal(ip(lo)), None, "{lo}");
        }
        for private in [
            "10.1.2.3",
            "172.16.0.9",
            "192.168.1.1",
            "100.64.0.1",
            "fd00::1",
        ] {
            assert!(
                strict.refusal(ip(private)).unwrap().contains("private"),
                "{private}"
            );
            let loopback_only = AddressPolicy {
                allow_loopback: true,
                allow_private: false,
            };
            assert!(loopback_only.refusal(ip(private)).is_some(), "{private}");
            assert_eq!(open.refusal(ip(private)), None, "{private}");
        }
    }

    #[test]
    fn urls_are_checked_before_anything_is_sent() {
        let strict = AddressPolicy::PUBLIC_ONLY;
        assert!(
            strict
                .check_url("API URL", "https://sis.example.org/ims")
                .is_ok()
        );
        let e = strict
            .check_url("API URL", "http://169.254.169.254/latest/meta-data")
            .unwrap_err();
        assert!(e.contains("link-local"), "{e}");
        let e = strict
            .check_url("token URL", "http://[::1]:8080/t")
            .unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        let e = strict
            .check_url("API URL", "https://admin:hunter2@sis.example.org/")
            .unwrap_err();
        assert!(e.contains("user name or password"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = strict
            .check_url("API URL", "ftp://sis.example.org/")
            .unwrap_err();
        assert!(e.contains("https://"), "{e}");
    }

    #[test]
    fn userinfo_is_redacted() {
        assert_eq!(
            redact_url("https://u:p%40ss@sis.example.org:8443/x?y=1"),
            "https://sis.example.org:8443/x?y=1"
        );
        assert_eq!(
            redact_url("https://sis.example.org/x"),
            "https://sis.example.org/x"
        );
        assert_eq!(redact_url("weird://u:p@[bad/x"), "weird://[bad/x");
        assert_eq!(redact_url("weird://u:p@[bad/x?token=t0p"), "weird://[bad/x");
    }

    #[test]
    fn credentials_in_the_query_are_redacted() {
        assert_eq!(
            redact_url("https://sis.example.org/ims?client_secret=s3cret&page=2&Access_Token=t0k"),
            "https://sis.example.org/ims?client_secret=REDACTED&page=2&Access_Token=REDACTED"
        );
        assert_eq!(
            redact_url("postgres://u@h/db?password=hunter2&sslmode=require"),
            "postgres://h/db?password=REDACTED&sslmode=require"
        );
        assert_eq!(
            redact_url("https://h.example/x?sig=abc&api_key=k&code=c"),
            "https://h.example/x?sig=REDACTED&api_key=REDACTED&code=REDACTED"
        );
        assert_eq!(
            redact_url("https://h.example/x?limit=100&sort=name"),
            "https://h.example/x?limit=100&sort=name"
        );
    }

    /// The CLI names its database with this too: PostgreSQL URLs and SQLite file paths.
    #[test]
    fn database_locations_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://h:5432/db"
        );
        assert_eq!(
            redact_url("postgres://u:p@ss@h/db?sslmode=require"),
            "postgres://h/db?sslmode=require"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact_url("/tmp/x.db"), "/tmp/x.db");
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }

    #[test]
    fn remote_text_is_one_short_clean_line() {
        assert_eq!(
            short_remote_text("  not\r\nfound\t\u{1b}[31m "),
            "not found [31m"
        );
        let long = "x".repeat(5000);
        assert_eq!(
            short_remote_text(&long).chars().count(),
            REMOTE_TEXT_MAX + 1
        );
        assert!(
            short_remote_text("<!DOCTYPE html><html><body>secret admin panel")
                .contains("HTML page")
        );
        assert!(!short_remote_text("<html><head><title>Login</title>").contains("Login"));
    }

    #[tokio::test]
    async fn names_resolving_inward_are_refused() {
        let client = AddressPolicy::PUBLIC_ONLY.client_builder().build().unwrap();
        let e = client.get("http://localhost:9/").send().await.unwrap_err();
        let chain = format!("{:?}", e);
        assert!(chain.contains("loopback"), "{chain}");
    }
}
