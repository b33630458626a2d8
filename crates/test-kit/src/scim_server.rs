//! A third-party SCIM 2.0 server for the push client's tests: PyPI's `scim2-server`
//! (in-memory Users and Groups, filters, PATCH, the enterprise extension), run from the
//! Python that `ROSTERSYNC_SCIM_SERVER` names (`scripts/test-all` installs it in
//! `target/scim-tester`). Without it the test is skipped, loudly; under CI it panics.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{TempDir, ci, unique};

/// The variable naming the Python that has `scim2-server` installed.
pub const SCIM_SERVER_VAR: &str = "ROSTERSYNC_SCIM_SERVER";

/// How long the server gets to answer after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `scim2-server` on 127.0.0.1, requiring a bearer token; killed when dropped.
#[derive(Debug)]
pub struct ScimServer {
    child: Child,
    port: u16,
    token: String,
    /// The folder of the server's stderr (its log), removed after the server stops.
    _logs: TempDir,
}

impl ScimServer {
    /// Starts a server with no users on a free port and waits until it answers; `None`
    /// after saying the test is skipped when `ROSTERSYNC_SCIM_SERVER` is not set.
    ///
    /// # Panics
    ///
    /// When the variable is missing under CI, or the server does not start.
    #[allow(clippy::print_stderr, reason = "a skipped test says so")]
    pub fn start() -> Option<ScimServer> {
        let Some(python) = std::env::var(SCIM_SERVER_VAR)
            .ok()
            .filter(|v| !v.is_empty())
        else {
            assert!(
                !ci(),
                "CI is set but {SCIM_SERVER_VAR} is not: the SCIM push tests must run in CI \
                 (scripts/test-all installs scim2-server and sets it)"
            );
            eprintln!(
                "\n*** skipped: set {SCIM_SERVER_VAR} to a Python that has scim2-server \
                 (scripts/test-all installs it in target/scim-tester) ***\n"
            );
            return None;
        };
        let logs = TempDir::new("scim_server");
        let token = unique("token");
        // The free port is found by binding it and letting it go: another process may
        // take it in between, so a server that could not listen is started again.
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log_path = logs.join(format!("stderr-{port}.log"));
            let log = std::fs::File::create(&log_path)
                .unwrap_or_else(|e| panic!("{}: {e}", log_path.display()));
            let mut child = Command::new(&python)
                .args([
                    "-m",
                    "scim2_server.testserver.cli",
                    "--hostname",
                    "127.0.0.1",
                ])
                .args(["--port", &port.to_string(), "--bearer-token", &token])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run {SCIM_SERVER_VAR}={python} (scim2-server): {e}")
                });
            let answered = wait_until_answering(&mut child, port, &token);
            if answered.is_ok() {
                return Some(ScimServer {
                    child,
                    port,
                    token,
                    _logs: logs,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = read_log(&log_path);
            let why = match answered {
                Err(Silent) => format!("did not answer on port {port} within {START_TIMEOUT:?}"),
                _ if last_log.contains("Address already in use") => continue,
                _ => format!("exited before answering on port {port}"),
            };
            panic!("scim2-server ({SCIM_SERVER_VAR}={python}) {why}; its stderr:\n{last_log}");
        }
        panic!(
            "scim2-server ({SCIM_SERVER_VAR}={python}) found no free port; its stderr:\n{last_log}"
        )
    }

    /// The SCIM base URL (`http://127.0.0.1:PORT/v2`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }

    /// The bearer token the server requires.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Every User the server holds, read directly (`GET /v2/Users`, all pages).
    pub fn users(&self) -> Vec<Value> {
        let mut users = Vec::new();
        loop {
            let path = format!("/v2/Users?startIndex={}&count=500", users.len() + 1);
            let (status, body) = get(self.port, &self.token, &path)
                .unwrap_or_else(|e| panic!("scim2-server GET {path}: {e}"));
            let text = String::from_utf8_lossy(&body);
            assert_eq!(status, 200, "scim2-server GET {path}: {text}");
            let mut list: Value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("scim2-server GET {path}: not JSON ({e}): {text}"));
            let total = list["totalResults"].as_u64().unwrap_or(0);
            let page = match list.get_mut("Resources").map(Value::take) {
                Some(Value::Array(page)) => page,
                _ => Vec::new(),
            };
            let empty = page.is_empty();
            users.extend(page);
            if empty || users.len() as u64 >= total {
                return users;
            }
        }
    }
}

impl Drop for ScimServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why a started server is not answering.
#[derive(Debug, PartialEq, Eq)]
enum NotAnswering {
    /// The process ended.
    Exited,
    /// It kept silent until the timeout.
    Silent,
}
use NotAnswering::{Exited, Silent};

/// Polls the server on `port` until it answers.
fn wait_until_answering(child: &mut Child, port: u16, token: &str) -> Result<(), NotAnswering> {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return Err(Exited);
        }
        if matches!(get(port, token, "/v2/ServiceProviderConfig"), Ok((200, _))) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(Silent)
}

/// A GET with the bearer token over plain HTTP/1.0 (the server answers each request on
/// its own connection, with a `Content-Length`): the status and body.
fn get(port: u16, token: &str, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
         Accept: application/scim+json\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let head_end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("an answer without a blank line after its head"))?;
    let head = String::from_utf8_lossy(&answer[..head_end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("an answer without a status"))?;
    Ok((status, answer[head_end + 4..].to_vec()))
}

/// A port on 127.0.0.1 no one listens on right now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port on 127.0.0.1: {e}"))
}

/// The server's log so far.
fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("({}: {e})", path.display()))
}
