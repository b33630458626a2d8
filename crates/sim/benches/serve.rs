//! Serving benchmark: how fast the simulator generates a district and serves every users
//! and enrollments page, and how much memory that takes.
//!
//! `cargo bench -p sim` (100 000 people); `SIM_BENCH_USERS=1000000 cargo bench -p sim` for
//! a million. `SIM_BENCH_PAGE` sets `limit` (default 10 000). Prints plain figures.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use sim::{AuthMode, District, DistrictConfig, Server, SimConfig};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn pull_all(
    client: &reqwest::Client,
    base: &str,
    collection: &str,
    limit: u64,
) -> (u64, u64, u64, f64) {
    let started = Instant::now();
    let (mut pages, mut bytes, mut records, mut offset) = (0u64, 0u64, 0u64, 0u64);
    loop {
        let url = format!("{base}/{collection}?limit={limit}&offset={offset}");
        let response = client.get(&url).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        let total: u64 = response.headers()["x-total-count"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body = response.bytes().await.unwrap();
        // Count records without parsing: one sourcedId per record at the top level.
        let in_page = body
            .windows(13)
            .filter(|w| *w == b"{\"sourcedId\":")
            .count() as u64;
        pages += 1;
        bytes += body.len() as u64;
        records += in_page;
        offset += limit;
        if offset >= total {
            break;
        }
    }
    (pages, bytes, records, started.elapsed().as_secs_f64())
}

fn main() {
    let users = env_number("SIM_BENCH_USERS", 100_000) as u32;
    let limit = env_number("SIM_BENCH_PAGE", 10_000);
    let config = DistrictConfig {
        users,
        seed: 1,
        day: 0,
        ..DistrictConfig::default()
    };

    let started = Instant::now();
    let district = District::generate(&config).unwrap();
    let generate_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut later = district.clone();
    later.advance(365);
    let advance_s = started.elapsed().as_secs_f64();
    let counts = district.counts();
    println!(
        "district: {users} people, {} students, {} teachers, {} guardians, {} classes, {} enrollments",
        counts.students, counts.teachers, counts.guardians, counts.classes, counts.enrollments
    );
    println!("generate day 0: {generate_s:.2} s; clone + advance to day 365: {advance_s:.2} s");
    drop(later);
    println!(
        "peak RSS so far (two copies of the district): {:.0} MB",
        peak_rss_mb()
    );
    // Linux: writing 5 to clear_refs resets VmHWM, so the next figure is the serving alone.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let sim_config = SimConfig {
            district: config,
            auth: AuthMode::None,
            ..SimConfig::default()
        };
        let served = Server::start_with(sim_config, district).await.unwrap();
        let client = reqwest::Client::new();
        for collection in ["users", "enrollments"] {
            let (pages, bytes, records, seconds) = pull_all(&client, served.base_url(), collection, limit).await;
            let mb = bytes as f64 / 1e6;
            println!(
                "{collection}: {records} records in {pages} pages of {limit}, {mb:.1} MB in {seconds:.2} s = {:.1} pages/s, {:.1} MB/s, {:.0} records/s",
                pages as f64 / seconds,
                mb / seconds,
                records as f64 / seconds
            );
        }
        served.stop().await;
    });
    let scope = if reset { "while serving" } else { "whole run" };
    println!("peak RSS (VmHWM) {scope}: {:.0} MB", peak_rss_mb());
}
