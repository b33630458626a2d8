//! An account source run from the command line, as a district admin does it: the SIS and
//! a Google Workspace source (the stand-in of Google's Directory API, started in this
//! test process) imported from one settings file with its key file, then `sync --source
//! google --json`, `--dry-run`, and a Validate-like read through `users show`: the same
//! run document as a SIS sync, accounts linked and never duplicated. A simulated
//! district's Google domain and Entra tenant (`sim serve-google`, `sim serve-entra`) link
//! to the accounts its SIS package made.

use serde_json::Value;
use sim::idp::google::{self, GoogleAccount, GoogleStandIn};

use crate::harness::{Cli, sample_district};

crate::on_both_backends!(
    google_accounts_arrive_and_link_through_the_cli,
    an_entra_certificate_is_imported_and_signs_the_reads,
    a_simulated_districts_idp_accounts_link_to_its_sis_accounts,
);

/// A `sim serve-…` stand-in in its own process; killed on drop (a failing test too).
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `rostersync ARGS` (a `sim serve-…`): the process, and the JSON line it printed.
fn serve(cli: &Cli, args: &[&str]) -> (Served, Value) {
    use std::io::BufRead as _;
    let mut served = Served(
        cli.command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufReader::new(served.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (served, serde_json::from_str(&line).unwrap())
}

/// `sim serve-google` and `sim serve-entra` (the domain and the tenant a bench reads at a
/// district's size), each in its own process: every student and staff member of the
/// district with an email has an account in both, and one sync of the district's package,
/// then one of Google and one of Entra, link each account to the person's, creating none;
/// the next sync of each changes nothing.
fn a_simulated_districts_idp_accounts_link_to_its_sis_accounts(cli: Cli) {
    let zip = cli.dir.join("district.zip");
    cli.ok(&["sim", "export-csv", "--users", "300", zip.to_str().unwrap()]);
    let key = cli.dir.join("sa.json");
    let secret = cli.dir.join("entra-secret");
    let (google, google_line) = serve(
        &cli,
        &[
            "sim",
            "serve-google",
            "--users",
            "300",
            "--key-file",
            key.to_str().unwrap(),
        ],
    );
    let (entra, entra_line) = serve(
        &cli,
        &[
            "sim",
            "serve-entra",
            "--users",
            "300",
            "--secret-file",
            secret.to_str().unwrap(),
        ],
    );
    let accounts = google_line["accounts"].as_u64().unwrap();
    assert!(accounts > 100, "{google_line}");
    assert_eq!(entra_line["accounts"], accounts, "{entra_line}");
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .contains("PRIVATE KEY")
    );
    #[cfg(unix)]
    for file in [&key, &secret] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{} is owner-only", file.display());
    }
    let text = |v: &Value, key: &str| v[key].as_str().unwrap().to_owned();
    cli.configure(&format!(
        "[network]\nallow_loopback = true\n\n\
         [[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n\n\
         [[source]]\nname = \"google\"\nkind = \"google-workspace\"\nkey_file = \"sa.json\"\n\
         subject = \"{}\"\napi_url = \"{}\"\n\n\
         [[source]]\nname = \"entra\"\nkind = \"entra-id\"\ntenant = \"{}\"\nclient_id = \"{}\"\n\
         client_secret = \"{}\"\ntoken_url = \"{}\"\ngraph_url = \"{}\"\n",
        zip.display(),
        text(&google_line, "subject"),
        text(&google_line, "api_url"),
        text(&entra_line, "tenant"),
        text(&entra_line, "client_id"),
        std::fs::read_to_string(&secret).unwrap(),
        text(&entra_line, "token_url"),
        text(&entra_line, "graph_url"),
    ));
    let sis = cli.json(&["sync", "--source", "sis"]);
    let created = sis["counts"]["created"].as_u64().unwrap();
    let runs: Vec<(Value, Value)> = ["google", "entra"]
        .iter()
        .map(|source| {
            let run = cli.json(&["sync", "--source", source]);
            (run, cli.json(&["sync", "--source", source]))
        })
        .collect();
    drop((google, entra));
    for (run, again) in runs {
        assert_eq!(run["status"], "succeeded", "{run}");
        let counts = &run["counts"];
        assert_eq!(
            (&counts["seen"], &counts["linked"], &counts["created"]),
            (
                &Value::from(accounts),
                &Value::from(accounts),
                &Value::from(0)
            ),
            "{run}"
        );
        assert_eq!(again["counts"]["unchanged"], accounts, "{again}");
        assert_eq!(again["counts"]["linked"], 0, "{again}");
    }
    assert_eq!(cli.users().len() as u64, created, "no account made twice");
}

