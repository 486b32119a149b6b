//! The routing controls of the real pages in headless Chromium against a real server: offer
//! countdowns, the after-chat work and RONA banners and the presence selector in the agent
//! workspace, and the queue position in the visitor widget.
//!
//! The pages draw countdowns with the browser's clock (the real one). Each test first moves the
//! server's injected clock up to it, as NTP-synced machines agree; after that the server's time
//! still moves only when a test advances it, and nothing here sleeps.

use crate::support::{
    align_clock, assert_no_page_errors, browser_available, choose_presence, gone, js, screenshot, shown, sign_in,
    text_of,
};
use parley_testkit::host::HostPage;
use parley_testkit::webdriver::Chromedriver;
use parley_testkit::{Api, TestServer, fixtures};
use serde_json::{Value, json};

async fn with_routing(t: &fixtures::Tenant, routing: Value) {
    let r = t
        .admin
        .send("PATCH", &format!("/api/v1/services/{}", t.service_id), &json!({"routing": routing}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Seconds in an `m:ss` countdown.
fn clock_secs(text: &str) -> u32 {
    let (m, s) = text.split_once(':').unwrap();
    m.parse::<u32>().unwrap() * 60 + s.parse::<u32>().unwrap()
}

#[tokio::test]
async fn an_offer_counts_down_and_disappears_when_its_deadline_passes() {
    if !browser_available() {
        return;
    }
    let server = TestServer::sqlite().await;
    align_clock(&server);
    let t = fixtures::tenant(&server.base, "countdown", 1).await.unwrap();
    // A long re-offer wait: the missed chat does not ring the lone agent again at once.
    with_routing(&t, json!({"rona_secs": 20, "reoffer_secs": 3600})).await;
    // The service's system messages give the agent a line with each offer.
    let texts = json!({"name": "Texts", "scope": "service",
        "texts": [{"event": "user.incoming", "text": "<b>$(Customer.DisplayName)</b> waits"}]});
    let item = t.admin.post("/api/v1/system-messages", &texts).await.unwrap();
    let link = json!({"system_messages_id": item.body["id"]});
    let r = t.admin.send("PATCH", &format!("/api/v1/services/{}", t.service_id), &link).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let driver = Chromedriver::start().await.unwrap();
    let agent = driver.new_session(1280, 800).await.unwrap();
    sign_in(&agent, &server, &t, 0).await;

    align_clock(&server);
    let (conv, _) = t.start_chat(&server.base, "Olga", Some("Is my parcel lost?")).await.unwrap();
    let offer = format!("#offers .offer[data-conversation-id='{conv}']");
    agent.wait_for_text(&offer, "Is my parcel lost?").await.unwrap();
    // Shown as text, never as markup.
    agent.wait_for_text(&format!("{offer} .offer-note"), "<b>Olga</b> waits").await.unwrap();
    let count_bold = format!("return document.querySelectorAll({}).length", js(&format!("{offer} b")));
    assert_eq!(agent.execute(&count_bold, vec![]).await.unwrap(), json!(0));
    agent.wait_for_text("#announcer", "New chat from Olga in Support").await.unwrap();

    // A countdown of at most the 20 s the service allows, which goes down by itself.
    let countdown = text_of(&format!("{offer} .offer-countdown"));
    let first = agent
        .wait_for(
            &format!("(() => {{ const m = /^(\\d+) s left$/.exec({countdown}); return m ? m[0] : false; }})()"),
            5_000,
        )
        .await
        .unwrap();
    let first = first.as_str().unwrap().to_owned();
    let secs: u32 = first.trim_end_matches(" s left").parse().unwrap();
    assert!((1..=20).contains(&secs), "{first}");
    agent.wait_for(&format!("{countdown} !== {}", js(&first)), 5_000).await.unwrap();
    let timer = agent.find(&format!("{offer} .offer-countdown")).await.unwrap();
    assert_eq!(timer.attr("role").await.unwrap().as_deref(), Some("timer"), "ticks are not read out");
    assert!(agent.find(&format!("{offer} .accept")).await.unwrap().is_displayed().await.unwrap());
    assert!(agent.find(&format!("{offer} .decline")).await.unwrap().is_displayed().await.unwrap());
    screenshot(&agent, "workspace-offer-countdown-desktop").await;

    // The server's deadline passes: the offer is withdrawn and leaves the page.
    server.clock.advance(time::Duration::seconds(20));
    agent.wait_for(&format!("document.querySelector({}) === null", js(&offer)), 10_000).await.unwrap();
    agent.wait_for(&shown("#offers-empty"), 5_000).await.unwrap();
    let me = Api::new(&server.base).cookie(&t.login(&server.base, 0).await.unwrap());
    assert_eq!(me.get("/api/v1/agent/state").await.unwrap().body["offers"], json!([]), "the server withdrew it");

    assert_no_page_errors(&agent).await;
    agent.quit().await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn after_chat_work_shows_a_banner_with_end_now() {
    if !browser_available() {
        return;
    }
    let server = TestServer::sqlite().await;
    align_clock(&server);
    let t = fixtures::tenant(&server.base, "wrapup", 1).await.unwrap();
    with_routing(&t, json!({"acw_secs": 120, "acw_max_extensions": 1})).await;
    let driver = Chromedriver::start().await.unwrap();
    let agent = driver.new_session(1280, 800).await.unwrap();
    sign_in(&agent, &server, &t, 0).await;
    assert_eq!(agent.wait_for(&gone("#acw-banner"), 1_000).await.unwrap(), true);

    // A chat, accepted and ended in the page.
    align_clock(&server);
    let (first, _) = t.start_chat(&server.base, "Una", Some("Can I change my address?")).await.unwrap();
    let offer = format!("#offers .offer[data-conversation-id='{first}']");
    agent.wait_for_text(&offer, "Can I change my address?").await.unwrap();
    agent.find(&format!("{offer} .accept")).await.unwrap().click().await.unwrap();
    agent.wait_for_text("#chat-pane .log", "Agent 1 joined").await.unwrap();
    agent.find("#chat-pane .end").await.unwrap().click().await.unwrap();

    // After-chat work: a banner counting down from two minutes.
    agent.wait_for(&shown("#acw-banner"), 10_000).await.unwrap();
    agent.wait_for_text("#announcer", "After-chat work started").await.unwrap();
    let remaining = agent
        .wait_for(
            &format!(
                "(() => {{ const t = {}; return /^[12]:\\d\\d$/.test(t) ? t : false; }})()",
                text_of("#acw-remaining")
            ),
            5_000,
        )
        .await
        .unwrap();
    let remaining = remaining.as_str().unwrap().to_owned();
    assert!((90..=120).contains(&clock_secs(&remaining)), "{remaining}");
    assert_eq!(agent.wait_for(&gone("#rona-banner"), 1_000).await.unwrap(), true);

    // One extension is allowed; a second is refused, politely and in the banner.
    agent.find("#acw-extend").await.unwrap().click().await.unwrap();
    agent.wait_for_text("#announcer", "After-chat work extended").await.unwrap();
    agent.wait_for("!document.querySelector('#acw-extend').hasAttribute('aria-disabled')", 5_000).await.unwrap();
    agent.find("#acw-extend").await.unwrap().click().await.unwrap();
    agent.wait_for_text("#acw-message", "You have used every extension").await.unwrap();
    assert_eq!(agent.wait_for(&shown("#acw-banner"), 1_000).await.unwrap(), true);
    screenshot(&agent, "workspace-acw-desktop").await;
    agent.set_window_size(390, 844).await.unwrap();
    assert_eq!(agent.wait_for(&shown("#acw-end"), 5_000).await.unwrap(), true);
    screenshot(&agent, "workspace-acw-mobile").await;
    agent.set_window_size(1280, 800).await.unwrap();

    // The next customer waits while the agent wraps up.
    let (second, _) = t.start_chat(&server.base, "Vic", Some("Do you ship to Norway?")).await.unwrap();
    let me = Api::new(&server.base).cookie(&t.login(&server.base, 0).await.unwrap());
    assert_eq!(me.get("/api/v1/agent/state").await.unwrap().body["offers"], json!([]), "no offer during wrap-up");

    // End now: the banner goes and the waiting chat is offered.
    agent.find("#acw-end").await.unwrap().click().await.unwrap();
    agent.wait_for(&gone("#acw-banner"), 10_000).await.unwrap();
    agent
        .wait_for_text(&format!("#offers .offer[data-conversation-id='{second}']"), "Do you ship to Norway?")
        .await
        .unwrap();
    agent.wait_for_text("#announcer", "New chat from Vic").await.unwrap();

    assert_no_page_errors(&agent).await;
    agent.quit().await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_missed_offer_shows_the_rona_banner_until_the_agent_is_ready() {
    if !browser_available() {
        return;
    }
    let server = TestServer::sqlite().await;
    align_clock(&server);
    let t = fixtures::tenant(&server.base, "missed", 1).await.unwrap();
    with_routing(&t, json!({"rona_secs": 15, "persistent_rona": true})).await;
    let driver = Chromedriver::start().await.unwrap();
    let agent = driver.new_session(1280, 800).await.unwrap();
    sign_in(&agent, &server, &t, 0).await;

    align_clock(&server);
    let (missed, _) = t.start_chat(&server.base, "Ada", None).await.unwrap();
    agent.wait_for_text(&format!("#offers .offer[data-conversation-id='{missed}']"), "Ada").await.unwrap();
    server.clock.advance(time::Duration::seconds(15));
    agent.wait_for(&shown("#rona-banner"), 10_000).await.unwrap();
    agent.wait_for_text("#rona-banner", "You missed an offer; you get no new chats until you are ready").await.unwrap();
    agent.wait_for(&gone("#offers .offer"), 5_000).await.unwrap();
    screenshot(&agent, "workspace-rona-desktop").await;

    // Flagged: the next chat waits.
    let (next, _) = t.start_chat(&server.base, "Bo", Some("Hello?")).await.unwrap();
    let me = Api::new(&server.base).cookie(&t.login(&server.base, 0).await.unwrap());
    assert_eq!(me.get("/api/v1/agent/state").await.unwrap().body["offers"], json!([]));

    // Ready again, by keyboard: the banner goes and the chat they missed comes back first (it
    // is ahead, and nobody else can take it), then, once that one is done, the next.
    agent.execute("document.querySelector('#rona-reset').focus();", vec![]).await.unwrap();
    agent.find("#rona-reset").await.unwrap().send_keys(parley_testkit::webdriver::keys::ENTER).await.unwrap();
    agent.wait_for(&gone("#rona-banner"), 10_000).await.unwrap();
    assert_eq!(
        agent.execute("return document.activeElement.id;", vec![]).await.unwrap(),
        "offers-title",
        "the focus stays near the offers, not lost on <body>"
    );
    agent.wait_for_text(&format!("#offers .offer[data-conversation-id='{missed}']"), "Ada").await.unwrap();
    let r = me.post(&format!("/api/v1/agent/offers/{missed}/accept"), &json!({})).await.unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    let r = me.post(&format!("/api/v1/agent/chats/{missed}/end"), &json!({})).await.unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    agent.wait_for_text(&format!("#offers .offer[data-conversation-id='{next}']"), "Hello?").await.unwrap();

    assert_no_page_errors(&agent).await;
    agent.quit().await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_presence_selector_follows_changes_from_another_tab() {
    if !browser_available() {
        return;
    }
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "tabs", 1).await.unwrap();
    let driver = Chromedriver::start().await.unwrap();
    let agent = driver.new_session(1280, 800).await.unwrap();
    sign_in(&agent, &server, &t, 0).await;

    // The same agent in another tab (a second socket) goes Busy, then Away.
    let (mut other, hello) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    assert_eq!(hello["presence"], "available");
    for presence in ["busy", "away"] {
        other.send(&json!({"type": "presence", "presence": presence})).await.unwrap();
        agent
            .wait_for(
                &format!(
                    "document.querySelector('#presence').value === '{presence}' && \
                     document.querySelector('.presence').dataset.presence === '{presence}'"
                ),
                10_000,
            )
            .await
            .unwrap();
    }
    // And the page's own choice reaches the other tab.
    choose_presence(&agent, "available").await;
    other.until("available", |f| f["type"] == "presence" && f["presence"] == "available").await.unwrap();

    assert_no_page_errors(&agent).await;
    agent.quit().await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_widget_shows_the_queue_position_and_wait() {
    if !browser_available() {
        return;
    }
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "waiting", 1).await.unwrap();
    let host = HostPage::serve(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Customer site</title></head><body><h1>Acme shop</h1>\
         <script src=\"{}/widget.js\" data-contact-id=\"{}\" data-widget-key=\"{}\" async></script></body></html>",
        server.base, t.contact_id, t.widget_key
    ))
    .await
    .unwrap();

    // Nobody is online; someone is already waiting.
    let (ahead, _) = t.start_chat(&server.base, "Ann", Some("First in line")).await.unwrap();

    let driver = Chromedriver::start().await.unwrap();
    let visitor = driver.new_session(1280, 800).await.unwrap();
    visitor.goto(&host.url).await.unwrap();
    visitor.find("#parley-launcher").await.unwrap().click().await.unwrap();
    let frame = visitor.find("#parley-widget-frame").await.unwrap();
    visitor.switch_to_frame(&frame).await.unwrap();
    visitor.find("#display_name").await.unwrap().send_keys("Ben").await.unwrap();
    visitor.find("#email").await.unwrap().send_keys("ben@example.com").await.unwrap();
    visitor.find("#first_message").await.unwrap().send_keys("Second in line").await.unwrap();
    visitor.find("#privacy_consent").await.unwrap().click().await.unwrap();
    visitor.find("#start").await.unwrap().click().await.unwrap();

    // Second in the queue, and no estimate while nobody staffs the service.
    visitor.wait_for_text("#queue", "You are number 2 in the queue").await.unwrap();
    let queue = visitor.find("#queue").await.unwrap();
    assert_eq!(queue.attr("role").await.unwrap().as_deref(), Some("status"));
    assert_eq!(queue.attr("aria-live").await.unwrap().as_deref(), Some("polite"));
    assert_eq!(visitor.execute(&format!("return {};", text_of("#queue .queue-wait")), vec![]).await.unwrap(), "");
    visitor.wait_for_text("#log", fixtures::WELCOME).await.unwrap();
    screenshot(&visitor, "widget-queue-desktop").await;
    visitor.set_window_size(390, 844).await.unwrap();
    assert_eq!(visitor.wait_for(&shown("#queue .queue-position"), 5_000).await.unwrap(), true);
    screenshot(&visitor, "widget-queue-mobile").await;

    // An agent takes the first chat: this one moves up and gets an estimate.
    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let offer = agent.until("offer", |f| f["type"] == "offer").await.unwrap();
    assert_eq!(offer["offer"]["conversation_id"], ahead.as_str());
    agent.send(&json!({"type": "accept", "conversation_id": ahead})).await.unwrap();
    agent.until("chat", |f| f["type"] == "chat").await.unwrap();
    visitor.wait_for_text("#queue", "You are number 1 in the queue").await.unwrap();
    let wait = visitor
        .wait_for(
            &format!(
                "(() => {{ const t = {}; return /^Estimated wait: (about [1-9][0-9]* min|less than a minute)$/.test(t) ? t : false; }})()",
                text_of("#queue .queue-wait")
            ),
            10_000,
        )
        .await
        .unwrap();
    eprintln!("estimate shown: {wait}");
    screenshot(&visitor, "widget-queue-next-mobile").await;

    // Then this chat: connected, the queue status goes.
    let offer = agent.until("offer", |f| f["type"] == "offer").await.unwrap();
    let mine = offer["offer"]["conversation_id"].as_str().unwrap().to_owned();
    assert_ne!(mine, ahead);
    agent.send(&json!({"type": "accept", "conversation_id": mine})).await.unwrap();
    visitor.wait_for_text("#status", "Connected with Agent 1").await.unwrap();
    visitor.wait_for(&format!("{} === ''", text_of("#queue")), 5_000).await.unwrap();
    assert_eq!(visitor.wait_for(&gone("#queue .queue-position"), 1_000).await.unwrap(), true);

    assert_no_page_errors(&visitor).await;
    visitor.quit().await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_offer_and_the_chat_show_what_the_workflow_collected_as_text() {
    if !browser_available() {
        return;
    }
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "details-ui", 1).await.unwrap();
    let r = t.admin.post("/api/v1/parameters", &json!({"id": "Order", "name": "Order number"})).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let def = json!({"start": "accept", "nodes": [
        {"id": "accept", "activity": {"kind": "accept"}, "exits": {"next": "save"}},
        {"id": "save", "activity": {"kind": "save_to_parameter", "parameter": "Order",
         "value": "$(Task.InitialMessage)"}, "exits": {"next": "queue"}},
        {"id": "queue", "activity": {"kind": "queue_task"}}
    ]});
    t.use_workflow("Orders", &def).await.unwrap();

    let driver = Chromedriver::start().await.unwrap();
    let agent = driver.new_session(1280, 800).await.unwrap();
    sign_in(&agent, &server, &t, 0).await;
    let (conv, _) = t.start_chat(&server.base, "Otto", Some("<i>1042</i>")).await.unwrap();
    let offer = format!("#offers .offer[data-conversation-id='{conv}']");
    agent.wait_for_text(&format!("{offer} .offer-details"), "Order number").await.unwrap();
    agent.wait_for_text(&format!("{offer} .offer-details dd"), "<i>1042</i>").await.unwrap();
    agent.find(&format!("{offer} .accept")).await.unwrap().click().await.unwrap();
    agent.wait_for_text("#pane-chat .details dd", "<i>1042</i>").await.unwrap();
    agent.wait_for_text("#pane-chat .details dt", "Order number").await.unwrap();
    let italics = agent.execute("return document.querySelectorAll('.details i').length;", vec![]).await.unwrap();
    assert_eq!(italics, json!(0), "values stay text");
    screenshot(&agent, "workspace-details-desktop").await;
    assert_no_page_errors(&agent).await;
    agent.quit().await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_offer_rings_and_raises_a_notification_while_the_workspace_is_in_the_background() {
    if !browser_available() {
        return;
    }
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "alerts", 1).await.unwrap();
    let driver = Chromedriver::start().await.unwrap();
    let agent = driver.new_session(1280, 800).await.unwrap();
    sign_in(&agent, &server, &t, 0).await;
    // A click lets the page play sound (browsers allow audio only after a gesture).
    agent.find("#offers-title").await.unwrap().click().await.unwrap();
    // Listen to the speaker and the notification centre, with permission given and the tab hidden.
    agent
        .execute(
            "window.__tones = 0; const make = AudioContext.prototype.createOscillator; \
             AudioContext.prototype.createOscillator = function () { window.__tones += 1; return make.call(this); }; \
             window.__notes = []; \
             window.Notification = function (title, opts) { window.__notes.push([title, opts && opts.body]); this.close = function () {}; }; \
             window.Notification.permission = 'granted'; \
             Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });",
            vec![],
        )
        .await
        .unwrap();
    t.start_chat(&server.base, "Olga", Some("Is my parcel lost?")).await.unwrap();
    agent.wait_for_text("#offers .offer", "Is my parcel lost?").await.unwrap();
    agent.wait_for("window.__tones > 0", 5_000).await.unwrap();
    let notes = agent.execute("return window.__notes;", vec![]).await.unwrap();
    assert_eq!(notes, json!([["New chat: Support", "Olga: Is my parcel lost?"]]));
    assert_no_page_errors(&agent).await;
    agent.quit().await.unwrap();
    server.shutdown().await.unwrap();
}
