//! Paging through a collection: page URLs, following `Link` headers or offsets (several
//! pages in flight when the total is known, any `Link` names the next offset, and
//! `concurrency` allows;
//! one at a time otherwise, where a page the `Link` header names, or the next offset after
//! a page that proved the size uncapped, is asked for while the page before is parsed),
//! and the checks that say whether a pull was complete.

use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use reqwest::header::{self, HeaderMap};
use serde::Deserialize;

use super::client::{Query, RestClient, RestError};
use crate::ids::Ascending;
use crate::json::{self, Page};
use crate::model::{Collection, Record};
use crate::net::is_html_page;
use crate::oauth1;
use crate::report::{CollectionReport, Coverage};

/// A page asked for: when its retries must be done by, and the server's answer.
type Sent = (Instant, Result<(HeaderMap, Vec<u8>), RestError>);

/// A page asked for ahead, its answer still to come: awaited when it is the page the
/// records say comes next, dropped (and so never waited for) when it is not.
type Asked = Pin<Box<dyn Future<Output = Sent> + Send>>;

/// A page's request running as a task of its own, so that its body is read while the pull
/// parses the page before it. A request polled only by the pull stalls whenever the pull
/// is busy parsing: the HTTP connection stops reading a body nobody takes, and the server,
/// its socket full, stops writing. Dropping it cancels the request.
struct Spawned {
    task: tokio::task::JoinHandle<Sent>,
    url: String,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Future for Spawned {
    type Output = Sent;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Sent> {
        let joined = std::task::ready!(Pin::new(&mut self.task).poll(cx));
        Poll::Ready(match joined {
            Ok(sent) => sent,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // Only the runtime shutting down cancels a request the pull still holds.
                Err(e) => (
                    Instant::now(),
                    Err(RestError::Transport {
                        url: std::mem::take(&mut self.url),
                        detail: format!("the request was cancelled: {e}"),
                        attempts: 1,
                    }),
                ),
            },
        })
    }
}

/// One fetched page, before its records are handed out.
struct Fetched<T> {
    page: Page<T>,
    total: Option<u64>,
    next: Option<String>,
    url: String,
}

impl RestClient {
    /// Sends the request for `url` as a task of its own ([`Spawned`]), its retries due by a
    /// deadline set now.
    fn ask(self: &Arc<Self>, url: String) -> Spawned {
        let client = Arc::clone(self);
        let asked = url.clone();
        let task = tokio::spawn(async move {
            let deadline = client.deadline();
            let answer = client.send(&asked, deadline).await;
            (deadline, answer)
        });
        Spawned { task, url }
    }

