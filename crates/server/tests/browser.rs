//! A real browser (Debian's `chromium` driven by `chromedriver` over the WebDriver
//! protocol, with a small client here) walks the console like an admin: sign in,
//! configure a simulated source, validate it, start a sync and see it finish, map a
//! location, open the run and a user, remove a SIS link and change another, merge two
//! accounts (preview, then confirm), and approve a held run from Sync History.
//!
//! Without chromium the test is skipped loudly, except under `CI=true` where it fails.
//! A failing step leaves a screenshot in `target/browser-screenshots/`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rostersync_core::directory::AccountId;
use serde_json::{Value, json};
use store::RunId;

use crate::harness::{App, Backend, Options, PASSWORD, SIM_SECRET};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub(crate) fn find_driver() -> Option<(PathBuf, PathBuf)> {
    let driver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())?;
    let browser = ["/usr/bin/chromium", "/usr/lib/chromium/chromium"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())?;
    Some((driver, browser))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A WebDriver session on a chromedriver of its own.
pub(crate) struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: reqwest::blocking::Client,
    profile: PathBuf,
    name: &'static str,
}

impl Browser {
    pub(crate) fn start(
        name: &'static str,
        driver: &PathBuf,
        browser: &PathBuf,
        profile: PathBuf,
    ) -> Browser {
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.get(format!("{base}/status")).send().is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer in 20 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::fs::create_dir_all(&profile).unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": browser,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let r: Value = client
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_owned();
        Browser {
            driver: child,
            base,
            session,
            client,
            profile,
            name,
        }
    }

