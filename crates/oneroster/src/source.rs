//! One interface over both kinds of OneRoster source, so callers never care which they got.

use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;
use serde::Deserialize;

use crate::csv::{CsvLimits, CsvPackage, CsvRecord, PackageError};
use crate::model::{Class, Enrollment, Record, Status, User, Version};
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

    /// A CSV package read within `limits`.
    pub fn open_csv_with(path: &Path, limits: CsvLimits) -> Result<Source, SourceError> {
        Ok(Source::Csv(Box::new(CsvPackage::open_with(path, limits)?)))
    }

    pub fn open_rest(config: RestConfig) -> Result<Source, SourceError> {
        Ok(Source::Rest(RestClient::new(config)?))
    }

    /// The REST client's request figures so far (`None` for a CSV package).
    pub fn request_stats(&self) -> Option<crate::rest::RequestStats> {
        match self {
            Source::Csv(_) => None,
            Source::Rest(c) => Some(c.request_stats()),
        }
    }

    /// How long the REST client's last access token lasts, in seconds, as the token
    /// service said; `None` for a CSV package, before a token, or when it did not say.
    pub fn token_expires_in(&self) -> Option<u64> {
        match self {
            Source::Csv(_) => None,
            Source::Rest(c) => c.token_expires_in(),
        }
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
                    // Every OneRoster server has users: a 404 there is a wrong URL, not
                    // a collection the server lacks.
                    Err(RestError::Http { status: 404, url, .. })
                        if T::COLLECTION == crate::Collection::Users =>
                    {
                        Err(RestError::Config(format!(
                            "GET {} answered 404 Not Found: every OneRoster server has /users, so the API URL is probably wrong. It is the part before /users, e.g. https://HOST/campus/api/oneroster/v1p1/DISTRICT/ims/oneroster/v1p1 (Infinite Campus)",
                            url.split('?').next().unwrap_or(&url)
                        ))
                        .into())
                    }
                    Err(RestError::Http { status: 404, .. }) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// One person and their classes, for a single-user sync: `/users/{id}` and
    /// `/users/{id}/classes` over REST; a scan of the package for CSV. `None` when the
    /// source does not have the person.
    pub async fn person(
        &mut self,
        sourced_id: &str,
    ) -> Result<Option<(User, Vec<Class>)>, SourceError> {
        match self {
            Source::Rest(c) => {
                let Some(user) = c.get::<User>(sourced_id).await? else {
                    return Ok(None);
                };
                let classes = match c.user_classes(sourced_id).await {
                    Ok((classes, _)) => classes,
                    Err(RestError::Http { status: 404, .. }) => Vec::new(),
                    Err(e) => return Err(e.into()),
                };
                Ok(Some((user, classes)))
            }
            Source::Csv(p) => {
                let mut found = None;
                p.read_each::<User>(|u| {
                    if u.base.sourced_id == sourced_id {
                        found = Some(u.clone());
                    }
                })?;
                let Some(user) = found else { return Ok(None) };
                let mut class_ids = std::collections::HashSet::new();
                if p.coverage(Enrollment::COLLECTION).is_some() {
                    p.read_each::<Enrollment>(|e| {
                        if e.base.status == Status::Active
                            && e.user.as_deref() == Some(sourced_id)
                            && let Some(c) = &e.class
                        {
                            class_ids.insert(c.clone());
                        }
                    })?;
                }
                let mut classes = Vec::new();
                if !class_ids.is_empty() && p.coverage(Class::COLLECTION).is_some() {
                    p.read_each::<Class>(|c| {
                        if class_ids.contains(&c.base.sourced_id) {
                            classes.push(c.clone());
                        }
                    })?;
                }
                Ok(Some((user, classes)))
            }
        }
    }
}
