//! One interface over both kinds of OneRoster source, so callers never care which they got.

use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;
use serde::Deserialize;

use crate::csv::{CsvPackage, CsvRecord, PackageError};
use crate::model::{Record, Version};
use crate::report::CollectionReport;
use crate::rest::{Filter, Query, RestClient, RestConfig, RestError};

/// A record type both readers produce.
pub trait Entity: Record + CsvRecord + for<'de> Deserialize<'de> + Send + 'static {}

impl<T: Record + CsvRecord + for<'de> Deserialize<'de> + Send + 'static> Entity for T {}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Csv(#[from] PackageError),
    #[error(transparent)]
    Rest(#[from] RestError),
}

impl SourceError {
    /// Whether an admin must change a setting (URL, credentials, file) to fix it.
    pub fn is_configuration(&self) -> bool {
        match self {
            SourceError::Csv(_) => true,
            SourceError::Rest(e) => e.is_configuration(),
        }
    }
}

#[derive(Debug)]
pub enum Source {
    Csv(Box<CsvPackage>),
    Rest(Arc<RestClient>),
}

impl Source {
    pub fn open_csv(path: &Path) -> Result<Source, SourceError> {
        Ok(Source::Csv(Box::new(CsvPackage::open(path)?)))
    }

    pub fn open_rest(config: RestConfig) -> Result<Source, SourceError> {
        Ok(Source::Rest(RestClient::new(config)?))
    }

    /// `csv` or `rest`.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Csv(_) => "csv",
            Source::Rest(_) => "rest",
        }
    }

    pub fn version(&self) -> Version {
        match self {
            Source::Csv(p) => p.version(),
            Source::Rest(c) => c.config().version,
        }
    }

    /// Warnings about the source as a whole (CSV: unknown files and columns).
    pub fn warnings(&self) -> Vec<String> {
        match self {
            Source::Csv(p) => p.warnings().to_vec(),
            Source::Rest(_) => Vec::new(),
        }
    }

    /// Reads one collection, lending each record to `sink`. `modified_after` asks a REST
    /// server for changes only (a CSV package holds what its manifest says). `None` when
    /// the source lacks the collection.
    pub async fn read<T: Entity>(
        &mut self,
        modified_after: Option<Timestamp>,
        mut sink: impl FnMut(&T),
    ) -> Result<Option<CollectionReport>, SourceError> {
        match self {
            Source::Csv(p) => {
                if p.coverage(T::COLLECTION).is_none() {
                    return Ok(None);
                }
                Ok(Some(p.read_each::<T>(sink)?))
            }
            Source::Rest(c) => {
                let query = Query {
                    filter: modified_after.map(Filter::modified_after),
                    ..Query::default()
                };
                match c.pull::<T>(&query, |r: T| sink(&r)).await {
                    Ok(r) => Ok(Some(r)),
                    Err(RestError::Http { status: 404, .. }) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }
}
