//! Graceful shutdown: sockets close with a reconnect hint, readiness turns off, everything
//! acknowledged is kept.

use parley_testkit::{Api, TestServer, fixtures};
use serde_json::json;

#[tokio::test]
async fn shutdown_closes_sockets_with_a_reconnect_hint() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "bye", 1).await.unwrap();
    let (_, token) = t.start_chat(&server.base, "Sam", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    v.send(&json!({"type": "send", "client_msg_id": "last", "text": "before shutdown"})).await.unwrap();
    v.until("ack", |f| f["type"] == "ack").await.unwrap();
    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    server.state.shutdown.cancel();
    assert_eq!(v.closed().await.unwrap(), 1012);
    assert_eq!(agent.closed().await.unwrap(), 1012);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let server = TestServer::sqlite().await;
    let api = Api::new(&server.base);
    assert_eq!(api.get("/healthz").await.unwrap().body["status"], "ok");
    let r = api.get("/readyz").await.unwrap();
    assert_eq!((r.status.as_u16(), r.body["status"].as_str()), (200, Some("ok")));
    let doc = api.get("/api/v1/openapi.json").await.unwrap();
    assert_eq!(doc.body["info"]["title"], "Parley API");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn sigterm_stops_the_binary_cleanly_and_keeps_its_data() {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_parley"));
    let dir = tempfile::tempdir().unwrap();
    let p = parley_testkit::ServerProcess::start(bin, dir.path()).await.unwrap();
    let t = fixtures::tenant(&p.base, "term", 1).await.unwrap();
    p.terminate().await.unwrap();
    let p = parley_testkit::ServerProcess::start(bin, dir.path()).await.unwrap();
    let r = Api::new(&p.base).bearer(&t.api_key).get("/api/v1/services").await.unwrap();
    assert_eq!(r.body[0]["name"], "Support");
    p.terminate().await.unwrap();
}
