//! `parley demo` prints URLs that work, and can be run again on the same data folder.

use parley_testkit::{Api, ServerProcess, Ws};
use serde_json::json;

fn field<'a>(banner: &'a str, label: &str) -> &'a str {
    banner
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("banner has no {label}:\n{banner}"))
}

#[tokio::test]
async fn demo_prints_urls_that_work() {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_parley"));
    let dir = tempfile::tempdir().unwrap();
    let (p, banner) = ServerProcess::start_demo(bin, dir.path()).await.unwrap();
    let preview = field(&banner, "Widget preview:");
    let workspace = field(&banner, "Agent workspace:");
    let api_base = field(&banner, "API base:");
    let key = field(&banner, "Authorization: Bearer");
    assert!(preview.starts_with(&p.base), "{preview} is on {}", p.base);

    let http = Api::new("");
    let page = http.get(preview).await.unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.as_str().unwrap().contains("/widget.js"), "preview embeds the loader");
    let login = http.get(workspace).await.unwrap();
    assert!(login.body.as_str().unwrap().contains("id=\"login\""));
    let tenant = Api::new(api_base).bearer(key).get("/tenant").await.unwrap();
    assert_eq!(tenant.body["slug"], "demo");
    let services = Api::new(api_base).bearer(key).get("/services").await.unwrap();
    assert_eq!(services.body[0]["name"], "Support");
    // Its system messages greet and thank the customer, in German too.
    let texts_id = services.body[0]["system_messages_id"].as_str().expect("the demo service links texts");
    let texts = Api::new(api_base).bearer(key).get(&format!("/system-messages/{texts_id}")).await.unwrap();
    assert!(texts.body["texts"].as_array().unwrap().iter().any(|t| t["language"] == "de"), "{}", texts.body);

    // The printed sign-in works and opens the workspace socket.
    let sign_in = field(&banner, "sign in as");
    let (email, password) = sign_in.split("  or  ").next().unwrap().split_once(" / ").unwrap();
    let r = Api::new(&p.base)
        .post("/api/v1/agent/login", &json!({"tenant": "demo", "email": email, "password": password}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = r.set_cookie.unwrap().split(';').next().unwrap().to_owned();
    let mut ws = Ws::connect(&format!("{}/ws/v1/agent", p.ws_base()), Some(&cookie)).await.unwrap();
    assert_eq!(ws.next().await.unwrap()["user"]["display_name"], "Ada Lovelace");
    p.terminate().await.unwrap();

    // Again on the same folder: same tenant, a fresh key.
    let (p, banner2) = ServerProcess::start_demo(bin, dir.path()).await.unwrap();
    let key2 = field(&banner2, "Authorization: Bearer");
    assert_ne!(key, key2);
    let api2 = field(&banner2, "API base:");
    assert_eq!(Api::new(api2).bearer(key2).get("/services").await.unwrap().body.as_array().map(Vec::len), Some(1));
    p.terminate().await.unwrap();
}
