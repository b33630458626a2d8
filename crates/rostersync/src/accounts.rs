//! `rostersync accounts import FILE.csv --provider P`: accounts single sign-on created
//! before the SIS sync, so the sync has something to link to.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use jiff::Timestamp;
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
    let rows = read_rows(&args.file)?;
    let state = state_args.open()?;
    let summary = state
        .store
        .import_accounts(&rows, args.provider.as_str(), Timestamp::now())
        .map_err(store_failure)?;
    if args.json {
        output::json(&summary);
    } else {
        output::line(&format!(
            "created {} {} account(s); {} already existed",
            summary.created,
            args.provider.as_str(),
            summary.existing.len()
        ));
        for e in &summary.existing {
            output::line(&format!("  exists: {e}"));
        }
    }
    Ok(0)
}

fn read_rows(file: &PathBuf) -> Result<Vec<NewAccountRow>, Failure> {
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
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| Failure::config(format!("{name} line {line}: {e}")))?;
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
    Ok(rows)
}
