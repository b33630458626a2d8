//! The OneRoster REST client: authentication, paging, retries, completeness.
//!
//! Servers differ from the standard in ways that matter for a sync: some cap the page size
//! without saying so, some send no `X-Total-Count`, some hide an error in a 200, totals can
//! move while a pull runs. The pager trusts nothing it did not check, and says in the
//! [`CollectionReport`](crate::report::CollectionReport) exactly what it proved, because
//! later only a complete pull may deactivate anyone.

mod client;
mod oauth;
mod pager;
mod transport;

pub use client::{
    Auth, CredentialStyle, DEFAULT_MAX_RESPONSE_BYTES, Filter, Query, RequestStats, RestClient,
    RestConfig, RestError, RetryPolicy,
};
