//! The widget in the visitor's language, in headless Chromium: the snippet's `data-lang` (or the
//! browser's language) translates the launcher, the form, its errors and the chat's statuses,
//! and the same language picks the service's system messages.

use crate::support::{browser_available, screenshot, text_of};
use parley_testkit::host::HostPage;
use parley_testkit::webdriver::Chromedriver;
use parley_testkit::{TestServer, fixtures};
use serde_json::json;

#[tokio::test]
async fn a_german_snippet_speaks_german_from_the_launcher_to_the_system_messages() {
    if !browser_available() {
        return;
    }
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "deutsch", 1).await.unwrap();
    let texts = json!({"name": "Texte", "scope": "service", "texts": [
        {"event": "customer.connected", "text": "You are chatting with $(User.FirstName)."},
        {"event": "customer.connected", "language": "de", "text": "Sie chatten jetzt mit $(User.FirstName)."}
    ]});
    let item = t.admin.post("/api/v1/system-messages", &texts).await.unwrap();
    let link = json!({"system_messages_id": item.body["id"]});
    let r = t.admin.send("PATCH", &format!("/api/v1/services/{}", t.service_id), &link).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let host = HostPage::serve(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Shop</title></head><body><h1>Laden</h1>\
         <script src=\"{}/widget.js\" data-contact-id=\"{}\" data-widget-key=\"{}\" data-lang=\"de\" async></script>\
         </body></html>",
        server.base, t.contact_id, t.widget_key
    ))
    .await
    .unwrap();

    let driver = Chromedriver::start().await.unwrap();
    let visitor = driver.new_session(390, 844).await.unwrap();
    visitor.goto(&host.url).await.unwrap();
    visitor.wait_for(&format!("{} === 'Chatten Sie mit uns'", text_of("#parley-launcher")), 10_000).await.unwrap();
    let launcher = visitor.find("#parley-launcher").await.unwrap();
    assert_eq!(launcher.attr("aria-label").await.unwrap().as_deref(), Some("Chatten Sie mit uns"));
    launcher.click().await.unwrap();
    let frame = visitor.find("#parley-widget-frame").await.unwrap();
    visitor.switch_to_frame(&frame).await.unwrap();

    // Every language the widget ships is complete.
    let missing = visitor.execute("return ParleyI18n.missing();", vec![]).await.unwrap();
    assert_eq!(missing, json!([]));
    assert_eq!(
        visitor.execute("return ParleyI18n.languages;", vec![]).await.unwrap(),
        json!(["en", "de", "fr", "es", "it"])
    );
    assert_eq!(visitor.execute("return document.documentElement.lang;", vec![]).await.unwrap(), "de");
    assert_eq!(visitor.find("#start").await.unwrap().text().await.unwrap(), "Chat starten");
    let composer = visitor.find("#composer").await.unwrap();
    assert_eq!(composer.attr("placeholder").await.unwrap().as_deref(), Some("Nachricht eingeben…"));

    // The form's own checks speak German too.
    visitor.find("#start").await.unwrap().click().await.unwrap();
    visitor.wait_for_text("#display_name-error", "Bitte geben Sie Ihren Namen ein.").await.unwrap();
    visitor.wait_for_text("#form-error", "Bitte prüfen Sie die markierten Felder.").await.unwrap();
    screenshot(&visitor, "widget-german-form-mobile").await;

    visitor.find("#display_name").await.unwrap().send_keys("Jana").await.unwrap();
    visitor.find("#email").await.unwrap().send_keys("jana@example.com").await.unwrap();
    visitor.find("#privacy_consent").await.unwrap().click().await.unwrap();
    visitor.find("#start").await.unwrap().click().await.unwrap();
    visitor.wait_for_text("#status", "Warten auf einen Mitarbeiter…").await.unwrap();
    visitor.wait_for_text("#queue", "Sie sind Nummer 1 in der Warteschlange").await.unwrap();

    // The agent accepts: the system message comes in German, as the statuses.
    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let offer = agent.until("offer", |f| f["type"] == "offer").await.unwrap();
    let conv = offer["offer"]["conversation_id"].as_str().unwrap().to_owned();
    agent.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    visitor.wait_for_text("#status", "Verbunden mit Agent 1").await.unwrap();
    visitor.wait_for_text("#log", "Sie chatten jetzt mit Agent.").await.unwrap();
    visitor.wait_for_text("#log", "Agent 1 ist beigetreten").await.unwrap();
    let stored = t.admin.get(&format!("/api/v1/conversations/{conv}")).await.unwrap();
    assert_eq!(stored.body["customer"]["language"], "de");
    screenshot(&visitor, "widget-german-chat-mobile").await;
    visitor.quit().await.unwrap();
    server.shutdown().await.unwrap();
}