    pub(crate) fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.client.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().unwrap().json().unwrap();
        if v["value"].get("error").is_some() {
            panic!("WebDriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    pub(crate) fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})));
    }

    pub(crate) fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = format!("{}/session/{}/element", self.base, self.session);
            let v: Value = self
                .client
                .post(url)
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .unwrap()
                .json()
                .unwrap();
            if let Some(id) = v["value"][ELEMENT].as_str() {
                return id.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no element {css} on {}: {v}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn click(&self, css: &str) {
        let id = self.find(css);
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        );
    }

    pub(crate) fn fill(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        );
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        );
    }

    pub(crate) fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub(crate) fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the page holds `text`.
    pub(crate) fn wait_for(&self, text: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if self.source().contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "'{text}' never appeared on {}:\n{}",
                self.url(),
                self.source()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// With `ROSTERSYNC_SCREENSHOTS=1`, keeps a picture of the page (to look at the console).
    pub(crate) fn shot(&self, step: &str) {
        if std::env::var("ROSTERSYNC_SCREENSHOTS").is_ok_and(|v| v == "1") {
            self.save(&format!("{}-{step}", self.name));
        }
    }

    fn screenshot(&self) {
        self.save(self.name);
    }

    fn save(&self, name: &str) {
        let v = self.call(reqwest::Method::GET, "/screenshot", None);
        if let Some(b64) = v.as_str()
            && let Ok(png) = base64::engine::general_purpose::STANDARD.decode(b64)
        {
            let dir =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{name}.png"));
            let _ = std::fs::write(&file, png);
            eprintln!("screenshot: {}", file.display());
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.screenshot();
        }
        let _ = self
            .client
            .delete(format!("{}/session/{}", self.base, self.session))
            .send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The id after `/users/` in the first link to a user on the page.
pub(crate) fn first_user_link(html: &str, skip: usize) -> i64 {
    html.match_indices("href=\"/users/")
        .filter_map(|(i, _)| {
            let rest = &html[i + 13..];
            rest[..rest.find('"')?].parse::<i64>().ok()
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .nth(skip)
        .expect("a user link")
}

/// Chromium and chromedriver, or `None` after saying loudly that the walk is skipped
/// (never under `CI=true`, where a missing browser fails the test).
pub(crate) fn driver_or_skip() -> Option<(PathBuf, PathBuf)> {
    let found = find_driver();
    if found.is_none() {
        let ci = test_kit::ci();
        assert!(
            !ci,
            "CI is set but chromium / chromium-driver are not installed: the browser test must run in CI"
        );
        eprintln!(
            "\n*** skipped: the browser test needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver) ***\n"
        );
    }
    found
}

/// A browser signed in to `app` as `name` (a console account of the harness), on `path`.
pub(crate) fn signed_in(app: &App, name: &'static str, user: &str, path: &str) -> Option<Browser> {
    let (driver, chromium) = driver_or_skip()?;
    let b = Browser::start(
        name,
        &driver,
        &chromium,
        app.dir.join(format!("chromium-profile-{name}")),
    );
    b.go(&format!("{}{path}", app.url));
    b.fill("#name", user);
    b.fill("#password", PASSWORD);
    b.click("#sign-in");
    b.find("nav");
    Some(b)
}

#[test]
fn an_admin_runs_the_console_in_a_real_browser() {
    let Some((driver, chromium)) = driver_or_skip() else {
        return;
    };
    let app = App::start(
        Backend::Sqlite,
        Options {
            sim_users: Some(300),
            configure_source: false,
            ..Options::default()
        },
    )
    .unwrap();
    let sim = app.sim.as_ref().unwrap();
    let b = Browser::start(
        "console",
        &driver,
        &chromium,
        app.dir.join("chromium-profile"),
    );
    let url = &app.url;

    // Sign in.
    b.go(&format!("{url}/settings"));
    b.fill("#name", "olivia");
    b.fill("#password", PASSWORD);
    b.click("#sign-in");
    b.wait_for("Add a source", 10);

    // Configure the simulated district.
    b.fill("#new-source-name", "campus");
    b.fill("#new-source-location", sim.base_url());
    b.click("#add-source-button");
    b.wait_for("source campus added", 10);
    // The simulator listens on this machine: the owner allows loopback first (each
    // settings section is a page of its own, with one form).
    b.go(&format!("{url}/settings?source=campus&section=network"));
    b.click("#allow-loopback");
    b.click("#save-network");
    b.wait_for("Loopback addresses (this machine) are now allowed", 10);
    b.go(&format!("{url}/settings?source=campus"));
    b.fill("#auth-client-id", sim::DEFAULT_CLIENT_ID);
    b.fill("#auth-client-secret", SIM_SECRET);
    b.click("#auth-method option[value='oauth2']");
    b.fill("#auth-token-url", sim.token_url().unwrap());
    b.click("#save-authentication");
    b.wait_for("write-only: set", 10);
    assert!(
        !b.source().contains(SIM_SECRET),
        "the secret is never shown"
    );

    // Validate it.
    b.click("#validate");
    b.wait_for("every collection read completely", 30);
    b.shot("settings");

    // Start a sync and see it finish (htmx polls the progress).
    b.go(&format!("{url}/"));
    b.click("#start-sync");
    b.wait_for("open run", 60);
    assert!(b.source().contains("succeeded"), "{}", b.source());
    b.shot("overview");

    // Map a location.
    b.go(&format!("{url}/locations"));
    b.click("select[name='map.org-1'] option[value='+new']");
    b.fill("input[name='new.org-1']", "Cedar Campus");
    b.click("#default-location option[value='+new']");
    b.fill("#default-location-new", "District Office");
    b.click("#save-locations");
    b.wait_for("id=\"relocation-summary\"", 10);
    b.click("#confirm-new");
    b.click("#confirm-locations");
    b.wait_for("location mappings saved", 10);
    b.shot("locations");

    // Open the run and its created people.
    b.go(&format!("{url}/runs"));
    b.click("table a[href^='/runs/']");
    b.wait_for("run-status", 10);
    assert!(b.source().contains("succeeded"));
    b.click("a[href$='outcome=created']");
    b.wait_for("new in the SIS", 10);
    b.shot("run");

    // Open a user and remove its SIS link.
    b.go(&format!("{url}/users?linked=true&type=student"));
    let html = b.source();
    let first = first_user_link(&html, 0);
    let second = first_user_link(&html, 1);
    let first_sid = app
        .store
        .find_user(&first.to_string())
        .unwrap()
        .unwrap()
        .sis
        .unwrap()
        .sourced_id;
    b.go(&format!("{url}/users/{first}"));
    b.wait_for("SIS card", 10);
    b.click("#remove-link");
    // A confirmation page first, saying what will happen; nothing changed yet.
    b.wait_for("Nothing has changed yet", 10);
    assert!(b.source().contains(&first_sid), "{}", b.source());
    assert!(
        app.store
            .find_user(&first.to_string())
            .unwrap()
            .unwrap()
            .sis
            .is_some(),
        "the confirmation page changes nothing"
    );
    b.click("#confirm-unlink");
    b.wait_for("link removed", 10);
    assert!(
        app.store
            .find_user(&first.to_string())
            .unwrap()
            .unwrap()
            .sis
            .is_none()
    );

    // Change another user's SIS person to the one now free: found with the page's search
    // (a GET form), picked with its button; the SIS confirms the person first.
    b.go(&format!("{url}/users/{second}"));
    b.fill("#people-search", &first_sid);
    b.click("#people-search-go");
    b.wait_for("Change to this person", 10);
    b.click(&format!(
        "input[name='sourced_id'][value='{first_sid}'] + button.pick-person"
    ));
    b.wait_for("SIS user changed", 10);
    assert!(
        b.source().contains("confirmed by the SIS"),
        "{}",
        b.source()
    );
    b.shot("user");
    let now_linked = app
        .store
        .find_user(&second.to_string())
        .unwrap()
        .unwrap()
        .sis
        .unwrap();
    assert_eq!(now_linked.sourced_id, first_sid);

    // Merge the account that lost its link into that one: a preview first, then confirm.
    b.go(&format!("{url}/users/{first}"));
    b.fill("#merge-into", &second.to_string());
    b.click("#merge-preview");
    b.wait_for("What moves to", 10);
    assert!(b.source().contains("group memberships"), "{}", b.source());
    b.shot("merge");
    assert_eq!(
        app.store
            .find_user(&first.to_string())
            .unwrap()
            .unwrap()
            .user
            .merged_into,
        None,
        "a preview changes nothing"
    );
    b.click("#merge-confirm");
    b.wait_for("merged into this one", 10);
    assert_eq!(
        app.store
            .find_user(&first.to_string())
            .unwrap()
            .unwrap()
            .user
            .merged_into,
        Some(AccountId(second))
    );

    // A feed with no users: the sync is held. Approve it from Sync History.
    let empty = app.faulty_sim("empty_users=1");
    app.point_source_at(&empty);
    let held = app.sync_full();
    assert_eq!(held["status"], "held", "{held}");
    let held_id = RunId(held["run_id"].as_i64().unwrap());
    b.go(&format!("{url}/runs"));
    b.wait_for("is held for approval", 10);
    b.click(&format!("#runs a[href='/runs/{held_id}']"));
    b.wait_for("Held for approval", 10);
    assert!(b.source().contains("deactivations"), "{}", b.source());
    b.shot("held");
    b.click("#approve-run");
    b.wait_for("Approving applies its plan", 10);
    assert!(
        b.source().contains("accounts are deactivated")
            || b.source().contains("account is deactivated"),
        "{}",
        b.source()
    );
    assert_eq!(
        app.store.get_run(held_id).unwrap().unwrap().status,
        store::RunStatus::Held,
        "the confirmation page changes nothing"
    );
    b.click("#confirm-approve");
    b.wait_for("approved and applied", 30);
    b.shot("approved");
    assert!(
        b.source().contains("id=\"run-status\">succeeded"),
        "{}",
        b.source()
    );
    assert_eq!(
        app.store.get_run(held_id).unwrap().unwrap().status,
        store::RunStatus::Succeeded
    );
    app.stop_sim(empty);

    // Every action is in the audit log, by name.
    b.go(&format!("{url}/audit"));
    for action in [
        "run.approve",
        "user.merge",
        "sync.start",
        "settings.change",
        "source.validate",
        "console.login",
    ] {
        b.wait_for(action, 5);
    }
}
