//! Files sent in chats, over the real HTTP API and sockets: either side sends one, the other
//! sees it in the log and downloads the same bytes, served so no browser runs them; retries are
//! idempotent; bad uploads are refused with their field and change nothing.

use crate::support::{Chat, PNG_1X1, connected_chat, log_of};
use parley_testkit::{Api, Download, TestServer, fixtures};
use serde_json::Value;

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";

fn visitor_upload_path(conv: &str, id: &str, name: &str) -> String {
    format!("/api/v1/widget/conversations/{conv}/attachments?client_msg_id={id}&name={name}")
}

async fn upload(api: &Api, path: &str, bytes: &[u8]) -> parley_testkit::Reply {
    api.raw("POST", path, Some("application/octet-stream"), Some(bytes.to_vec())).await.unwrap()
}

fn assert_served_inertly(d: &Download, content_type: &str, disposition: &str) {
    assert_eq!(d.status, 200);
    assert_eq!(d.header("content-type"), content_type);
    assert_eq!(d.header("content-disposition"), disposition);
    assert_eq!(d.header("x-content-type-options"), "nosniff");
    assert_eq!(d.header("content-security-policy"), "default-src 'none'; sandbox");
}

fn files_in(dir: &std::path::Path) -> usize {
    walk(dir)
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map_or(0, |entries| entries.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum())
}

#[tokio::test]
async fn a_file_sent_by_either_side_reaches_the_other_and_downloads_intact() {
    let server = TestServer::sqlite().await;
    let Chat { t, conv, token, mut agent, mut visitor } = connected_chat(&server, "files", 1).await;
    let as_visitor = Api::new(&server.base).bearer(&token);
    let as_agent = Api::new(&server.base).cookie(&t.login(&server.base, 0).await.unwrap());

    // The customer sends a picture; the name claims PDF, the bytes say PNG.
    let r = upload(&as_visitor, &visitor_upload_path(&conv, "f-1", "../../scan.pdf"), PNG_1X1).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let a = &r.body["attachment"];
    assert_eq!((a["name"].as_str(), a["content_type"].as_str()), (Some("scan.pdf.png"), Some("image/png")));
    assert_eq!(a["size"], PNG_1X1.len());
    let id = a["id"].as_str().unwrap().to_owned();
    let seen =
        agent.until("file entry", |f| f["type"] == "entry" && f["entry"]["attachment"]["id"] == id.as_str()).await;
    let entry = &seen.unwrap()["entry"];
    assert_eq!((entry["sender"]["role"].as_str(), entry["text"].as_str()), (Some("customer"), Some("")));
    let d = as_agent.download(&format!("/api/v1/agent/chats/{conv}/attachments/{id}")).await.unwrap();
    assert_served_inertly(&d, "image/png", "inline; filename*=UTF-8''scan.pdf.png");
    assert_eq!(d.bytes, PNG_1X1);

    // The agent sends a document; the customer and the admin download it.
    let path = format!("/api/v1/agent/chats/{conv}/attachments?client_msg_id=a-1&name=Rechnung%20M%C3%A4rz.pdf");
    let r = upload(&as_agent, &path, PDF).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let doc = r.body["attachment"]["id"].as_str().unwrap().to_owned();
    let seen =
        visitor.until("document", |f| f["type"] == "entry" && f["entry"]["attachment"]["id"] == doc.as_str()).await;
    assert_eq!(seen.unwrap()["entry"]["attachment"]["name"], "Rechnung März.pdf");
    let d = as_visitor.download(&format!("/api/v1/widget/conversations/{conv}/attachments/{doc}")).await.unwrap();
    assert_served_inertly(&d, "application/pdf", "inline; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf");
    assert_eq!(d.bytes, PDF);
    let d = t.admin.download(&format!("/api/v1/conversations/{conv}/attachments/{doc}")).await.unwrap();
    assert_eq!(d.bytes, PDF);

    // A retry is the same message; the same key with other bytes is refused.
    let before = log_of(&t, &conv).await["entries"].as_array().unwrap().len();
    let again = upload(&as_visitor, &visitor_upload_path(&conv, "f-1", "scan.png"), PNG_1X1).await;
    assert_eq!((again.status.as_u16(), again.body["duplicate"].as_bool()), (200, Some(true)), "{}", again.body);
    assert_eq!(again.body["attachment"]["id"], id.as_str());
    let other = upload(&as_visitor, &visitor_upload_path(&conv, "f-1", "other.pdf"), PDF).await;
    assert_eq!((other.status.as_u16(), other.code()), (409, "client_msg_id_reused"));
    assert_eq!(log_of(&t, &conv).await["entries"].as_array().unwrap().len(), before);
    let d = as_agent.download(&format!("/api/v1/agent/chats/{conv}/attachments/{id}")).await.unwrap();
    assert_eq!(d.bytes, PNG_1X1, "the first file stays");
    server.shutdown().await.unwrap();
}

