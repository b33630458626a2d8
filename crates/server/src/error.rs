//! Errors as answers: a status, a stable short code and a sentence that says what
//! happened and what to do. The API sends them as JSON; console pages as a page.
//!
//! What is the asker's to fix (not found, conflict, bad input) is said as it is. What is
//! ours (a database or internal failure) is never sent: its detail — SQL, host names,
//! paths — goes to the log at error level with a short random reference, and the answer
//! carries only the reference, so an operator can find the log line.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use store::StoreError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Each reason a request was refused, when there are several (an undo's conflicts);
    /// the API sends them as `conflicts`, pages as a list.
    pub conflicts: Vec<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            conflicts: Vec::new(),
        }
    }

    /// An internal failure: `detail` is logged (error level) with a new reference, and
    /// the answer says only "internal error, reference …".
    pub fn internal(detail: impl Into<String>) -> ApiError {
        let reference = reference();
        tracing::error!(reference = %reference, error = %detail.into(), "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!(
                "internal error, reference {reference}: try again; if it persists, the server's log has the detail under this reference"
            ),
        )
    }

    /// The database cannot be reached: `detail` (which may name its host, user and
    /// database) is logged with a new reference; the answer says only that.
    pub fn unavailable(detail: impl Into<String>) -> ApiError {
        let reference = reference();
        tracing::error!(reference = %reference, error = %detail.into(), "database unavailable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            format!(
                "the database is unavailable, reference {reference}: try again shortly; the server's log says why under this reference"
            ),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in first, or send Authorization: Bearer TOKEN (rostersync token create --scope read|write)",
        )
    }
}

/// A short random id (8 hex digits) tying an answer to its log line.
pub fn reference() -> String {
    let mut b = [0u8; 4];
    if getrandom::fill(&mut b).is_err() {
        // Unique enough to find a log line by, without the random source.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        b = nanos.to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::Conflicts { message, conflicts } => ApiError {
                conflicts,
                ..ApiError::conflict(message)
            },
            StoreError::Open(m) => ApiError::unavailable(m),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if !self.conflicts.is_empty()
            && let Some(o) = error.as_object_mut()
        {
            o.insert("conflicts".into(), json!(self.conflicts));
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

impl From<engine::EngineError> for ApiError {
    fn from(e: engine::EngineError) -> ApiError {
        match e {
            engine::EngineError::Store(s) => s.into(),
            busy @ engine::EngineError::Busy(_) => {
                ApiError::new(StatusCode::CONFLICT, "already_running", busy.to_string())
            }
            other => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "sync_failed",
                other.to_string(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error and what was logged while making it.
    fn logged(make: impl FnOnce() -> ApiError) -> (ApiError, String) {
        crate::log_capture::capture(make)
    }

    fn reference_of(message: &str) -> &str {
        let rest = message.split("reference ").nth(1).unwrap();
        &rest[..8]
    }

    #[test]
    fn database_errors_are_generic_with_the_detail_logged_under_a_reference() {
        let sql = "no such column: users.pasword in SELECT id FROM users WHERE pasword = ?";
        let (e, log) = logged(|| StoreError::database(sql).into());
        assert_eq!(
            (e.status, e.code),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        );
        assert!(
            e.message.starts_with("internal error, reference "),
            "{}",
            e.message
        );
        assert!(
            !e.message.contains("SELECT") && !e.message.contains("users"),
            "{}",
            e.message
        );
        let r = reference_of(&e.message);
        assert!(r.bytes().all(|b| b.is_ascii_hexdigit()), "{r}");
        assert!(log.starts_with("ERROR"), "{log}");
        assert!(
            log.contains(&format!("reference={r}")) && log.contains(sql),
            "{log}"
        );

        let (e, _) = logged(|| StoreError::Corrupt("API token scope 'root'".into()).into());
        assert_eq!(e.code, "internal");
        assert!(!e.message.contains("root"), "{}", e.message);

        let place = "cannot connect to PostgreSQL at db.district.internal:5432 (user rostersync, database roster): timed out";
        let (e, log) = logged(|| StoreError::Open(place.into()).into());
        assert_eq!(
            (e.status, e.code),
            (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable")
        );
        for detail in ["db.district.internal", "5432", "rostersync", "roster)"] {
            assert!(!e.message.contains(detail), "{detail}: {}", e.message);
        }
        assert!(
            log.contains(reference_of(&e.message)) && log.contains(place),
            "{log}"
        );

        // Two failures, two references.
        let (a, _) = logged(|| ApiError::internal("x"));
        let (b, _) = logged(|| ApiError::internal("x"));
        assert_ne!(reference_of(&a.message), reference_of(&b.message));
    }

    #[test]
    fn what_the_asker_can_fix_is_said_as_it_is() {
        let e: ApiError = StoreError::NotFound("no account 'zed'".into()).into();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("not_found", "no account 'zed'")
        );
        let e: ApiError = StoreError::Conflict("the name admin is taken".into()).into();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("conflict", "the name admin is taken")
        );
        let e: ApiError = StoreError::Conflicts {
            message: "2 later changes".into(),
            conflicts: vec!["a".into(), "b".into()],
        }
        .into();
        assert_eq!((e.code, e.conflicts.len()), ("conflict", 2));
    }
}