fn google_accounts_arrive_and_link_through_the_cli(cli: Cli) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut mia = GoogleAccount::new(
        "g-mia",
        "mia.johnson@students.district.k12.us",
        "Mia",
        "Johnson",
    );
    mia.org_unit_path = "/Students/High".into();
    let running = runtime
        .block_on(GoogleStandIn::start(vec![
            mia,
            GoogleAccount::new("g-coach", "coach.reyes@district.k12.us", "Ana", "Reyes"),
        ]))
        .unwrap();
    cli.write("sa.json", &running.key_file());
    cli.configure(&format!(
        "[network]\nallow_loopback = true\n\n\
         [[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n\n\
         [[source]]\nname = \"google\"\nkind = \"google-workspace\"\nkey_file = \"sa.json\"\n\
         subject = \"{}\"\napi_url = \"{}\"\n",
        sample_district().display(),
        google::STANDIN_ADMIN,
        running.base_url()
    ));
    let exported = cli.ok(&["config", "export"]);
    assert!(!exported.contains("PRIVATE KEY"), "{exported}");
    assert!(!exported.contains("key_file ="), "{exported}");
    assert!(!exported.contains("sa.json"), "{exported}");

    cli.json(&["sync", "--source", "sis"]);
    let before = cli.users().len();

    // A dry run reads Google and says what it would do, writing nothing.
    let dry = cli.json(&["sync", "--source", "google", "--dry-run"]);
    assert_eq!(dry["dry_run"], true, "{dry}");
    assert_eq!(cli.users().len(), before);

    let run = cli.json(&["sync", "--source", "google"]);
    assert_eq!(run["source"], "google", "{run}");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["kind"], "full", "{run}");
    let counts = &run["counts"];
    assert_eq!(
        (&counts["seen"], &counts["linked"], &counts["created"]),
        (&Value::from(2), &Value::from(1), &Value::from(1)),
        "{run}"
    );
    assert_eq!(cli.users().len(), before + 1, "only the coach is new");
    // The dry run listed what the run then did: one link, one creation.
    assert_eq!(dry["counts"], run["counts"], "{dry}");
    let outcomes: Vec<&str> = dry["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["outcome"].as_str())
        .collect();
    assert!(
        outcomes.contains(&"linked") && outcomes.contains(&"created"),
        "{dry}"
    );

    // Mia's account is the SIS's, now signing in with Google; her card shows Google's side.
    let mia = cli.json(&["users", "show", "mia.johnson@students.district.k12.us"]);
    assert_eq!(mia["provider"], "google", "{mia}");
    let cards = mia["sis_cards"].as_array().cloned().unwrap_or_default();
    let google_card = cards
        .iter()
        .find(|c| c["source"] == "google")
        .unwrap_or_else(|| panic!("no google card in {mia}"));
    assert_eq!(google_card["primary_org"], "/Students/High", "{mia}");
    assert_eq!(google_card["sourced_id"], "g-mia", "{mia}");

    // Once more: nothing changed, nothing written.
    let again = cli.json(&["sync", "--source", "google"]);
    assert_eq!(again["counts"]["unchanged"], 2, "{again}");
    assert_eq!(again["counts"]["created"], 0, "{again}");

    // Google has no changes-only read: a configuration error (exit 2) that says so.
    let out = cli.run(&["sync", "--source", "google", "--delta"]);
    assert_eq!(out.status.code(), Some(2));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("no changes-only read"), "{said}");
    drop(running);
}

/// A SCIM connection's token is made for a configured connection only, by its name.
#[test]
fn a_scim_token_names_its_connection() {
    let Some(cli) = Cli::new(crate::harness::Backend::Sqlite) else {
        return;
    };
    let out = cli.run(&["token", "create", "--scope", "scim", "--name", "entra"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kind = \"scim\""), "{err}");
    assert!(out.stdout.is_empty(), "no token printed");
    cli.configure("[[source]]\nname = \"entra\"\nkind = \"scim\"\n");
    let token = cli.ok(&["token", "create", "--scope", "scim", "--name", "entra"]);
    assert!(token.trim().len() >= 32, "{token}");
    let listed = cli.json(&["token", "list"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "entra" && t["scope"] == "scim"),
        "{listed}"
    );
    // A SCIM connection is not synced: the error says what it is.
    let out = cli.run(&["sync", "--source", "entra"]);
    assert_eq!(out.status.code(), Some(2));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("SCIM connection"), "{said}");
}

/// An Entra source whose credential is a certificate: `certificate_file` read at import
/// (relative to the settings file), stored encrypted, never exported; the reads sign
/// their token requests with it (the stand-in checks the signature and the thumbprint).
fn an_entra_certificate_is_imported_and_signs_the_reads(cli: Cli) {
    use sim::idp::entra::{self, EntraStandIn, EntraUser};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let standin = runtime
        .block_on(EntraStandIn::start(vec![EntraUser::new(
            "e-1",
            "ann.lee@district.k12.us",
            "Ann",
            "Lee",
        )]))
        .unwrap();
    cli.write("entra-app.pem", entra::STANDIN_CERTIFICATE_PEM);
    cli.configure(&format!(
        "[network]\nallow_loopback = true\n\n[[source]]\nname = \"entra\"\nkind = \"entra-id\"\ntenant = \"{}\"\nclient_id = \"{}\"\ncertificate_file = \"entra-app.pem\"\ntoken_url = \"{}\"\ngraph_url = \"{}\"\n",
        entra::TENANT,
        entra::CLIENT_ID,
        standin.token_url(),
        standin.base_url()
    ));
    let exported = cli.ok(&["config", "export"]);
    assert!(!exported.contains("PRIVATE KEY"), "{exported}");
    assert!(!exported.contains("CERTIFICATE"), "{exported}");
    assert!(!exported.contains("certificate_file ="), "{exported}");
    let run = cli.json(&["sync", "--source", "entra"]);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["created"], 1, "{run}");
    // A certificate file and a secret together are two credentials: refused.
    let both = cli.write(
        "both.toml",
        "[[source]]\nname = \"entra\"\nkind = \"entra-id\"\ntenant = \"t\"\nclient_id = \"c\"\ncertificate_file = \"entra-app.pem\"\nclient_secret = \"s\"\n",
    );
    let out = cli.run(&["config", "import", both.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("two credentials"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(standin);
}
