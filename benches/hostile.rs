//! What each hostile server behaviour costs a boot with the default settings
//! (`stboot.stall_timeout=10`, the default retry policy): seconds from the first
//! request to the hostile URL until stboot moves on to the next URL, next to the
//! goal of 60 s. Runs against `integration-tests/hostile-server.py` on 127.0.0.1;
//! takes about three minutes.
//!
//! `cargo bench --bench hostile`

#[path = "../tests/common/hostile.rs"]
mod hostile;

use std::time::{Duration, Instant};

use stboot::fetch::FetchError;

const GOAL: Duration = Duration::from_secs(60);

fn main() {
    let stall = stboot::config::Options::default().stall_timeout;
    let e = hostile::env();
    let stage = tempfile::tempdir().unwrap();
    let f = hostile::fetcher_with(stage.path(), stall, std::slice::from_ref(&e.tls_ca_der), 256 << 20);
    println!(
        "stall timeout {} s, default retry policy; goal: at most {} s per hostile URL",
        stall.as_secs(),
        GOAL.as_secs()
    );
    println!("{:<36} {:>9}  {:<6} error", "behaviour", "cost", "goal");
    let mut worst = Duration::ZERO;
    for (name, url) in hostile::behaviours() {
        let t = Instant::now();
        let err = match f.fetch(&url, 0) {
            Ok(_) => panic!("{name}: the hostile URL yielded a package"),
            Err(e) => e,
        };
        let cost = t.elapsed();
        worst = worst.max(cost);
        let kind = err.chain().find_map(|c| c.downcast_ref::<FetchError>()).map(|e| e.to_string()).unwrap_or_default();
        let kind: String = kind.chars().take(60).collect();
        let ok = if cost <= GOAL { "ok" } else { "OVER" };
        println!("{name:<36} {:>8.1}s  {ok:<6} {kind}", cost.as_secs_f64());
    }
    let t = Instant::now();
    f.fetch(&hostile::url("good"), 1).expect("the good URL");
    println!("{:<36} {:>8.1}s", "good URL (for comparison)", t.elapsed().as_secs_f64());
    println!("worst hostile URL: {:.1} s (goal {} s)", worst.as_secs_f64(), GOAL.as_secs());
}