    fn page_url(&self, path: &str, query: &Query, offset: u64, limit: u32) -> String {
        let (base, base_query) = match self.config.base_url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (self.config.base_url.as_str(), None),
        };
        let mut url = format!("{base}/{path}?limit={limit}&offset={offset}");
        let enc = oauth1::percent_encode;
        if let Some(f) = &query.filter {
            url.push_str("&filter=");
            url.push_str(&enc(f.as_str()));
        }
        if let Some(s) = &query.sort {
            url.push_str("&sort=");
            url.push_str(&enc(s));
        }
        if let Some(f) = &query.fields {
            url.push_str("&fields=");
            url.push_str(&enc(f));
        }
        if let Some(q) = base_query {
            url.push('&');
            url.push_str(q);
        }
        url
    }

    pub(super) async fn pull_path<T>(
        self: &Arc<Self>,
        path: &str,
        query: &Query,
        coverage: Coverage,
        mut sink: impl FnMut(T),
    ) -> Result<CollectionReport, RestError>
    where
        T: Record + for<'de> Deserialize<'de> + Send + 'static,
    {
        let mut tally = PageTally::new(T::COLLECTION, coverage);
        let limit = self.config.page_size;
        let mut offset = 0u64;
        // A page as large as asked proves the server does not cap the page size, so a
        // short page after it is the end. Before that, a short page may be a silent cap.
        let mut saw_full_page = false;

        let mut url = self.page_url(path, query, 0, limit);
        // The response to `url`, when it was asked for while the page before was parsed.
        let mut sent: Option<Asked> = None;
        loop {
            // The page after this one, named before this one's body is parsed: the `Link`
            // header's, or (one request at a time, once a page proved the page size is not
            // capped) the next offset as if this page were full too. It is asked for while
            // this one is parsed, and used only if it is the page the records say comes
            // next.
            let next_offset_url = self.page_url(path, query, offset + u64::from(limit), limit);
            let guess = |headers: &HeaderMap, url: &str| {
                let link = next_link(headers, url);
                let total = header_u64(headers, "x-total-count");
                if self.config.concurrency > 1
                    && total.is_some()
                    && link
                        .as_deref()
                        .is_none_or(|l| same_page(l, &next_offset_url))
                {
                    // Several pages in flight by offset once this one is counted full:
                    // nothing to ask for ahead.
                    return None;
                }
                link.or_else(|| {
                    (saw_full_page && total.is_some_and(|t| offset + u64::from(limit) < t))
                        .then(|| next_offset_url.clone())
                })
            };
            let (fetched, ahead) = self.fetch_page_ahead::<T>(url, sent.take(), guess).await?;
            let n = fetched.page.records.len() as u64;
            tally.note_page(&fetched);
            let next_link = fetched.next.clone();
            for rec in fetched.page.records {
                sink(rec);
            }
            // A short page after a full one, with the total still ahead: the server does
            // not cap pages, so records moved or vanished under the pager.
            if saw_full_page
                && n < u64::from(limit)
                && tally.last_total.is_some_and(|total| offset + n < total)
            {
                tally.report.problem(format!(
                    "a page at offset {offset} held {n} records, fewer than the {limit} asked for, before the end: the data moved between pages"
                ));
            }
            offset += n;
            saw_full_page |= n == u64::from(limit);

            // Several pages in flight at once, when the total says where the end is and
            // the server pages by offset: it sends no `Link`, or one naming the next
            // offset (no page was asked for ahead: that is for one request at a time). The
            // page was full, so the next offset is the one named before it was read.
            if self.config.concurrency > 1
                && n == u64::from(limit)
                && let Some(total) = tally.last_total
                && next_link
                    .as_deref()
                    .is_none_or(|l| same_page(l, &next_offset_url))
            {
                self.pull_by_offsets(path, query, offset, total, &mut tally, &mut sink)
                    .await?;
                break;
            }

            let next_url = if let Some(next) = next_link {
                Some(next)
            } else if n == 0 {
                if let Some(total) = tally.last_total.filter(|t| offset < *t) {
                    tally.report.problem(format!(
                        "the server returned an empty page at offset {offset} but reported {total} records"
                    ));
                }
                None
            } else if let Some(total) = tally.last_total {
                // Offsets advance by what came, so a capped page size is harmless.
                (offset < total).then(|| self.page_url(path, query, offset, limit))
            } else if n < u64::from(limit) && saw_full_page {
                None
            } else {
                // No total and no link: ask until a page comes back empty (or short after
                // a full one).
                Some(self.page_url(path, query, offset, limit))
            };
            let Some(next_url) = next_url else { break };
            // A guess that was not the next page is dropped here, unanswered or not.
            sent = ahead
                .filter(|(asked, _)| *asked == next_url)
                .map(|(_, response)| response);
            url = next_url;
        }
        Ok(tally.finish())
    }

    async fn pull_by_offsets<T>(
        self: &Arc<Self>,
        path: &str,
        query: &Query,
        start: u64,
        total: u64,
        tally: &mut PageTally,
        sink: &mut impl FnMut(T),
    ) -> Result<(), RestError>
    where
        T: Record + for<'de> Deserialize<'de> + Send + 'static,
    {
        let limit = u64::from(self.config.page_size);
        let mut offsets = (start..total).step_by(limit as usize);
        let mut in_flight = FuturesOrdered::new();
        let mut fetched_to = start;
        loop {
            while in_flight.len() < self.config.concurrency {
                let Some(off) = offsets.next() else { break };
                let url = self.page_url(path, query, off, self.config.page_size);
                let asked = self.ask(url.clone());
                in_flight.push_back(async move {
                    let (deadline, response) = asked.await;
                    self.read_page::<T>(url, response?, None, deadline).await
                });
            }
            let Some(result) = in_flight.next().await else {
                break;
            };
            let fetched = result?;
            let n = fetched.page.records.len() as u64;
            tally.note_page(&fetched);
            fetched_to += n;
            for rec in fetched.page.records {
                sink(rec);
            }
            if n < limit && fetched_to < total {
                tally.report.problem(format!(
                    "a page at offset {} held {n} records where {limit} were asked for and more were expected",
                    fetched_to - n
                ));
            }
        }
        Ok(())
    }

    /// Fetches and parses the page at `url` (or takes the request `sent` already made), and a
    /// request for the page `guess` names from its headers, sent before this page's body is
    /// parsed: the server makes the next page while the client reads this one. Still one
    /// request at a time: the next is sent once this one's body is in. The next page's URL
    /// and its answer to come are returned beside this page's records, so a guess that
    /// proves wrong is never waited for.
    async fn fetch_page_ahead<T>(
        self: &Arc<Self>,
        url: String,
        sent: Option<Asked>,
        guess: impl FnOnce(&HeaderMap, &str) -> Option<String>,
    ) -> Result<(Fetched<T>, Option<(String, Asked)>), RestError>
    where
        T: Record + for<'de> Deserialize<'de>,
    {
        let (deadline, response) = match sent {
            Some(sent) => sent.await,
            None => {
                let deadline = self.deadline();
                (deadline, self.send(&url, deadline).await)
            }
        };
        let (headers, body) = response?;
        let mut ahead = guess(&headers, &url).map(|next_url| {
            let next: Asked = Box::pin(self.ask(next_url.clone()));
            (next_url, next)
        });
        if ahead.is_some() {
            // The request is on its way, read by its own task while this page is parsed
            // here; the yield lets that task start even on a runtime of one thread.
            tokio::task::yield_now().await;
        }
        let parsed = self.parse_page::<T>(&body);
        if parsed.is_err()
            && let Some((_, next)) = &mut ahead
        {
            // This page is fetched again (or fails): the request ahead is answered first,
            // so one request is in flight at a time, and it lets go of whatever it holds
            // (the token being fetched again).
            let answer = next.as_mut().await;
            *next = Box::pin(std::future::ready(answer));
        }
        let fetched = self
            .read_page(url, (headers, body), Some(parsed), deadline)
            .await?;
        Ok((fetched, ahead))
    }

    /// Parses a page of the size this client asks for ([`json::parse_page_of`]).
    fn parse_page<T>(&self, body: &[u8]) -> Result<Page<T>, serde_json::Error>
    where
        T: Record + for<'de> Deserialize<'de>,
    {
        json::parse_page_of(body, self.config.page_size as usize)
    }

    /// Parses a page's response (or takes `parsed`, its parse already made); one cut
    /// short or unreadable is fetched again (by `deadline`) while that is worth it.
    async fn read_page<T>(
        &self,
        url: String,
        mut response: (HeaderMap, Vec<u8>),
        mut parsed: Option<Result<Page<T>, serde_json::Error>>,
        deadline: Instant,
    ) -> Result<Fetched<T>, RestError>
    where
        T: Record + for<'de> Deserialize<'de>,
    {
        let mut parse_failures = 0;
        loop {
            let (headers, body) = response;
            match parsed.take().unwrap_or_else(|| self.parse_page::<T>(&body)) {
                Ok(page) => {
                    if page.envelope.is_none() {
                        let failure = page.status.iter().find(|s| s.is_failure());
                        return Err(RestError::Protocol {
                            url,
                            detail: match failure {
                                Some(s) => format!("a 200 response carrying an error: {s}"),
                                None => format!(
                                    "the response has no `{}` array",
                                    T::COLLECTION.endpoint()
                                ),
                            },
                        });
                    }
                    return Ok(Fetched {
                        page,
                        total: header_u64(&headers, "x-total-count"),
                        next: next_link(&headers, &url),
                        url,
                    });
                }
                // A login or maintenance page served with 200: say so, do not retry.
                Err(_) if is_html_page(&body) => {
                    return Err(RestError::Protocol {
                        url,
                        detail: "the server answered 200 with an HTML page (a login, proxy or maintenance page?) instead of OneRoster JSON: check the API URL, and whether the SIS is down for maintenance".into(),
                    });
                }
                Err(e)
                    if (e.is_eof() || e.is_syntax())
                        && parse_failures + 1 < self.config.retry.attempts
                        && Instant::now() + self.backoff(parse_failures + 1) < deadline =>
                {
                    // A body cut short is a transport fault as much as a 500 is.
                    parse_failures += 1;
                    tracing::warn!(%url, error = %e, "unreadable page, fetching it again");
                    tokio::time::sleep(self.backoff(parse_failures)).await;
                    response = self.send(&url, deadline).await?;
                }
                Err(e) => {
                    return Err(RestError::Protocol {
                        url,
                        detail: format!("the page is not valid OneRoster JSON: {e}"),
                    });
                }
            }
        }
    }
}

