//! How message text is shown in the real pages (headless Chromium): http(s) addresses become
//! links that open in a new tab without referrer or opener, anything else stays text, and no
//! markup a sender types ever becomes HTML.

use crate::support::{browser_available, connected_pages};
use parley_testkit::webdriver::{Browser, Chromedriver};
use parley_testkit::{TestServer, fixtures};
use serde_json::{Value, json};

/// JS: `[text, href, target, rel]` of every link in the last message of `log`, and that
/// message's text.
fn links_of_last(log: &str) -> String {
    format!(
        "const li = Array.from(document.querySelectorAll({log:?} + ' li[data-seq]')).pop(); \
         const p = li.querySelector('.text'); \
         return [p.textContent, Array.from(p.querySelectorAll('a')).map(a => \
           [a.textContent, a.getAttribute('href'), a.target, a.rel]), \
           p.querySelectorAll('*:not(a)').length];"
    )
}

async fn last_message(b: &Browser, log: &str, text: &str) -> Value {
    b.wait_for_text(log, text).await.unwrap();
    b.execute(&links_of_last(log), vec![]).await.unwrap()
}

#[tokio::test]
async fn addresses_become_safe_links_and_everything_else_stays_text() {
    if !browser_available() {
        return;
    }
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "links-ui", 1).await.unwrap();
    let driver = Chromedriver::start().await.unwrap();
    let (agent, visitor) = connected_pages(&driver, &server, &t).await;

    let text = "Track it at https://shop.example.com/track?id=7&x=1. Help (see www.example.org/help) \
                or javascript:alert(1) <a href=\"javascript:alert(2)\">here</a>";
    agent.find("#agent-composer").await.unwrap().send_keys(text).await.unwrap();
    agent.find("#pane-chat .send").await.unwrap().click().await.unwrap();
    let rel = "noopener noreferrer nofollow";
    let expected = json!([
        text,
        [
            ["https://shop.example.com/track?id=7&x=1", "https://shop.example.com/track?id=7&x=1", "_blank", rel],
            ["www.example.org/help", "https://www.example.org/help", "_blank", rel]
        ],
        0
    ]);
    assert_eq!(last_message(&visitor, "#log", "javascript:alert(1)").await, expected, "the widget");
    assert_eq!(last_message(&agent, "#pane-chat .log", "javascript:alert(1)").await, expected, "the workspace");

    // The customer's links reach the agent the same way; a scheme other than http(s) never links.
    let text = "My invoice: http://billing.example.net/inv/42 — and data:text/html,<b>x</b>";
    visitor.find("#composer").await.unwrap().send_keys(text).await.unwrap();
    visitor.find("#send").await.unwrap().click().await.unwrap();
    let got = last_message(&agent, "#pane-chat .log", "data:text/html").await;
    assert_eq!(
        got,
        json!([text, [["http://billing.example.net/inv/42", "http://billing.example.net/inv/42", "_blank", rel]], 0])
    );
    for b in [&agent, &visitor] {
        assert_eq!(
            b.execute("return typeof window.alert === 'function' && !window.pwned;", vec![]).await.unwrap(),
            true
        );
    }
    agent.quit().await.unwrap();
    visitor.quit().await.unwrap();
    server.shutdown().await.unwrap();
}