/// A refused upload: file name, bytes, status, problem code, field error code.
type BadUpload = (&'static str, &'static [u8], u16, &'static str, Option<&'static str>);

#[tokio::test]
async fn bad_uploads_are_refused_with_their_field_and_change_nothing() {
    let server = TestServer::spawn_with(parley_testkit::Db::Sqlite, |l| l.attachment_max_bytes = Some(2048)).await;
    let Chat { t, conv, token, mut agent, .. } = connected_chat(&server, "files-bad", 2).await;
    let as_visitor = Api::new(&server.base).bearer(&token);
    let folder = server.state.config.attachments_dir.clone();
    let before = log_of(&t, &conv).await;

    let cases: [BadUpload; 6] = [
        ("empty.png", b"", 422, "validation_failed", Some("empty")),
        ("page.html", b"<html><script>alert(1)</script></html>", 422, "validation_failed", Some("type_not_allowed")),
        (
            "logo.svg",
            b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
            422,
            "validation_failed",
            Some("type_not_allowed"),
        ),
        ("tool.exe", b"MZ\x90\x00\x03", 422, "validation_failed", Some("type_not_allowed")),
        ("big.pdf", &[b'%'; 4096], 413, "payload_too_large", Some("too_large")),
        ("fine.png", PNG_1X1, 422, "validation_failed", Some("invalid_client_msg_id")),
    ];
    for (i, (name, bytes, status, code, field_code)) in cases.into_iter().enumerate() {
        let id = if name == "fine.png" { "has space".replace(' ', "%20") } else { format!("bad-{i}") };
        let r = upload(&as_visitor, &visitor_upload_path(&conv, &id, name), bytes).await;
        assert_eq!((r.status.as_u16(), r.code()), (status, code), "{name}: {}", r.body);
        assert_eq!(r.body["errors"][0]["code"].as_str(), field_code, "{name}");
    }
    let r =
        upload(&as_visitor, &format!("/api/v1/widget/conversations/{conv}/attachments?client_msg_id=x"), PNG_1X1).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_query"), "{}", r.body);

    // Only the agent who holds the chat sends files in it, and only while it is connected.
    let other = Api::new(&server.base).cookie(&t.login(&server.base, 1).await.unwrap());
    let path = format!("/api/v1/agent/chats/{conv}/attachments?client_msg_id=o-1&name=a.png");
    assert_eq!(upload(&other, &path, PNG_1X1).await.status, 404);
    agent.send(&serde_json::json!({"type": "end", "conversation_id": conv})).await.unwrap();
    agent.until("ended", |f| f["entry"]["event"]["type"] == "ended").await.unwrap();
    let ended = upload(&as_visitor, &visitor_upload_path(&conv, "late", "a.png"), PNG_1X1).await;
    assert_eq!((ended.status.as_u16(), ended.code()), (409, "conversation_ended"));

    let after = log_of(&t, &conv).await;
    let files: Vec<&Value> =
        after["entries"].as_array().unwrap().iter().filter(|e| !e["attachment"].is_null()).collect();
    assert!(files.is_empty(), "no file entry: {files:?}");
    assert_eq!(
        after["entries"].as_array().unwrap().len(),
        before["entries"].as_array().unwrap().len() + 1,
        "only `ended`"
    );
    assert_eq!(files_in(&folder), 0, "nothing left in {}", folder.display());
    let missing =
        as_visitor.download(&format!("/api/v1/widget/conversations/{conv}/attachments/{}", uuid::Uuid::nil())).await;
    assert_eq!(missing.unwrap().status, 404);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn files_are_kept_on_postgres_too() {
    let Some(db) = crate::postgres() else { return };
    let server = TestServer::spawn_with(db, |_| {}).await;
    let t = fixtures::tenant(&server.base, "files-pg", 1).await.unwrap();
    let (conv, token) = t.start_chat(&server.base, "Pat", None).await.unwrap();
    let as_visitor = Api::new(&server.base).bearer(&token);
    let r = upload(&as_visitor, &visitor_upload_path(&conv, "f-1", "notes.txt"), "Order 42\n".as_bytes()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["attachment"]["content_type"], "text/plain; charset=utf-8");
    let id = r.body["attachment"]["id"].as_str().unwrap();
    let d = as_visitor.download(&format!("/api/v1/widget/conversations/{conv}/attachments/{id}")).await.unwrap();
    assert_served_inertly(&d, "text/plain; charset=utf-8", "attachment; filename*=UTF-8''notes.txt");
    assert_eq!(d.bytes, b"Order 42\n");
    server.shutdown().await.unwrap();
}

/// JS: whether a picture in `log` has loaded (its bytes arrived and decoded).
fn picture_loaded(log: &str) -> String {
    format!(
        "Array.from(document.querySelectorAll({log:?} + ' a.file-image img')).some(i => i.complete && i.naturalWidth > 0)"
    )
}

#[tokio::test]
async fn both_pages_send_show_and_open_files_and_names_stay_text() {
    if !crate::support::browser_available() {
        return;
    }
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "files-ui", 1).await.unwrap();
    let driver = parley_testkit::webdriver::Chromedriver::start().await.unwrap();
    let (agent, visitor) = crate::support::connected_pages(&driver, &server, &t).await;
    let dir = tempfile::tempdir().unwrap();
    let picture = dir.path().join("receipt.png");
    std::fs::write(&picture, PNG_1X1).unwrap();
    let document = dir.path().join("<img src=x onerror=window.pwned=1>.pdf");
    std::fs::write(&document, PDF).unwrap();

    // The customer attaches a picture: both pages show it.
    visitor.find("#file").await.unwrap().send_keys(picture.to_str().unwrap()).await.unwrap();
    agent.wait_for(&picture_loaded("#pane-chat .log"), 10_000).await.unwrap();
    visitor.wait_for(&picture_loaded("#log"), 10_000).await.unwrap();

    // The agent attaches a document whose name is markup: it stays text, and it opens.
    agent.find("#pane-chat .file-input").await.unwrap().send_keys(document.to_str().unwrap()).await.unwrap();
    let chip = "#log a.file-doc";
    visitor.wait_for(&format!("!!document.querySelector({chip:?})"), 10_000).await.unwrap();
    let name_js = format!("return document.querySelector({chip:?} + ' .file-name').textContent;");
    let name = visitor.execute(&name_js, vec![]).await.unwrap();
    assert_eq!(name, "<img src=x onerror=window.pwned=1>.pdf");
    visitor.find(chip).await.unwrap().click().await.unwrap();
    visitor.wait_for(&format!("document.querySelector({chip:?}).href.startsWith('blob:')"), 10_000).await.unwrap();
    for b in [&agent, &visitor] {
        let clean = "return window.pwned === undefined && !document.querySelector('.file-doc img, .file-name *');";
        assert_eq!(b.execute(clean, vec![]).await.unwrap(), true);
    }
    crate::support::screenshot(&visitor, "widget-files-desktop").await;
    crate::support::screenshot(&agent, "workspace-files-desktop").await;

    // After a reload the widget shows the picture again, fetched with its token.
    visitor.refresh().await.unwrap();
    visitor.wait_for(&picture_loaded("#log"), 10_000).await.unwrap();
    visitor.wait_for(&format!("!!document.querySelector({chip:?})"), 10_000).await.unwrap();
    agent.quit().await.unwrap();
    visitor.quit().await.unwrap();
    server.shutdown().await.unwrap();
}