/// What a pull has counted so far: the report it fills, the sourcedIds it has seen, and
/// the last `X-Total-Count` the server sent.
struct PageTally {
    report: CollectionReport,
    seen: SeenIds,
    last_total: Option<u64>,
}

impl PageTally {
    fn new(collection: Collection, coverage: Coverage) -> Self {
        PageTally {
            report: CollectionReport::new(collection, coverage),
            seen: SeenIds::default(),
            last_total: None,
        }
    }

    /// Counts one fetched page into the report: the page itself, a total that moved, the
    /// status the server put beside the records, and each record (a sourcedId served twice
    /// included).
    fn note_page<T: Record>(&mut self, fetched: &Fetched<T>) {
        self.report.pages += 1;
        let page_no = self.report.pages;
        if let Some(t) = fetched.total {
            if self.last_total.is_some_and(|l| l != t) {
                self.report.problem(format!(
                    "X-Total-Count changed during the pull ({} then {t} on page {page_no})",
                    self.last_total.unwrap_or_default()
                ));
            }
            self.last_total = Some(t);
        }
        for s in &fetched.page.status {
            if s.is_failure() {
                self.report.problem(format!(
                    "page {page_no} ({}) came with a failure status: {s}",
                    fetched.url
                ));
            } else if self.report.sample_warnings.len() < crate::report::SAMPLE_WARNINGS {
                self.report
                    .sample_warnings
                    .push(format!("server said on page {page_no}: {s}"));
            }
        }
        let collection = T::COLLECTION;
        for rec in &fetched.page.records {
            self.seen.insert(rec.sourced_id());
            self.report.saw(rec.base(), || {
                format!(
                    "{collection} page {page_no}, sourcedId {}: ",
                    rec.sourced_id()
                )
            });
        }
    }

