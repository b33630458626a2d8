//! `rostersync inspect SOURCE`: read a source end to end and say what it holds. The
//! console's *Validate* button runs the same check.

use std::str::FromStr;

use clap::Args;
use oneroster::Version;
use oneroster::source::Source;
use rostersync_core::settings::{AuthMethod, Network, Secret, SourceConfig, SourceKind};

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
    #[arg(long, value_parser = AuthMethod::from_str)]
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

pub fn parse_version(s: &str) -> Result<Version, String> {
    Version::parse(s).ok_or_else(|| format!("'{s}' is not a OneRoster version: use 1.1 or 1.2"))
}

impl InspectArgs {
    /// The flags as a source's settings, checked by the same rules as a configured
    /// source's (`auth = "oauth2" needs token_url`), so the source opens the same way.
    fn settings(&self) -> Result<SourceConfig, Failure> {
        let is_url = self.source.starts_with("http://") || self.source.starts_with("https://");
        if !is_url && let Some((scheme, _)) = self.source.split_once("://") {
            return Err(Failure::config(format!(
                "'{scheme}://' is not a source rostersync reads: give an http(s):// OneRoster base URL (the part before /users) or the path of a CSV zip or folder"
            )));
        }
        let mut doc = if is_url {
            serde_json::json!({"name": "inspect", "kind": SourceKind::OneRosterApi.as_str(), "url": self.source})
        } else {
            serde_json::json!({"name": "inspect", "kind": SourceKind::OneRosterCsv.as_str(), "path": self.source})
        };
        let fields = [
            ("client_id", self.client_id.clone()),
            ("auth", self.auth.map(|a| a.as_str().to_owned())),
            ("token_url", self.token_url.clone()),
            ("scope", self.scope.clone()),
            ("version", self.version.map(|v| v.as_str().to_owned())),
        ];
        if let Some(obj) = doc.as_object_mut() {
            for (key, value) in fields {
                if let Some(v) = value {
                    obj.insert(key.into(), v.into());
                }
            }
            obj.insert("form_credentials".into(), self.form_credentials.into());
            obj.insert("page_size".into(), self.page_size.into());
            obj.insert("concurrency".into(), self.concurrency.into());
        }
        let settings: SourceConfig = serde_json::from_value(doc)
            .map_err(|e| Failure::config(format!("cannot read these flags: {e}")))?;
        settings
            .access()
            .map_err(|problem| Failure::config(flag_names(&problem)))?;
        Ok(settings)
    }

    fn open(&self) -> Result<Source, Failure> {
        let settings = self.settings()?;
        let secret = self.client_secret.as_deref().map(Secret::new);
        if settings.needs_secret() && secret.is_none() {
            return Err(Failure::config(
                "this auth method needs --client-secret (or ROSTERSYNC_CLIENT_SECRET)",
            ));
        }
        // Addresses the operator typed may be on this machine or the district's network.
        let network = Network {
            allow_loopback: true,
            allow_private: true,
        };
        engine::open_source(&settings, &network, secret.as_ref())
            .map_err(|e| Failure::config(e.to_string()))
    }
}

/// A settings rule in the command line's words: `needs client_id` → `needs --client-id`.
fn flag_names(problem: &str) -> String {
    [
        ("client_id", "--client-id"),
        ("token_url", "--token-url"),
        ("auth = ", "--auth "),
    ]
    .iter()
    .fold(problem.to_owned(), |p, (setting, flag)| {
        p.replace(setting, flag)
    })
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
