//! Runs every scenario through the command line with tiny parameters and checks that the reports
//! come out and that their counts agree. Speed is never asserted here: it is what the reports show.

// Test code: a failed expectation is the report (clippy.toml allows this inside #[test] only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

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

/// The server's debug binary, which the process scenarios start; `None` (the test is skipped,
/// saying so) when it is not built.
fn parley_binary() -> Option<std::path::PathBuf> {
    let bin = parley_testkit::server::workspace_path("target/debug/parley");
    if bin.exists() {
        Some(bin)
    } else {
        eprintln!("skipped: {} is not built", bin.display());
        None
    }
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
    let Some(bin) = parley_binary() else { return };
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

#[test]
fn the_soak_holds_every_widget_and_storms_both_servers() {
    // Like the suite's process figures: nothing to measure without the server's binary.
    let Some(bin) = parley_binary() else { return };
    let out = tempfile::tempdir().expect("temp dir");
    let args = [
        "soak",
        "--connections",
        "50",
        "--processes",
        "2",
        "--idle-secs",
        "1",
        "--storm-connections",
        "20",
        "--in-flight",
        "8",
        "--chat-concurrency",
        "4",
        "--per-source",
        "10",
        "--worker-deadline-secs",
        "120",
        "--parley-bin",
    ];
    let r = bench(out.path(), "soak", &[&args[..], &[bin.to_str().expect("path")]].concat());
    assert_eq!(r["scenario"], "soak");
    assert_eq!(r["chats"]["chats"], 50);
    assert_eq!(r["chats"]["request_ms"]["count"], 50);
    // Every chat waits (nobody staffs the service), so every widget socket opens and stays.
    let idle = &r["idle"];
    assert_eq!((idle["open"]["opened"].as_u64(), idle["open"]["failed"].as_u64()), (Some(50), Some(0)), "{idle}");
    assert_eq!(idle["held"], 50);
    assert_eq!(idle["open"]["connect_ms"]["count"], 50);
    assert!(idle["files"]["holding"].as_u64() >= Some(50), "{idle}");
    assert_eq!(r["echo_idle"]["open"]["opened"], 50);
    for storm in ["echo_before", "parley", "echo_after"] {
        let s = &r["storm"][storm];
        assert_eq!((s["opened"].as_u64(), s["failed"].as_u64()), (Some(20), Some(0)), "{storm}: {s}");
    }
    // The chat that ended was waiting; everyone behind it was due a new place.
    let d = &r["dequeue"];
    let position = d["position"].as_u64().expect("position");
    assert!((1..=50).contains(&position), "{d}");
    assert_eq!(d["behind"].as_u64(), Some(50 - position));
    assert!(d["frames"].as_u64() >= d["behind"].as_u64(), "{d}");
    let ids: Vec<&str> =
        r["rows"].as_array().expect("rows").iter().map(|row| row["id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["A1", "A1", "A1", "R4", "storm"]);
    assert_eq!(r["rows"][0]["pass"], true, "all 50 held");
}

#[test]
fn the_crash_scenario_loses_and_duplicates_nothing_it_acknowledged() {
    // Like the suite's process figures: nothing to kill without the server's binary.
    let Some(bin) = parley_binary() else { return };
    let out = tempfile::tempdir().expect("temp dir");
    let args = ["crash", "--chats", "4", "--rate", "200", "--kill-after-secs", "0.5", "--parley-bin"];
    let r = bench(out.path(), "crash", &[&args[..], &[bin.to_str().expect("path")]].concat());
    assert_eq!(r["scenario"], "crash");
    let (load, before, resend, after) = (&r["load"], &r["after_restart"], &r["resend"], &r["after_resend"]);
    let count = |v: &Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
    for check in [before, after] {
        for k in ["lost", "moved", "duplicates", "seq_breaks", "order_broken"] {
            assert_eq!(count(check, k), 0, "{k}: {check}");
        }
    }
    assert_eq!(r["pass"], true);
    let (sent, acked) = (count(load, "sent"), count(load, "acknowledged"));
    assert!(sent > 0 && acked <= sent, "{load}");
    assert_eq!(count(load, "unacknowledged"), sent - acked);
    assert_eq!(load["ack_ms"]["count"].as_u64(), Some(acked));
    // After the restart: every acknowledged message, plus those committed whose answer the kill cut.
    let committed_unacked = count(before, "unacknowledged_present");
    assert_eq!(count(before, "messages"), acked + committed_unacked, "{before}");
    assert_eq!(count(before, "absent"), sent - acked - committed_unacked, "{before}");
    // Every unanswered message was resent; those already committed came back as duplicates.
    assert_eq!(count(resend, "resent"), sent - acked, "{resend}");
    assert_eq!(count(resend, "unanswered"), 0, "{resend}");
    assert_eq!(count(resend, "duplicate"), committed_unacked, "{resend}");
    assert_eq!(count(resend, "written"), sent - acked - committed_unacked, "{resend}");
    // In the end every message sent is in its chat's log exactly once.
    assert_eq!((count(after, "messages"), count(after, "absent")), (sent, 0), "{after}");
}

#[test]
fn cold_start_fills_the_folder_and_every_start_rebuilds_the_whole_queue() {
    // Like the suite's process figures: nothing to start without the server's binary.
    let Some(bin) = parley_binary() else { return };
    let out = tempfile::tempdir().expect("temp dir");
    let args =
        ["cold-start", "--open-chats", "20", "--messages", "500", "--batch", "100", "--starts", "1", "--parley-bin"];
    let r = bench(out.path(), "cold-start", &[&args[..], &[bin.to_str().expect("path")]].concat());
    assert_eq!(r["scenario"], "cold-start");
    let f = &r["fill"];
    assert_eq!(f["open_chats"], 21, "the API's chat and 20 clones: {f}");
    assert_eq!((f["appended"].as_u64(), f["batches"].as_u64()), (Some(500), Some(5)), "{f}");
    assert!(f["log_entries"].as_u64() > Some(500), "the API chat's own entries too: {f}");
    assert!(f["db_bytes"].as_u64() > Some(0), "{f}");
    let s = &r["starts"];
    for measure in ["listening_ms", "hello_ms", "ready_ms"] {
        assert_eq!(s[measure]["count"], 1, "{measure}: {s}");
    }
    // The probe is the last chat queued: its place counts every open chat, so all were rebuilt.
    assert_eq!(s["queue_positions"], serde_json::json!([21]), "{s}");
    assert_eq!(r["goal"]["id"], "A5");
}

#[test]
fn the_load_delivers_every_message_to_the_agents_once_and_in_order() {
    let Some(bin) = parley_binary() else { return };
    let out = tempfile::tempdir().expect("temp dir");
    let args = ["load", "--chats", "60", "--agents", "4", "--rate", "200", "--secs", "0.5", "--parley-bin"];
    let r = bench(out.path(), "load", &[&args[..], &[bin.to_str().expect("path")]].concat());
    let count = |v: &Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
    assert!(count(&r["ephemeral"], "signals") > 0, "{}", r["ephemeral"]);
    for phase in [&r["durable"], &r["slow"]] {
        let sent = count(phase, "sent");
        assert!(sent > 0, "{phase}");
        for k in ["lost", "duplicates", "out_of_order"] {
            assert_eq!(count(phase, k), 0, "{k}: {phase}");
        }
        assert_eq!((count(phase, "received"), count(phase, "acked")), (sent, sent), "{phase}");
    }
    assert_eq!(count(&r["echo"], "received"), count(&r["echo"], "sent"));
    let ids: Vec<&str> = r["rows"].as_array().expect("rows").iter().filter_map(|row| row["id"].as_str()).collect();
    for id in ["R1", "R5", "A2", "A7"] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
}

#[test]
fn the_smoke_set_runs_every_scenario_and_tables_every_goal() {
    let Some(bin) = parley_binary() else { return };
    let out = tempfile::tempdir().expect("temp dir");
    let set = parley_testkit::server::workspace_path("crates/bench/scenarios/smoke.toml");
    let args = ["run", set.to_str().expect("path"), "--parley-bin", bin.to_str().expect("path")];
    let r = bench(out.path(), "set", &args);
    assert_eq!(r["failed"].as_array().map(Vec::len), Some(0), "{}", r["failed"]);
    let ids: Vec<&str> = r["rows"].as_array().expect("rows").iter().filter_map(|row| row["id"].as_str()).collect();
    for id in ["R1", "R2", "R3", "R4", "R5", "A1", "A2", "A3", "A4", "A5", "A6", "A7"] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    for scenario in ["routing", "offer-latency", "suite", "load", "crash", "cold-start", "soak"] {
        assert!(out.path().join(format!("{scenario}.md")).exists(), "{scenario} wrote no report");
    }
}

#[test]
fn the_documented_set_names_every_parameter_of_every_scenario() {
    let path = parley_testkit::server::workspace_path("crates/bench/scenarios/goals.toml");
    let set = parley_bench::set::read(&path).expect("a complete set");
    assert!(set.routing.is_some() && set.suite.is_some() && set.load.is_some() && set.soak.is_some());
    assert!(set.crash.is_some() && set.cold_start.is_some() && set.offer_latency.is_some());
}