    /// The finished report: the total expected, and whether the pull proved complete.
    fn finish(mut self) -> CollectionReport {
        self.report.expected = self.last_total;
        let duplicates = self.seen.duplicates();
        if duplicates > 0 {
            self.report.problem(format!(
                "{duplicates} record(s) came twice: the data moved between pages, so some may have been missed"
            ));
        }
        if let Some(total) = self.last_total
            && self.report.records != total
        {
            self.report.problem(format!(
                "received {} records, the server reported {total}",
                self.report.records
            ));
        }
        self.report.complete = self.report.problems.is_empty();
        self.report
    }
}

/// The sourcedIds of a pull, as 64-bit hashes: enough to spot a record served twice
/// (the data moved under offset paging) at 8 bytes a record. Listed as they come and
/// sorted once at the end, unless they came in order ([`Ascending`]: then none came
/// twice): a set of them is twice the memory, and a lookup in it misses the cache at
/// every one of a district's 8 M enrollments. Hashed with foldhash, seeded per process:
/// SipHash's defence against chosen keys buys nothing here (ids made to collide could
/// only make a pull look incomplete, so that nobody is deactivated for being absent that
/// run) and costs a fifth of a microsecond for each of millions of records.
#[derive(Default)]
struct SeenIds {
    hashes: Vec<u64>,
    hasher: foldhash::fast::RandomState,
    order: Ascending,
}

impl SeenIds {
    fn insert(&mut self, id: &str) {
        self.hashes.push(self.hasher.hash_one(id));
        if self.order.in_order() {
            self.order.next(id);
        }
    }

