//! Errors as answers: a status, a stable short code and a sentence that says what
//! happened and what to do. The API sends them as JSON; console pages as a page.

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

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
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

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::Conflicts { message, conflicts } => ApiError {
                conflicts,
                ..ApiError::conflict(message)
            },
            StoreError::Open(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "database_unavailable", m)
            }
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::internal(other.to_string())
            }
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
            other => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "sync_failed",
                other.to_string(),
            ),
        }
    }
}
