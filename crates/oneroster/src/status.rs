//! The imsx status payload servers send with errors (and sometimes with a 200).
//!
//! 1.1 servers send a flat `statusInfoSet` with a string `imsx_codeMinor`; 1.2 servers a
//! single object with a nested `imsx_CodeMinor.imsx_codeMinorField[]`. Both become
//! [`StatusInfo`]. Error paths are rare, so this reads `serde_json::Value`.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusInfo {
    /// `success`, `failure`, `processing`, `unsupported`.
    pub code_major: Option<String>,
    /// `status`, `warning`, `error`.
    pub severity: Option<String>,
    pub code_minor: Option<String>,
    pub description: Option<String>,
}

impl StatusInfo {
    pub fn is_failure(&self) -> bool {
        let bad = |v: &Option<String>, words: &[&str]| {
            v.as_deref()
                .is_some_and(|s| words.iter().any(|w| s.eq_ignore_ascii_case(w)))
        };
        bad(&self.code_major, &["failure", "unsupported"]) || bad(&self.severity, &["error"])
    }

    /// Every status object found in `v`: a bare status object, a `statusInfoSet` array,
    /// an `imsx_statusInfo` wrapper, or any nesting of those.
    pub fn from_value(v: &Value) -> Vec<StatusInfo> {
        let mut out = Vec::new();
        collect(v, &mut out);
        out
    }

    /// Status found in an error body, if it is JSON and has any.
    pub fn from_body(body: &[u8]) -> Vec<StatusInfo> {
        serde_json::from_slice::<Value>(body)
            .map(|v| StatusInfo::from_value(&v))
            .unwrap_or_default()
    }
}

impl std::fmt::Display for StatusInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(m) = &self.code_major {
            parts.push(m.as_str());
        }
        if let Some(m) = &self.code_minor {
            parts.push(m.as_str());
        }
        let code = parts.join("/");
        match (&self.description, code.is_empty()) {
            (Some(d), false) => write!(f, "{code}: {d}"),
            (Some(d), true) => f.write_str(d),
            (None, false) => f.write_str(&code),
            (None, true) => f.write_str("no description"),
        }
    }
}

/// Keys under which a page may carry status information.
pub(crate) fn is_status_key(k: &str) -> bool {
    matches!(
        k,
        "statusInfoSet" | "imsx_statusInfo" | "imsx_StatusInfo" | "statusInfo"
    )
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn code_minor(v: &Value) -> Option<String> {
    match v {
        Value::String(_) => text(Some(v)),
        Value::Object(o) => o
            .get("imsx_codeMinorField")
            .and_then(|f| match f {
                Value::Array(items) => items.first().and_then(code_minor_field),
                Value::Object(_) => code_minor_field(f),
                _ => None,
            })
            .or_else(|| text(o.get("imsx_codeMinorFieldValue"))),
        Value::Array(items) => items.first().and_then(code_minor),
        _ => None,
    }
}

fn code_minor_field(v: &Value) -> Option<String> {
    text(v.get("imsx_codeMinorFieldValue"))
}

fn collect(v: &Value, out: &mut Vec<StatusInfo>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
        Value::Object(o) => {
            if o.contains_key("imsx_codeMajor") || o.contains_key("imsx_description") {
                out.push(StatusInfo {
                    code_major: text(o.get("imsx_codeMajor")),
                    severity: text(o.get("imsx_severity")),
                    code_minor: o
                        .get("imsx_codeMinor")
                        .or_else(|| o.get("imsx_CodeMinor"))
                        .and_then(code_minor),
                    description: text(o.get("imsx_description")),
                });
            } else {
                for key in [
                    "statusInfoSet",
                    "imsx_statusInfo",
                    "imsx_StatusInfo",
                    "statusInfo",
                ] {
                    if let Some(inner) = o.get(key) {
                        collect(inner, out);
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v11_flat_status_set() {
        let s = StatusInfo::from_body(
            br#"{"statusInfoSet":[{"imsx_codeMajor":"failure","imsx_severity":"error",
                "imsx_codeMinor":"unauthorisedrequest","imsx_description":"Bad token"}]}"#,
        );
        assert_eq!(s.len(), 1);
        assert!(s[0].is_failure());
        assert_eq!(s[0].code_minor.as_deref(), Some("unauthorisedrequest"));
        assert_eq!(s[0].to_string(), "failure/unauthorisedrequest: Bad token");
    }

    #[test]
    fn v12_nested_code_minor() {
        let s = StatusInfo::from_body(
            br#"{"imsx_codeMajor":"failure","imsx_severity":"error","imsx_description":"bad filter",
                "imsx_CodeMinor":{"imsx_codeMinorField":[{"imsx_codeMinorFieldName":"TargetEndSystem",
                "imsx_codeMinorFieldValue":"invalid_filter_field"}]}}"#,
        );
        assert_eq!(s[0].code_minor.as_deref(), Some("invalid_filter_field"));
        assert_eq!(s[0].description.as_deref(), Some("bad filter"));
    }

    #[test]
    fn wrapped_and_non_json() {
        let s = StatusInfo::from_body(
            br#"{"imsx_statusInfo":{"imsx_codeMajor":"success","imsx_severity":"warning"}}"#,
        );
        assert_eq!(s.len(), 1);
        assert!(!s[0].is_failure());
        assert!(StatusInfo::from_body(b"<html>502</html>").is_empty());
    }
}