    /// How many ids came again after their first time.
    fn duplicates(&mut self) -> u64 {
        if self.order.in_order() {
            return 0;
        }
        self.hashes.sort_unstable();
        self.hashes.windows(2).filter(|w| w[0] == w[1]).count() as u64
    }
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The `rel="next"` target of a `Link` header, resolved against the request URL.
fn next_link(h: &HeaderMap, request_url: &str) -> Option<String> {
    for value in h.get_all(header::LINK) {
        let Ok(value) = value.to_str() else { continue };
        for part in value.split(',') {
            let mut pieces = part.split(';');
            let target = pieces.next()?.trim();
            let is_next = pieces.any(|p| {
                let p = p.trim().replace(' ', "");
                p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
            });
            if is_next {
                let target = target.trim_start_matches('<').trim_end_matches('>');
                let base = reqwest::Url::parse(request_url).ok()?;
                return base.join(target).ok().map(|u| u.to_string());
            }
        }
    }
    None
}

/// Whether two URLs name the same page: the same scheme, host, port and path, and the
/// same query parameters in any order (a `Link` header's next page against the next
/// offset's URL).
fn same_page(a: &str, b: &str) -> bool {
    let (Ok(a), Ok(b)) = (reqwest::Url::parse(a), reqwest::Url::parse(b)) else {
        return false;
    };
    let params = |u: &reqwest::Url| {
        let mut p: Vec<(String, String)> = u.query_pairs().into_owned().collect();
        p.sort_unstable();
        p
    };
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path() == b.path()
        && params(&a) == params(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::{Auth, Filter, RestConfig};

    #[test]
    fn ids_served_twice_are_counted_whether_or_not_the_rest_came_in_order() {
        let count = |ids: &[&str]| {
            let mut seen = SeenIds::default();
            for id in ids {
                seen.insert(id);
            }
            seen.duplicates()
        };
        assert_eq!(count(&["usr-9", "usr-10", "usr-11"]), 0);
        assert_eq!(count(&["usr-9", "usr-10", "usr-10", "usr-11"]), 1);
        assert_eq!(count(&["b", "a", "c", "a", "b"]), 2);
        assert_eq!(count(&["b", "a", "c"]), 0);
    }

    #[test]
    fn page_urls_encode_every_reserved_character() {
        let c = RestClient::new(RestConfig::new(
            "https://h.example/campus/oneroster/app/ims/oneroster/v1p1/",
            Auth::None,
        ))
        .unwrap();
        let q = Query {
            filter: Some(Filter::new("role", "=", "student").and(Filter::new(
                "givenName",
                "~",
                "a b+c",
            ))),
            ..Query::default()
        };
        assert_eq!(
            c.page_url("users", &q, 2000, 1000),
            "https://h.example/campus/oneroster/app/ims/oneroster/v1p1/users?limit=1000&offset=2000&filter=role%3D%27student%27%20AND%20givenName~%27a%20b%2Bc%27"
        );
    }

    #[test]
    fn link_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::LINK,
            r#"<https://x/users?offset=0>; rel="first", </api/users?offset=100&limit=100>; rel="next""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h, "https://x/api/users?offset=0&limit=100").as_deref(),
            Some("https://x/api/users?offset=100&limit=100")
        );
        let mut h = HeaderMap::new();
        h.insert(
            header::LINK,
            r#"<https://x/users?offset=0>; rel="last""#.parse().unwrap(),
        );
        assert_eq!(next_link(&h, "https://x/users"), None);
    }

    #[test]
    fn a_link_is_the_next_offset_whatever_the_order_of_its_parameters() {
        let ours = "https://x:443/api/users?limit=100&offset=200&filter=role%3D%27student%27";
        for same in [
            "https://x/api/users?offset=200&filter=role%3D%27student%27&limit=100",
            "https://x:443/api/users?filter=role%3D%27student%27&limit=100&offset=200",
        ] {
            assert!(same_page(same, ours), "{same}");
        }
        for other in [
            "https://x/api/users?limit=100&offset=300&filter=role%3D%27student%27",
            "https://x/api/users?limit=100&cursor=abc&filter=role%3D%27student%27",
            "https://x/api/users?limit=100&offset=200",
            "https://x/api/teachers?limit=100&offset=200&filter=role%3D%27student%27",
            "http://x/api/users?limit=100&offset=200&filter=role%3D%27student%27",
            "https://y/api/users?limit=100&offset=200&filter=role%3D%27student%27",
            "not a url",
        ] {
            assert!(!same_page(other, ours), "{other}");
        }
    }
}
