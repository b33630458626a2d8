//! The console's CLI: the first owner `init` prints once, `admin add|passwd` (generated
//! or from stdin), `token create` (prints only the token), and `serve` answering.

use std::io::Write;
use std::process::Stdio;

use crate::harness::{Backend, Cli, Serve};

#[test]
fn console_accounts_tokens_and_serve() {
    let Some(cli) = Cli::new(Backend::Sqlite) else {
        return;
    };
    // `Cli::new` ran `init`: the owner exists; a second init prints no password.
    let again = cli.ok(&["init"]);
    assert!(again.contains("already initialised"), "{again}");
    assert!(
        !again.contains("console owner"),
        "the password is shown once: {again}"
    );
    let list = cli.ok(&["admin", "list"]);
    assert!(list.contains("admin") && list.contains("owner"), "{list}");

    let password = cli.ok(&["admin", "add", "alice", "--role", "admin"]);
    assert_eq!(
        password.trim().len(),
        20,
        "a generated password alone: {password}"
    );
    let dup = cli.run(&["admin", "add", "alice", "--role", "viewer"]);
    assert_eq!(dup.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));

    let mut child = cli
        .command(&[
            "admin",
            "add",
            "bob",
            "--role",
            "viewer",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty(),
        "nothing to print when the password was given"
    );
    let short = cli
        .command(&["admin", "passwd", "bob", "--password-stdin"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let out = {
        let mut c = short;
        c.stdin.take().unwrap().write_all(b"short\n").unwrap();
        c.wait_with_output().unwrap()
    };
    assert_eq!(
        out.status.code(),
        Some(2),
        "too short a password is refused"
    );

    let token = cli.ok(&["token", "create", "--scope", "read", "--name", "ci"]);
    let token = token.trim();
    assert!(
        token.starts_with("rs_") && !token.contains(' '),
        "only the token: {token}"
    );
    let tokens = cli.ok(&["token", "list"]);
    assert!(tokens.contains("ci") && !tokens.contains(token), "{tokens}");

    // serve answers with the token.
    let serve = Serve::start(|args| cli.command(args));
    let client = reqwest::blocking::Client::new();
    let users = client
        .get(format!("{}/api/v1/users", serve.base))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(users.status().as_u16(), 200);
    let denied = client
        .get(format!("{}/api/v1/users", serve.base))
        .send()
        .unwrap();
    assert_eq!(denied.status().as_u16(), 401);
}

/// One sign-in with a wrong password, claiming to come from `forwarded_for`.
fn wrong_sign_in(client: &reqwest::blocking::Client, base: &str, forwarded_for: &str) -> u16 {
    let form = client.get(format!("{base}/login")).send().unwrap();
    let cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("rs_login="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let html = form.text().unwrap();
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = &html[at..at + html[at..].find('"').unwrap()];
    client
        .post(format!("{base}/login"))
        .header("cookie", format!("rs_login={cookie}"))
        .header("x-forwarded-for", forwarded_for)
        .form(&[
            ("name", "admin"),
            ("password", "not the password"),
            ("csrf", csrf),
        ])
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn serve_trusts_only_the_proxies_it_is_told_of() {
    let Some(cli) = Cli::new(Backend::Sqlite) else {
        return;
    };
    let bad = cli.run(&["serve", "--trusted-proxy", "10.0.0.1/8"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("did you mean 10.0.0.0/8"), "{err}");

    let serve = Serve::start(|args| {
        let mut serve = cli.command(args);
        serve.args([
            "--trusted-proxy",
            "192.0.2.0/24",
            "--trusted-proxy",
            "127.0.0.1",
        ]);
        serve
    });
    let base = &serve.base;
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Five wrong passwords from one client behind the proxy: the sixth waits…
    for _ in 0..5 {
        assert_eq!(wrong_sign_in(&client, base, "203.0.113.7"), 303);
    }
    assert_eq!(wrong_sign_in(&client, base, "203.0.113.7"), 429);
    // … but another client behind the same proxy is its own address.
    assert_eq!(wrong_sign_in(&client, base, "198.51.100.7"), 303);
}
