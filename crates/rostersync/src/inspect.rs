//! `rostersync inspect SOURCE`: read a source end to end and say what it holds. The
//! console's *Validate* button runs the same check.

use std::path::PathBuf;

use clap::Args;
use oneroster::Version;
use oneroster::oauth1::SignatureMethod;
use oneroster::rest::{Auth, CredentialStyle, RestConfig};
use oneroster::source::Source;

use crate::{Failure, output};

#[derive(Args)]
pub struct InspectArgs {
    /// A CSV zip, a folder of CSV files, or a REST base URL (the part before `/users`).
    source: String,
    /// OAuth client id (OAuth 1: consumer key).
    #[arg(long)]
    client_id: Option<String>,
    /// OAuth client secret; prefer the environment variable to keep it out of shell history.
    #[arg(long, env = "ROSTERSYNC_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Default: oauth2 with a token URL or for 1.2, oauth1-sha256 for 1.1, none without a client id.
    #[arg(long, value_enum)]
    auth: Option<AuthMethod>,
    /// OAuth 2 token URL (Infinite Campus: https://HOST/campus/oauth2/token?appName=APP).
    #[arg(long)]
    token_url: Option<String>,
    /// Send OAuth 2 credentials as form fields instead of HTTP Basic.
    #[arg(long)]
    form_credentials: bool,
    /// OAuth 2 scope to ask for.
    #[arg(long)]
    scope: Option<String>,
    /// OneRoster version; default: taken from the URL (v1p2 → 1.2) or the CSV manifest.
    #[arg(long, value_parser = parse_version)]
    version: Option<Version>,
    /// Records per page.
    #[arg(long, default_value_t = 1000)]
    page_size: u32,
    /// Requests in flight at once (Infinite Campus: 1 at peak, at most 5 off-peak).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMethod {
    Oauth2,
    #[value(name = "oauth1-sha256")]
    Oauth1Sha256,
    #[value(name = "oauth1-sha1")]
    Oauth1Sha1,
    None,
}

pub fn parse_version(s: &str) -> Result<Version, String> {
    Version::parse(s).ok_or_else(|| format!("'{s}' is not a OneRoster version: use 1.1 or 1.2"))
}

impl InspectArgs {
    fn rest_config(&self) -> Result<RestConfig, Failure> {
        let url = self.source.clone();
        let mut config = RestConfig::new(url, Auth::None);
        if let Some(v) = self.version {
            config.version = v;
        }
        let method =
            self.auth
                .unwrap_or(match (&self.client_id, &self.token_url, config.version) {
                    (None, _, _) => AuthMethod::None,
                    (Some(_), Some(_), _) | (Some(_), None, Version::V1_2) => AuthMethod::Oauth2,
                    (Some(_), None, Version::V1_1) => AuthMethod::Oauth1Sha256,
                });
        let need = |what: &Option<String>, flag: &str| {
            what.clone()
                .ok_or_else(|| Failure::config(format!("this auth method needs {flag}")))
        };
        config.auth = match method {
            AuthMethod::None => Auth::None,
            AuthMethod::Oauth1Sha256 | AuthMethod::Oauth1Sha1 => Auth::OAuth1 {
                consumer_key: need(&self.client_id, "--client-id")?,
                consumer_secret: need(
                    &self.client_secret,
                    "--client-secret (or ROSTERSYNC_CLIENT_SECRET)",
                )?,
                method: if method == AuthMethod::Oauth1Sha1 {
                    SignatureMethod::HmacSha1
                } else {
                    SignatureMethod::HmacSha256
                },
            },
            AuthMethod::Oauth2 => Auth::OAuth2 {
                token_url: need(&self.token_url, "--token-url")?,
                client_id: need(&self.client_id, "--client-id")?,
                client_secret: need(
                    &self.client_secret,
                    "--client-secret (or ROSTERSYNC_CLIENT_SECRET)",
                )?,
                scope: self.scope.clone(),
                credentials: if self.form_credentials {
                    CredentialStyle::Form
                } else {
                    CredentialStyle::Basic
                },
            },
        };
        config.page_size = self.page_size;
        config.concurrency = self.concurrency;
        Ok(config)
    }

    fn open(&self) -> Result<Source, Failure> {
        let is_url = self.source.starts_with("http://") || self.source.starts_with("https://");
        if !is_url && let Some((scheme, _)) = self.source.split_once("://") {
            return Err(Failure::config(format!(
                "'{scheme}://' is not a source rostersync reads: give an http(s):// OneRoster base URL (the part before /users) or the path of a CSV zip or folder"
            )));
        }
        let source = if is_url {
            Source::open_rest(self.rest_config()?)
        } else {
            Source::open_csv(&PathBuf::from(&self.source))
        };
        source.map_err(|e| Failure::config(e.to_string()))
    }
}

pub async fn run(args: InspectArgs) -> Result<u8, Failure> {
    let mut source = args.open()?;
    let inspection = oneroster::inspect::inspect(&mut source)
        .await
        .map_err(|e| Failure::config(e.to_string()))?;
    if args.json {
        output::json(&inspection);
    } else {
        print_table(&inspection, &args.source);
    }
    Ok(0)
}

fn print_table(i: &oneroster::inspect::Inspection, source: &str) {
    output::line(&format!(
        "{} source, OneRoster {}: {source}",
        i.kind, i.version
    ));
    output::line(&format!(
        "{:<18} {:>10} {:>7} {:>10}  complete",
        "collection", "records", "pages", "expected"
    ));
    for (name, c) in &i.collections {
        output::line(&format!(
            "{:<18} {:>10} {:>7} {:>10}  {}",
            name,
            c.records,
            c.pages,
            c.expected.map_or("-".to_owned(), |e| e.to_string()),
            if c.complete { "yes" } else { "NO" }
        ));
    }
    if !i.roles.is_empty() {
        let roles: Vec<String> = i.roles.iter().map(|(r, n)| format!("{r} {n}")).collect();
        output::line(&format!("roles: {}", roles.join(", ")));
    }
    let findings = i.findings();
    if !findings.is_empty() {
        output::line("read, but not as the standard has it:");
        for f in &findings {
            output::line(&format!("  {}", f.line));
            for e in &f.examples {
                output::line(&format!("    - {e}"));
            }
        }
    }
    if !i.warnings.is_empty() {
        output::line(&format!("warnings ({}):", i.warnings.len()));
        for w in &i.warnings {
            output::line(&format!("  - {w}"));
        }
    }
}
