use parley_server::app::{App, Overrides};
use parley_server::clock::ManualClock;
use parley_server::config::{Layer, Secret};
use parley_testkit::{Api, fixtures};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

async fn probe(nodelay: bool, client_nodelay: bool) {
    let dir = tempfile::tempdir().unwrap();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_nodelay(nodelay).unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(128).unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let layer = Layer {
        listen: Some(addr),
        data_dir: Some(dir.path().to_path_buf()),
        database_url: Some(format!("sqlite://{}", dir.path().join("p.db").display())),
        public_url: Some(base.clone()),
        admin_token: Some(Secret::new("test-platform-admin-token")),
        ..Layer::default()
    };
    let clock = ManualClock::new(time::macros::datetime!(2026-01-05 09:00 UTC));
    let app = App::build(layer.finish().unwrap(), Overrides { clock: Some(Arc::new(clock)), listener: Some(listener) })
        .await
        .unwrap();
    tokio::spawn(app.run());
    let ws_base = base.replacen("http", "ws", 1);
    let t = fixtures::tenant(&base, "probe", 1).await.unwrap();
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http};
    let cookie = t.login(&base, 0).await.unwrap();
    let mut req = format!("{ws_base}/ws/v1/agent").into_client_request().unwrap();
    req.headers_mut().insert(http::header::COOKIE, cookie.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, None, client_nodelay).await.unwrap();
    macro_rules! send {
        ($v:expr) => {
            ws.send(Message::Text($v.to_string().into())).await.unwrap()
        };
    }
    macro_rules! until {
        ($pred:expr, $s:expr, $tag:expr) => {
            loop {
                let Some(Ok(Message::Text(t))) = ws.next().await else { continue };
                let f: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                if !$tag.is_empty() {
                    eprintln!("   {} {:?} {} {}", $tag, $s.elapsed(), f["type"], f["entry"]["event"]["type"]);
                }
                if $pred(&f) {
                    break f;
                }
            }
        };
    }
    let s0 = Instant::now();
    until!(|f: &serde_json::Value| f["type"] == "hello", s0, "");
    send!(json!({"type": "presence", "presence": "available"}));
    until!(|f: &serde_json::Value| f["type"] == "presence", s0, "");
    let widget = Api::new(&base);
    for n in 0..3 {
        let r = widget.post("/api/v1/widget/conversations", &t.form(&format!("V{n}"), Some("hi"))).await.unwrap();
        let conv = r.body["conversation_id"].as_str().unwrap().to_owned();
        until!(|f: &serde_json::Value| f["type"] == "offer", s0, "");
        send!(json!({"type": "accept", "conversation_id": conv}));
        until!(|f: &serde_json::Value| f["type"] == "chat", s0, "");
        let s = Instant::now();
        send!(json!({"type": "end", "conversation_id": conv}));
        until!(|f: &serde_json::Value| f["entry"]["event"]["type"] == "ended", s, "end");
        eprintln!("server_nodelay={nodelay} client_nodelay={client_nodelay} end->ended {:?}", s.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_and_without() {
    probe(false, false).await;
    probe(true, false).await;
    probe(false, true).await;
    probe(true, true).await;
}
