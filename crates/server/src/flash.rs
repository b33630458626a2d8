//! What a console form did ("saved: …", "the source is not valid: …"), shown on the page
//! its redirect leads to — without the text ever travelling in the URL.
//!
//! A page that printed `?msg=TEXT` would let any link make the console say anything in
//! its own voice (content spoofing). So:
//! - a handler answers with [`crate::pages::back`], a redirect carrying the message as a
//!   [`Pending`] response extension;
//! - [`crate::auth::require`], which knows the session, stores it with [`attach`] under a
//!   random id bound to that session, and adds `flash=ID` to the redirect's URL;
//! - the page's [`Flash`] extractor shows the message of `flash=ID` only to the session
//!   that stored it, once. A forged or stale id shows nothing.
//!
//! The store is this process's memory: at most [`MOST`] messages, each kept [`KEEP`]; the
//! oldest go first. A bearer-token request (no session) gets no message: the API answers
//! in JSON anyway. The sign-in page has no session: it maps fixed codes to fixed texts
//! (`pages::sign_in::LoginProblem`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde::Deserialize;

use crate::Shared;
use crate::auth::{Principal, Via};

/// Messages kept at most.
pub const MOST: usize = 10_000;
/// How long a message waits for its page.
pub const KEEP: Duration = Duration::from_secs(10 * 60);

/// The message for the page being shown (empty when there is none).
#[derive(Debug, Default, Clone)]
pub struct Flash {
    pub msg: Option<String>,
    pub problem: Option<String>,
}

/// A message waiting to be stored as the response leaves [`crate::auth::require`].
#[derive(Debug, Clone)]
pub struct Pending {
    pub text: String,
    pub problem: bool,
}

#[derive(Debug)]
struct Entry {
    session: String,
    text: String,
    problem: bool,
    stored: Instant,
}

/// Messages waiting for their page, by random id.
#[derive(Debug, Default)]
pub struct Flashes {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Flashes {
    /// Keeps `message` for `session` (the session id's hash); returns its id.
    fn put(&self, session: &str, message: Pending, now: Instant) -> Option<String> {
        let id = crate::auth::random_secret().ok()?;
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MOST {
            entries.retain(|_, e| now.duration_since(e.stored) < KEEP);
        }
        while entries.len() >= MOST {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.stored)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(o) => entries.remove(&o),
                None => break,
            };
        }
        entries.insert(
            id.clone(),
            Entry {
                session: session.to_owned(),
                text: message.text,
                problem: message.problem,
                stored: now,
            },
        );
        Some(id)
    }

    /// The message `id`, if `session` stored it and it is fresh; it is gone afterwards.
    fn take(&self, id: &str, session: &str, now: Instant) -> Flash {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mine = entries
            .get(id)
            .is_some_and(|e| crate::auth::same(&e.session, session));
        let Some(e) = mine.then(|| entries.remove(id)).flatten() else {
            return Flash::default();
        };
        if now.duration_since(e.stored) >= KEEP {
            return Flash::default();
        }
        if e.problem {
            Flash {
                msg: None,
                problem: Some(e.text),
            }
        } else {
            Flash {
                msg: Some(e.text),
                problem: None,
            }
        }
    }
}

fn session_of(principal: &Principal) -> Option<&str> {
    match &principal.via {
        Via::Session { id_hash, .. } => Some(id_hash),
        Via::Token { .. } => None,
    }
}

/// `to` with `flash=ID` added to its query (before any `#fragment`).
fn with_flash(to: &str, id: &str) -> String {
    let (path, fragment) = match to.find('#') {
        Some(i) => to.split_at(i),
        None => (to, ""),
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}flash={id}{fragment}")
}

/// Stores the response's [`Pending`] message for the principal's session and points its
/// redirect at it. Without a session the message is dropped.
pub fn attach(state: &Shared, principal: &Principal, mut response: Response) -> Response {
    let Some(message) = response.extensions_mut().remove::<Pending>() else {
        return response;
    };
    let Some(session) = session_of(principal) else {
        return response;
    };
    let Some(to) = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return response;
    };
    let Some(id) = state.flashes.put(session, message, Instant::now()) else {
        return response;
    };
    if let Ok(v) = HeaderValue::from_str(&with_flash(&to, &id)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

#[derive(Deserialize)]
struct FlashQuery {
    flash: Option<String>,
}

impl FromRequestParts<Shared> for Flash {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Flash, Infallible> {
        let id = Query::<FlashQuery>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|q| q.0.flash);
        let session = parts.extensions.get::<Principal>().and_then(session_of);
        Ok(match (id, session) {
            (Some(id), Some(session)) => state.flashes.take(&id, session, Instant::now()),
            _ => Flash::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(text: &str) -> Pending {
        Pending {
            text: text.into(),
            problem: false,
        }
    }

    #[test]
    fn a_message_shows_once_to_its_own_session() {
        let f = Flashes::default();
        let now = Instant::now();
        let id = f.put("session-a", said("saved"), now).unwrap();
        assert_eq!(
            f.take(&id, "session-b", now).msg,
            None,
            "not another session's"
        );
        assert_eq!(f.take("forged", "session-a", now).msg, None);
        assert_eq!(f.take(&id, "session-a", now).msg.as_deref(), Some("saved"));
        assert_eq!(f.take(&id, "session-a", now).msg, None, "once");
        let problem = f
            .put(
                "session-a",
                Pending {
                    text: "no".into(),
                    problem: true,
                },
                now,
            )
            .unwrap();
        let shown = f.take(&problem, "session-a", now);
        assert_eq!((shown.msg, shown.problem.as_deref()), (None, Some("no")));
        let stale = f.put("session-a", said("late"), now).unwrap();
        assert_eq!(f.take(&stale, "session-a", now + KEEP).msg, None);
    }

    #[test]
    fn the_store_is_bounded() {
        let f = Flashes::default();
        let now = Instant::now();
        let first = f.put("s", said("first"), now).unwrap();
        for i in 1..=MOST {
            f.put("s", said("more"), now + Duration::from_millis(i as u64))
                .unwrap();
        }
        assert_eq!(f.entries.lock().unwrap().len(), MOST);
        assert_eq!(f.take(&first, "s", now).msg, None, "the oldest went first");
    }

    #[test]
    fn the_id_goes_into_the_query_before_the_fragment() {
        assert_eq!(with_flash("/runs/3", "X"), "/runs/3?flash=X");
        assert_eq!(
            with_flash("/settings?source=a#validation", "X"),
            "/settings?source=a&flash=X#validation"
        );
    }
}
