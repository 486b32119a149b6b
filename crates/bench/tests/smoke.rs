//! Runs every scenario through the command line with tiny parameters and checks that the reports
//! come out and that their counts agree. Speed is never asserted here: it is what the reports show.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Runs `parley-bench --out DIR ARGS…`, expects success, and returns `DIR/NAME.json` parsed,
/// after checking that `DIR/NAME.md` was written too.
fn bench(out: &Path, name: &str, args: &[&str]) -> Value {
    let output =
        Command::new(env!("CARGO_BIN_EXE_parley-bench")).arg("--out").arg(out).args(args).output().expect("runs");
    assert!(output.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    let md = std::fs::read_to_string(out.join(format!("{name}.md"))).expect("markdown report");
    assert!(md.starts_with("# "), "{md}");
    let json = std::fs::read_to_string(out.join(format!("{name}.json"))).expect("json report");
    serde_json::from_str(&json).expect("json")
}

#[test]
fn routing_reports_the_decisions_it_was_asked_for() {
    let out = tempfile::tempdir().expect("temp dir");
    let args = ["routing", "--agents", "50", "--queued", "100", "--services", "10", "--decisions", "2000"];
    let r = bench(out.path(), "routing", &args);
    assert_eq!(r["scenario"], "routing");
    assert_eq!(r["setup"]["agents_with_offer"], 50);
    assert_eq!(r["setup"]["waiting"], 100);
    let m = &r["measured"];
    let decisions = m["decisions"].as_u64().expect("decisions");
    assert!(decisions >= 2000, "{m}");
    // Every finish hands the freed agent exactly one chat, so each timed call made one offer.
    assert_eq!(m["offer_call_ns"]["count"].as_u64(), Some(decisions));
    assert!(m["inputs"].as_u64() >= Some(3 * decisions), "{m}");
    assert_eq!(m["waiting_at_end"], 100);
    assert_eq!((m["requeued"].as_u64(), m["refused"].as_u64()), (Some(0), Some(0)));
    assert_eq!(r["goal"]["applies"], false);
}

#[test]
fn routing_with_a_service_cap_still_makes_its_decisions() {
    let out = tempfile::tempdir().expect("temp dir");
    let args = ["routing", "--agents", "50", "--queued", "100", "--services", "10", "--decisions", "500"];
    let r = bench(out.path(), "routing", &[&args[..], &["--service-max-tasks", "2"]].concat());
    assert_eq!(r["setup"]["agents_with_offer"], 20, "10 services × 2");
    let m = &r["measured"];
    assert!(m["decisions"].as_u64() >= Some(500), "{m}");
    assert_eq!((m["requeued"].as_u64(), m["refused"].as_u64()), (Some(0), Some(0)));
}

#[test]
fn offer_latency_reports_every_chat() {
    let out = tempfile::tempdir().expect("temp dir");
    let r = bench(out.path(), "offer-latency", &["offer-latency", "--chats", "5", "--warmup", "1"]);
    assert_eq!(r["scenario"], "offer-latency");
    assert_eq!(r["store"], "sqlite");
    for measure in ["offer_ms", "created_ms", "accept_ms", "end_ms"] {
        let p = &r[measure];
        assert_eq!(p["count"], 5, "{measure}: {p}");
        assert!(p["p50"].as_f64() <= p["p99"].as_f64() && p["p99"].as_f64() <= p["max"].as_f64(), "{p}");
    }
}

#[test]
fn the_suite_reports_every_ratio_with_its_ceilings_measured_twice() {
    let out = tempfile::tempdir().expect("temp dir");
    let args = ["suite", "--chats", "2", "--secs", "0.2", "--log-rows", "200", "--writers", "4", "--fsync-writes", "5"];
    let r = bench(out.path(), "suite", &args);
    let ids: Vec<&str> =
        r["rows"].as_array().expect("rows").iter().map(|row| row["id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["R2", "R3"]);
    for row in r["rows"].as_array().expect("rows") {
        let (value, ceiling, ratio) = (row["value"].as_f64(), row["ceiling"].as_f64(), row["ratio"].as_f64());
        let (value, ceiling, ratio) = (value.expect("value"), ceiling.expect("ceiling"), ratio.expect("ratio"));
        assert!(value > 0.0 && ceiling > 0.0, "{row}");
        assert!((ratio - value / ceiling).abs() < 1e-9, "the ratio is value ÷ ceiling: {row}");
    }
    // Every log row was written and acknowledged; the ceilings ran before and after.
    assert_eq!(r["log"]["rows"], 200);
    assert_eq!(r["log"]["latency_ms"]["count"], 200);
    for when in ["before", "after"] {
        assert_eq!(r[when]["sqlite"]["rows"], 200, "{when}");
        assert_eq!(r[when]["fsync"]["latency_ms"]["count"], 5, "{when}");
        assert!(r[when]["echo"]["echoes"].as_u64() > Some(0), "{when}");
    }
    assert_eq!(r["relay"]["chats"], 2);
    assert!(r["relay"]["messages"].as_u64() > Some(0));
}

#[test]
fn the_suite_adds_the_process_figures_when_given_the_parley_binary() {
    // `cargo test --workspace` builds the server's binary before any test runs; alone, this
    // package's tests may run without it, and then there is nothing to measure.
    let bin = parley_testkit::server::workspace_path("target/debug/parley");
    if !bin.exists() {
        eprintln!("skipped: {} is not built", bin.display());
        return;
    }
    let out = tempfile::tempdir().expect("temp dir");
    let args = [
        "suite",
        "--chats",
        "1",
        "--secs",
        "0.1",
        "--log-rows",
        "10",
        "--writers",
        "1",
        "--fsync-writes",
        "1",
        "--cold-starts",
        "1",
        "--idle-connections",
        "5",
        "--parley-bin",
    ];
    let r = bench(out.path(), "suite", &[&args[..], &[bin.to_str().expect("path")]].concat());
    let ids: Vec<&str> =
        r["rows"].as_array().expect("rows").iter().map(|row| row["id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["R2", "R3", "R4", "A5", "A6"]);
    let size = std::fs::metadata(&bin).expect("binary").len();
    assert_eq!(r["startup"]["binary_bytes"].as_u64(), Some(size));
    assert_eq!(r["startup"]["cold_start_ms"]["count"], 1);
    assert_eq!(r["idle"]["connections"], 5);
}
