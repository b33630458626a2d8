//! Where the district's credentials may go, from the console and the API: a stored secret
//! never follows a moved URL, `client_secret_env` is the operator's, requests never reach
//! link-local or (unless the owner allowed it) internal addresses, redirects to another
//! host are not followed, a remote answer is shown only as a short line, looking at
//! Settings never contacts the SIS, and CSV packages come only from the import directory.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{App, Auth, Body, form};
use crate::on_both;

/// A plain HTTP listener that counts the requests it is sent and answers each with
/// `answer` (a whole HTTP response).
struct Trap {
    url: String,
    hits: Arc<AtomicUsize>,
}

impl Trap {
    fn start(answer: String) -> Trap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                // The request line and headers; the body (if any) is not needed.
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line == "\r\n" {
                        break;
                    }
                    line.clear();
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Trap { url, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// The source `campus` back on the simulator, with its secret.
fn reset(app: &App) {
    app.configure_sim_at(app.sim.as_ref().unwrap(), "");
}

fn settings_doc(app: &App, auth: &Auth) -> Value {
    app.get("/api/v1/settings", auth).json()["config"].clone()
}

fn put_settings(app: &App, auth: &Auth, doc: Value) -> crate::harness::Reply {
    app.request(Method::PUT, "/api/v1/settings", auth, Some(Body::Json(doc)))
}

fn validate(app: &App, auth: &Auth) -> crate::harness::Reply {
    app.request(Method::POST, "/api/v1/sources/campus/validate", auth, None)
}

fn a_moved_destination_drops_the_stored_secret(app: App) {
    let write = Auth::Bearer(app.write_token.clone());
    let admin = app.login("adam");
    let trap = Trap::start("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".into());

    // A path or query change keeps the secret: the credentials go to the same host.
    let mut doc = settings_doc(&app, &write);
    let url = doc["source"][0]["url"].as_str().unwrap().to_owned();
    doc["source"][0]["url"] = json!(format!("{url}/"));
    let r = put_settings(&app, &write, doc);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(app.store.source_secret("campus").unwrap().is_some());
    assert_eq!(validate(&app, &write).status, 200, "still reads the SIS");

    // The API URL moved to another host (the trap): the secret is forgotten, said so,
    // and Validate sends nothing there.
    let mut doc = settings_doc(&app, &write);
    doc["source"][0]["url"] = json!(format!("{}/ims/oneroster/v1p1", trap.url));
    doc["source"][0]["token_url"] = json!(format!("{}/token", trap.url));
    let r = put_settings(&app, &write, doc);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("client secret removed"),
        "the answer says the secret went: {}",
        r.body
    );
    assert_eq!(app.store.source_secret("campus").unwrap(), None);
    let v = validate(&app, &write);
    assert_eq!(v.status, 422, "{}", v.body);
    assert!(v.body.contains("client secret is not set"), "{}", v.body);
    assert_eq!(trap.hits(), 0, "no request reached the new host");

    // Through the console: the token URL alone moving also forgets a new secret's
    // predecessor, unless the same form brings a secret.
    reset(&app); // back to the simulator, with its secret
    let s = app.store.load_config().unwrap();
    let src = s.source("campus").unwrap().clone();
    let moved_token = format!("{}/token", trap.url);
    let fields = |secret: &'static str| {
        vec![
            ("kind", "oneroster-api".to_owned()),
            ("url", src.url.clone().unwrap()),
            ("client_id", src.client_id.clone().unwrap()),
            ("client_secret", secret.to_owned()),
            ("auth", "oauth2".to_owned()),
            ("token_url", moved_token.clone()),
        ]
    };
    let post = |pairs: Vec<(&str, String)>| {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        app.request(
            Method::POST,
            "/settings/campus/authentication",
            &admin,
            form(&pairs),
        )
    };
    assert_eq!(post(fields("")).status, 303);
    assert_eq!(
        app.store.source_secret("campus").unwrap(),
        None,
        "token URL moved"
    );
    reset(&app);
    assert_eq!(post(fields("a-new-secret-for-the-new-host")).status, 303);
    assert!(
        app.store.source_secret("campus").unwrap().is_some(),
        "a secret given with the move is stored"
    );
    assert_eq!(trap.hits(), 0);

    // Changing the auth method is a move too.
    reset(&app);
    let mut doc = settings_doc(&app, &write);
    doc["source"][0]["auth"] = json!("oauth1-sha256");
    let r = put_settings(&app, &write, doc);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        app.store.source_secret("campus").unwrap(),
        None,
        "auth changed"
    );
}

