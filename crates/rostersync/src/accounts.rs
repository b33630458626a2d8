//! `rostersync accounts import FILE.csv --provider P`: accounts single sign-on created
//! before the SIS sync, so the sync has something to link to. A row whose username another
//! account (or an earlier row) has is skipped and listed by line: no two accounts share one.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use jiff::Timestamp;
use serde_json::{Value, json};
use store::NewAccountRow;

use crate::env::{StateArgs, store_failure};
use crate::{Failure, output};

#[derive(Args)]
pub struct AccountsImportArgs {
    /// CSV with a header `email,first_name,last_name,username` (more columns allowed).
    file: PathBuf,
    #[arg(long, value_enum)]
    provider: Provider,
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Provider {
    Google,
    Microsoft,
    Local,
}

impl Provider {
    fn as_str(self) -> &'static str {
        match self {
            Provider::Google => "google",
            Provider::Microsoft => "microsoft",
            Provider::Local => "local",
        }
    }
}

pub fn run(state_args: &StateArgs, args: AccountsImportArgs) -> Result<u8, Failure> {
    let (rows, lines) = read_rows(&args.file)?;
    let state = state_args.open()?;
    let summary = state
        .store
        .import_accounts(&rows, args.provider.as_str(), Timestamp::now())
        .map_err(store_failure)?;
    // The store counts rows; the file's reader says on which line each began.
    let line_of = |row: usize| lines.get(row.wrapping_sub(1)).copied().unwrap_or(0);
    let skipped: Vec<Value> = summary
        .skipped
        .iter()
        .map(|k| {
            let reason = match (k.account, k.earlier_row) {
                (None, Some(row)) => format!(
                    "the {} {} is also on line {}, which was imported: give one of them another {}",
                    k.field,
                    k.value,
                    line_of(row),
                    k.field
                ),
                _ => k.reason.clone(),
            };
            json!({
                "line": line_of(k.row),
                "email": k.email,
                "field": k.field,
                "value": k.value,
                "account": k.account,
                "earlier_line": k.earlier_row.map(line_of),
                "reason": reason,
            })
        })
        .collect();
    if args.json {
        output::json(&json!({
            "created": summary.created,
            "existing": summary.existing,
            "skipped": skipped,
        }));
    } else {
        output::line(&format!(
            "created {} {} account(s); {} already existed; {} skipped",
            summary.created,
            args.provider.as_str(),
            summary.existing.len(),
            skipped.len()
        ));
        for e in &summary.existing {
            output::line(&format!("  exists: {e}"));
        }
        for k in &skipped {
            output::line(&format!(
                "  skipped: {} line {}: {}",
                args.file.display(),
                k["line"],
                k["reason"].as_str().unwrap_or_default()
            ));
        }
    }
    Ok(0)
}

/// The rows, and the line each began on (for messages).
fn read_rows(file: &PathBuf) -> Result<(Vec<NewAccountRow>, Vec<u64>), Failure> {
    let name = file.display().to_string();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(file)
        .map_err(|e| Failure::config(format!("cannot read {name}: {e}")))?;
    let headers = rdr
        .headers()
        .map_err(|e| Failure::config(format!("{name}: {e}")))?
        .clone();
    let col = |h: &str| {
        headers.iter().position(|c| {
            c.trim()
                .trim_start_matches('\u{feff}')
                .eq_ignore_ascii_case(h)
        })
    };
    let email = col("email").ok_or_else(|| {
        Failure::config(format!(
            "{name}: no `email` column (the header must include email,first_name,last_name,username)"
        ))
    })?;
    let (first, last, user) = (col("first_name"), col("last_name"), col("username"));
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| Failure::config(format!("{name} line {}: {e}", i + 2)))?;
        let line = rec.position().map_or(i as u64 + 2, |p| p.line());
        lines.push(line);
        let cell = |c: Option<usize>| {
            c.and_then(|c| rec.get(c))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let Some(e) = cell(Some(email)) else {
            return Err(Failure::config(format!(
                "{name} line {line}: the email is empty"
            )));
        };
        if !e.contains('@') {
            return Err(Failure::config(format!(
                "{name} line {line}, column email: '{e}' is not an email address"
            )));
        }
        rows.push(NewAccountRow {
            email: e,
            first_name: cell(first),
            last_name: cell(last),
            username: cell(user),
        });
    }
    Ok((rows, lines))
}
