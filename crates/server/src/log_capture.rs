//! For tests: what the code under test logs, as text, to check that a failure is logged
//! with its detail and that secrets and forged lines are not.

use std::sync::{Arc, Mutex};

/// Runs `f` with a subscriber that writes each event as one line — its level, its
/// message, then ` name=value` for each field, values as the text formatter writes them
/// (str and `?` values quoted, `%` values as they are) — and returns what `f` returned
/// with those lines.
pub(crate) fn capture<R>(f: impl FnOnce() -> R) -> (R, String) {
    let out = Arc::new(Mutex::new(String::new()));
    let result = tracing::subscriber::with_default(Capture(Arc::clone(&out)), f);
    let log = out.lock().unwrap_or_else(|p| p.into_inner()).clone();
    (result, log)
}

struct Capture(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.push_str(&format!(" {value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = event.metadata().level().to_string();
        event.record(&mut Fields(&mut line));
        let mut out = self.0.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str(&line);
        out.push('\n');
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_event_is_one_line_with_level_message_and_fields() {
        let ((), log) = super::capture(|| {
            tracing::warn!(account = "eve", code = 7, "refused");
            tracing::error!(detail = %"as is", "failed");
        });
        assert_eq!(
            log,
            "WARN refused account=\"eve\" code=7\nERROR failed detail=as is\n"
        );
    }
}
