//! Password checks are bounded: a burst of sign-ins (with any e-mail, so no account is needed)
//! cannot take the server's memory, and those beyond the queue are told to come back.

use parley_testkit::{Api, ServerProcess, fixtures};
use serde_json::json;
use std::path::Path;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_burst_of_sign_ins_is_bounded_in_memory_and_the_excess_is_told_to_retry() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(Path::new(env!("CARGO_BIN_EXE_parley")), dir.path()).await.unwrap();
    let t = fixtures::tenant(&server.base, "burst", 1).await.unwrap();
    let before = rss_kib(server.pid().unwrap());
    let attempts = (0..96).map(|n| {
        let base = server.base.clone();
        let slug = t.slug.clone();
        tokio::spawn(async move {
            let body = json!({"tenant": slug, "email": format!("nobody{n}@example.com"), "password": "guess"});
            let r = Api::new(&base).post("/api/v1/agent/login", &body).await.unwrap();
            (r.status.as_u16(), r.header("retry-after").to_owned())
        })
    });
    let mut answers = Vec::new();
    for a in attempts {
        answers.push(a.await.unwrap());
    }
    let after = rss_kib(server.pid().unwrap());
    assert!(answers.iter().all(|(s, _)| *s == 401 || *s == 503), "{answers:?}");
    assert!(answers.iter().filter(|(s, _)| *s == 503).all(|(_, r)| r == "1"), "503 says when to retry");
    assert!(answers.iter().any(|(s, _)| *s == 401), "some were checked");
    // Unbounded, each check held 19 MiB at once on a thread of its own (96 of them: about
    // 1.8 GiB, kept by the allocator); now two workers reuse one block each (measured: +19 MiB).
    let grown_mib = after.saturating_sub(before) / 1024;
    assert!(grown_mib < 100, "resident memory grew by {grown_mib} MiB");
    server.terminate().await.unwrap();
}

#[tokio::test]
async fn creating_many_users_keeps_no_memory_per_password() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(Path::new(env!("CARGO_BIN_EXE_parley")), dir.path()).await.unwrap();
    let t = fixtures::tenant(&server.base, "many", 1).await.unwrap();
    let before = rss_kib(server.pid().unwrap());
    for n in 0..30 {
        let body = json!({"display_name": format!("User {n}"), "email": format!("user{n}@many.example"),
                          "password": "a long enough password", "licences": ["instant_messaging"]});
        let r = t.admin.post("/api/v1/users", &body).await.unwrap();
        assert_eq!(r.status, 201, "{}", r.body);
    }
    // Each hash once left 19 MiB behind (20 users: +191 MiB); the workers' blocks are reused.
    let grown_mib = rss_kib(server.pid().unwrap()).saturating_sub(before) / 1024;
    assert!(grown_mib < 60, "resident memory grew by {grown_mib} MiB for 30 users");
    server.terminate().await.unwrap();
}