fn client_secret_env_is_the_operators(app: App) {
    let owner = app.login("olivia");
    let write = Auth::Bearer(app.write_token.clone());
    for (who, var, status, words) in [
        (&write, "ROSTERSYNC_MASTER_KEY", 422, "ROSTERSYNC_*"),
        (&owner, "ROSTERSYNC_DATABASE", 422, "ROSTERSYNC_*"),
        (&write, "PATH", 403, "only the operator"),
        (&owner, "HOME", 403, "only the operator"),
        (
            &owner,
            "SURELY_NOT_SET_ANYWHERE_42",
            403,
            "only the operator",
        ),
    ] {
        let mut doc = app.get("/api/v1/settings", who).json()["config"].clone();
        doc["source"][0]["client_secret_env"] = json!(var);
        let r = put_settings(&app, who, doc);
        assert_eq!(r.status, status, "{var}: {}", r.body);
        assert!(r.body.contains(words), "{var}: {}", r.body);
        assert!(
            !r.body.contains("is not set"),
            "no hint whether {var} exists"
        );
    }
    let config = app.store.load_config().unwrap();
    assert_eq!(config.source("campus").unwrap().client_secret_env, None);
}

fn requests_reach_only_allowed_addresses(app: App) {
    let owner = app.login("olivia");
    let admin = app.login("adam");
    let write = Auth::Bearer(app.write_token.clone());

    // [network] is the owner's: neither an admin nor a write token may widen it.
    for who in [&admin, &write] {
        let mut doc = settings_doc(&app, &owner);
        doc["network"] = json!({"allow_loopback": true, "allow_private": true});
        let r = put_settings(&app, who, doc);
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(r.body.contains("network"), "{}", r.body);
    }

    // Link-local (cloud metadata) is refused before anything is sent, whatever [network]
    // allows.
    let mut doc = settings_doc(&app, &owner);
    doc["network"] = json!({"allow_loopback": true, "allow_private": true});
    doc["source"][0]["url"] = json!("http://169.254.169.254/latest/meta-data");
    doc["source"][0]["client_secret"] = json!("fresh");
    assert_eq!(put_settings(&app, &owner, doc).status, 200);
    let v = validate(&app, &write);
    assert_eq!(v.status, 422, "{}", v.body);
    assert!(v.body.contains("link-local"), "{}", v.body);

    // Loopback only when the owner allowed it: the simulator listens on 127.0.0.1.
    reset(&app);
    assert_eq!(validate(&app, &write).status, 200);
    let mut doc = settings_doc(&app, &owner);
    doc["network"] = json!({});
    let r = put_settings(&app, &owner, doc);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = validate(&app, &write);
    assert_eq!(v.status, 422, "{}", v.body);
    assert!(v.body.contains("loopback"), "{}", v.body);
    // A name that resolves to loopback is refused as well.
    let mut doc = settings_doc(&app, &owner);
    for key in ["url", "token_url"] {
        let url = doc["source"][0][key]
            .as_str()
            .unwrap()
            .replace("127.0.0.1", "localhost");
        doc["source"][0][key] = json!(url);
    }
    doc["source"][0]["client_secret"] = json!("fresh");
    assert_eq!(put_settings(&app, &owner, doc).status, 200);
    let v = validate(&app, &write);
    assert_eq!(v.status, 422, "{}", v.body);
    assert!(v.body.contains("loopback"), "{}", v.body);

    // A redirect to another host is not followed: the other host hears nothing.
    let elsewhere = Trap::start("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".into());
    let redirecting = Trap::start(format!(
        "HTTP/1.1 302 Found\r\nLocation: {}/ims/users\r\nContent-Length: 0\r\n\r\n",
        elsewhere.url
    ));
    let big_page = format!(
        "<html><head><title>Portal sign-in</title></head><body>{}</body></html>",
        "INTERNAL-DETAIL ".repeat(500)
    );
    let chatty = Trap::start(format!(
        "HTTP/1.1 500 Oops\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{big_page}",
        big_page.len()
    ));
    for (trap, expect) in [(&redirecting, "redirect"), (&chatty, "HTML page")] {
        let mut doc = settings_doc(&app, &owner);
        doc["network"] = json!({"allow_loopback": true});
        doc["source"][0]["url"] = json!(format!("{}/ims", trap.url));
        doc["source"][0]["auth"] = json!("none");
        doc["source"][0]["retry_attempts"] = json!(1);
        let r = put_settings(&app, &owner, doc);
        assert_eq!(r.status, 200, "{}", r.body);
        let v = validate(&app, &write);
        assert_eq!(v.status, 422, "{}", v.body);
        assert!(v.body.contains(expect), "{expect}: {}", v.body);
        assert!(!v.body.contains("INTERNAL-DETAIL"), "{}", v.body);
        assert!(!v.body.contains("Portal sign-in"), "{}", v.body);
        assert!(
            v.body.len() < 2000,
            "a short answer, not the page: {}",
            v.body
        );
        assert!(trap.hits() >= 1);
        let audit = app.get("/api/v1/audit", &owner).body;
        assert!(!audit.contains("INTERNAL-DETAIL"), "{audit}");
    }
    assert_eq!(elsewhere.hits(), 0, "the redirect was not followed");
}

