//! Starting simulators and talking to them with a plain HTTP client.

use std::collections::BTreeMap;

use serde_json::Value;
use sim::{AuthMode, DistrictConfig, RunningSim, Server, SimConfig, Version};

pub fn district(users: u32, seed: u64, day: u32) -> DistrictConfig {
    DistrictConfig {
        users,
        seed,
        day,
        ..DistrictConfig::default()
    }
}

/// A provider without authentication, for tests about data rather than auth.
pub fn open_config(users: u32, day: u32, version: Version) -> SimConfig {
    SimConfig {
        district: district(users, 7, day),
        version,
        auth: AuthMode::None,
        ..SimConfig::default()
    }
}

pub async fn start(config: SimConfig) -> RunningSim {
    Server::start(config).await.expect("the simulator starts")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Page {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn total(&self) -> Option<usize> {
        self.headers
            .get("x-total-count")?
            .to_str()
            .ok()?
            .parse()
            .ok()
    }

    /// `Link` header as rel → URL.
    pub fn links(&self) -> BTreeMap<String, String> {
        let Some(value) = self.headers.get("link").and_then(|v| v.to_str().ok()) else {
            return BTreeMap::new();
        };
        value
            .split(", <")
            .filter_map(|part| {
                let part = part.trim_start_matches('<');
                let (url, rel) = part.split_once(">; rel=\"")?;
                Some((rel.trim_end_matches('"').to_owned(), url.to_owned()))
            })
            .collect()
    }
}

/// GET `{base_url}{path}` with no credentials.
pub async fn get(sim: &RunningSim, path: &str) -> Page {
    get_url(&format!("{}{path}", sim.base_url())).await
}

pub async fn get_url(url: &str) -> Page {
    let response = http().get(url).send().await.unwrap();
    Page {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.bytes().await.unwrap().to_vec(),
    }
}

/// Every record of a list endpoint, following pages of `limit` with `extra` query params.
pub async fn pull(sim: &RunningSim, endpoint: &str, envelope: &str, extra: &str) -> Vec<Value> {
    let mut records = Vec::new();
    let mut offset = 0;
    loop {
        let page = get(
            sim,
            &format!("/{endpoint}?limit=5000&offset={offset}{extra}"),
        )
        .await;
        assert_eq!(
            page.status,
            200,
            "{endpoint}: {}",
            String::from_utf8_lossy(&page.body)
        );
        let total = page.total().expect("X-Total-Count");
        let batch = page.json()[envelope]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let got = batch.len();
        records.extend(batch);
        offset += got;
        if got == 0 || offset >= total {
            break;
        }
    }
    records
}

/// Records keyed by sourcedId.
pub fn by_id(records: Vec<Value>) -> BTreeMap<String, Value> {
    records
        .into_iter()
        .map(|r| (r["sourcedId"].as_str().unwrap().to_owned(), r))
        .collect()
}

pub fn ids_of(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|refs| {
            refs.iter()
                .map(|r| r["sourcedId"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