fn looking_at_settings_never_contacts_the_sis(app: App) {
    let viewer = app.login("vera");
    let admin = app.login("adam");
    let read = Auth::Bearer(app.read_token.clone());
    let trap = Trap::start("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n".into());
    let mut config = app.store.load_config().unwrap();
    config.sources[0].url = Some(format!("{}/ims", trap.url));
    config.sources[0].auth = Some(rostersync_core::settings::AuthMethod::None);
    config.sources[0].retry_attempts = Some(1);
    app.store
        .save_config(&config, &[], "test", jiff::Timestamp::now())
        .unwrap();
    for who in [&viewer, &read, &admin] {
        for _ in 0..5 {
            let r = app.get("/settings?source=campus&validated=1", who);
            assert_eq!(r.status, 200);
        }
    }
    assert_eq!(trap.hits(), 0, "GETs of Settings read nothing from the SIS");

    // A viewer cannot run Validate; an admin's POST runs it once, is audited, and its
    // result is what the page shows afterwards, to anyone.
    assert_eq!(
        app.request(
            Method::POST,
            "/settings/campus/validate",
            &viewer,
            form(&[])
        )
        .status,
        403
    );
    let r = app.request(Method::POST, "/settings/campus/validate", &admin, form(&[]));
    assert_eq!(r.status, 303, "{}", r.body);
    let after_one = trap.hits();
    assert!(after_one >= 1, "the POST read the SIS");
    let page = app.get("/settings?source=campus", &viewer).body;
    assert!(
        page.contains("Validation failed"),
        "the stored result is shown"
    );
    assert!(page.contains("503"), "with the status it got");
    assert_eq!(trap.hits(), after_one, "showing it read nothing");
    let audit = app.get("/api/v1/audit", &admin).json();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "source.validate"),
        "{audit}"
    );
    // Again at once: refused, and nothing sent.
    let again = validate(&app, &Auth::Bearer(app.write_token.clone()));
    assert_eq!(again.status, 429, "{}", again.body);
    assert_eq!(trap.hits(), after_one);
}

fn csv_packages_come_only_from_the_import_directory(app: App) {
    let write = Auth::Bearer(app.write_token.clone());
    let imports = app.dir.join("imports");
    for bad in ["/etc/passwd", "../rostersync.db", "sub/../../x.zip"] {
        let mut doc = settings_doc(&app, &write);
        doc["source"][0] = json!({"name": "campus", "kind": "oneroster-csv", "path": bad});
        let r = put_settings(&app, &write, doc);
        assert_eq!(r.status, 403, "{bad}: {}", r.body);
        assert!(r.body.contains("import directory"), "{}", r.body);
        assert!(!r.body.contains("No such file"), "{}", r.body);
    }
    let mut doc = settings_doc(&app, &write);
    doc["source"][0] = json!({"name": "campus", "kind": "oneroster-csv", "path": "district.zip"});
    let r = put_settings(&app, &write, doc);
    assert_eq!(r.status, 200, "{}", r.body);
    let stored = app.store.load_config().unwrap().sources[0]
        .path
        .clone()
        .unwrap();
    assert_eq!(stored, imports.join("district.zip").display().to_string());
    // The same path, saved again with another change, is not questioned.
    let mut doc = settings_doc(&app, &write);
    doc["source"][0]["import"] = json!({"add_rooms": false});
    assert_eq!(put_settings(&app, &write, doc).status, 200);
}

fn webhook_urls_are_hidden_from_readers(app: App) {
    let owner = app.login("olivia");
    let viewer = app.login("vera");
    let read = Auth::Bearer(app.read_token.clone());
    let hook = "https://hooks.example.org/T000/B000/capability-XYZ";
    let mut doc = settings_doc(&app, &owner);
    doc["source"][0]["webhook_url"] = json!(hook);
    let r = put_settings(&app, &owner, doc);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("capability-XYZ"), "{}", r.body);
    assert_eq!(settings_doc(&app, &owner)["source"][0]["webhook_url"], hook);
    // A console or API save is audited once, as a settings change, not as an import.
    let audit = app.get("/api/v1/audit", &owner).json();
    let by_owner: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["actor"] == "console:olivia")
        .map(|a| a["action"].as_str().unwrap())
        .filter(|a| a.starts_with("settings") || a.starts_with("config"))
        .collect();
    assert_eq!(by_owner, ["settings.change"], "{audit}");
    for who in [&viewer, &read] {
        let s = app.get("/api/v1/settings", who);
        assert!(!s.body.contains("capability-XYZ"), "{}", s.body);
        assert_eq!(s.json()["config"]["source"][0]["webhook_url"], "set");
        for page in ["/audit", "/api/v1/audit", "/settings?source=campus"] {
            let body = app.get(page, who).body;
            assert!(!body.contains("capability-XYZ"), "{page}: {body}");
        }
    }
}

on_both!(credentials, crate::harness::with_sim;
    a_moved_destination_drops_the_stored_secret,
    client_secret_env_is_the_operators,
    requests_reach_only_allowed_addresses,
    looking_at_settings_never_contacts_the_sis,
    csv_packages_come_only_from_the_import_directory,
    webhook_urls_are_hidden_from_readers,
);
