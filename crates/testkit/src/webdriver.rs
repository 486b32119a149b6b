//! A minimal W3C WebDriver client for end-to-end tests in headless Chromium.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use parley_testkit::webdriver::Chromedriver;
//! if !Chromedriver::available() {
//!     return Ok(()); // skip: no browser on this machine
//! }
//! let driver = Chromedriver::start().await?;
//! let browser = driver.new_session(1280, 800).await?;
//! browser.goto("http://127.0.0.1:8080/agent/login").await?;
//! browser.find("#email").await?.send_keys("ada@example.com").await?;
//! browser.wait_for_text("#login-error", "Wrong").await?;
//! # Ok(())
//! # }
//! ```
//!
//! Waiting never sleeps in Rust: [`Browser::wait_for`] runs an asynchronous script that resolves
//! as soon as a JavaScript condition holds (checked on DOM mutations, animation frames and a
//! short interval). Element lookups use WebDriver's implicit wait (10 s), so a [`Browser::find`]
//! for an element that is about to appear just works; note that [`Browser::find_all`] also waits
//! that long before returning an empty list.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The W3C key under which an element reference is serialised.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Default time a lookup waits for its element to appear.
const IMPLICIT_WAIT_MS: u64 = 10_000;
/// Default limit for asynchronous scripts; [`Browser::wait_for`] raises it when needed.
const SCRIPT_TIMEOUT_MS: u64 = 60_000;
/// How long chromedriver may take to print its readiness line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// WebDriver codes for special keys, to embed in [`Element::send_keys`] text.
pub mod keys {
    pub const ENTER: &str = "\u{E007}";
    pub const SHIFT: &str = "\u{E008}";
    pub const TAB: &str = "\u{E004}";
    pub const ESCAPE: &str = "\u{E00C}";
    pub const BACKSPACE: &str = "\u{E003}";
}

fn existing_file(p: impl Into<PathBuf>) -> Option<PathBuf> {
    let p = p.into();
    p.is_file().then_some(p)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| existing_file(dir.join(name)))
}

/// `$PARLEY_CHROMEDRIVER` (when set, it is the only candidate), `/usr/bin/chromedriver`, `PATH`.
fn chromedriver_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PARLEY_CHROMEDRIVER") {
        return existing_file(p);
    }
    existing_file("/usr/bin/chromedriver").or_else(|| find_on_path("chromedriver"))
}

/// `$PARLEY_CHROMIUM` (when set, it is the only candidate), `/usr/bin/chromium`, `PATH`.
fn chromium_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PARLEY_CHROMIUM") {
        return existing_file(p);
    }
    existing_file("/usr/bin/chromium").or_else(|| find_on_path("chromium"))
}

/// The `POST /session` body: headless Chromium with a private profile and a fixed window size.
fn session_capabilities(chromium: &Path, profile: &Path, width: u32, height: u32) -> Value {
    let args = vec![
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        format!("--user-data-dir={}", profile.display()),
        format!("--window-size={width},{height}"),
    ];
    json!({
        "capabilities": {
            "alwaysMatch": {
                "browserName": "chrome",
                "pageLoadStrategy": "normal",
                // Lets Browser::browser_log read console messages and uncaught errors.
                "goog:loggingPrefs": { "browser": "ALL" },
                "timeouts": {
                    "implicit": IMPLICIT_WAIT_MS,
                    "script": SCRIPT_TIMEOUT_MS,
                    "pageLoad": 30_000,
                },
                "goog:chromeOptions": {
                    "binary": chromium.display().to_string(),
                    "args": args,
                },
            }
        }
    })
}

/// Turns a WebDriver HTTP response into its `value`, or an error naming the command.
fn parse_response(what: &str, status: u16, body: &str) -> Result<Value> {
    let parsed: Value = serde_json::from_str(body).map_err(|e| {
        let snippet: String = body.chars().take(200).collect();
        anyhow!("WebDriver {what}: HTTP {status} with a non-JSON body ({e}): {snippet}")
    })?;
    let value = parsed.get("value").cloned().unwrap_or(Value::Null);
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        let message = value.get("message").and_then(Value::as_str).unwrap_or("");
        bail!("WebDriver {what} failed: {error}: {message}");
    }
    if !(200..300).contains(&status) {
        bail!("WebDriver {what} failed: HTTP {status}: {body}");
    }
    Ok(value)
}

/// Decodes standard base64 (with or without padding, whitespace ignored).
fn decode_base64(input: &str) -> Result<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let clean: Vec<u8> = input.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let data = match clean.iter().position(|&b| b == b'=') {
        Some(pad) => {
            if clean[pad..].iter().any(|&b| b != b'=') || clean.len() - pad > 2 {
                bail!("invalid base64: misplaced padding");
            }
            &clean[..pad]
        }
        None => &clean[..],
    };
    if data.len() % 4 == 1 {
        bail!("invalid base64: bad length");
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    for chunk in data.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            let v = sextet(c).ok_or_else(|| anyhow!("invalid base64 character {:?}", c as char))?;
            acc = (acc << 6) | v;
        }
        // Left-align a short final chunk to 24 bits; it carries chunk.len() - 1 bytes.
        acc <<= 6 * (4 - chunk.len() as u32);
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Ok(out)
}

/// Builds the script behind [`Browser::wait_for`]. The condition is pasted in as code (not
/// `eval`ed), so pages with a strict Content-Security-Policy still run it.
fn wait_script(js_condition: &str) -> String {
    format!(
        r#"const label = arguments[0];
const timeoutMs = arguments[1];
const done = arguments[arguments.length - 1];
const cond = () => ({js_condition}
);
let finished = false;
let lastError = null;
let observer = null;
let timer = null;
let interval = null;
let raf = 0;
const finish = (result) => {{
  if (finished) return;
  finished = true;
  if (observer) observer.disconnect();
  clearTimeout(timer);
  clearInterval(interval);
  cancelAnimationFrame(raf);
  done(result);
}};
const check = () => {{
  if (finished) return true;
  try {{
    const v = cond();
    if (v) {{
      const t = typeof v;
      finish({{ ok: true, value: t === 'string' || t === 'number' || t === 'boolean' ? v : true }});
      return true;
    }}
  }} catch (e) {{
    lastError = String(e);
  }}
  return false;
}};
if (!check()) {{
  observer = new MutationObserver(check);
  observer.observe(document, {{ subtree: true, childList: true, attributes: true, characterData: true }});
  const tick = () => {{ if (!check()) raf = requestAnimationFrame(tick); }};
  raf = requestAnimationFrame(tick);
  // Animation frames pause in hidden documents; a slow interval covers non-DOM conditions.
  interval = setInterval(check, 100);
  timer = setTimeout(() => finish({{ ok: false, error: lastError, label: label }}), timeoutMs);
}}"#
    )
}

/// The condition behind [`Browser::wait_for_text`].
fn text_condition(css: &str, text: &str) -> String {
    let css = Value::String(css.to_owned());
    let text = Value::String(text.to_owned());
    format!("Array.from(document.querySelectorAll({css})).some((e) => (e.textContent || '').includes({text}))")
}

#[derive(Clone, Debug)]
struct Session {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`
    base: String,
}

impl Session {
    async fn cmd(&self, method: Method, path: &str, body: Option<Value>, what: &str) -> Result<Value> {
        request(&self.http, method, &format!("{}{path}", self.base), body, what).await
    }
}

async fn request(http: &reqwest::Client, method: Method, url: &str, body: Option<Value>, what: &str) -> Result<Value> {
    let mut req = http.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.with_context(|| format!("WebDriver {what}: request to {url} failed"))?;
    let status = res.status().as_u16();
    let text = res.text().await.with_context(|| format!("WebDriver {what}: reading the response"))?;
    parse_response(what, status, &text)
}

/// A running `chromedriver`, killed when dropped.
#[derive(Debug)]
pub struct Chromedriver {
    _child: Child,
    url: String,
    chromium: PathBuf,
    http: reqwest::Client,
}

impl Chromedriver {
    /// Whether both chromedriver and Chromium were found (see [`Chromedriver::start`]).
    #[must_use]
    pub fn available() -> bool {
        chromedriver_path().is_some() && chromium_path().is_some()
    }

    /// Starts chromedriver on a free local port and waits until it says it is ready.
    ///
    /// chromedriver comes from `$PARLEY_CHROMEDRIVER`, `/usr/bin/chromedriver` or `PATH`;
    /// Chromium from `$PARLEY_CHROMIUM`, `/usr/bin/chromium` or `PATH`.
    ///
    /// # Errors
    /// Either binary missing, or chromedriver failing to start.
    pub async fn start() -> Result<Self> {
        let driver = chromedriver_path().context("chromedriver not found (set PARLEY_CHROMEDRIVER)")?;
        let chromium = chromium_path().context("Chromium not found (set PARLEY_CHROMIUM)")?;
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").context("picking a free port")?;
            l.local_addr()?.port()
        };
        let mut child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", driver.display()))?;
        let stdout = child.stdout.take().context("chromedriver stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Vec::new();
        let ready = tokio::time::timeout(STARTUP_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                let ok = line.contains("started successfully");
                seen.push(line);
                if ok {
                    return Ok::<bool, std::io::Error>(true);
                }
            }
            Ok(false)
        })
        .await;
        match ready {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => bail!("chromedriver exited before it was ready:\n{}", seen.join("\n")),
            Ok(Err(e)) => bail!("reading chromedriver output: {e}"),
            Err(_) => bail!("chromedriver not ready after {STARTUP_TIMEOUT:?}:\n{}", seen.join("\n")),
        }
        // Keep draining its output so chromedriver never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(180))
            .build()
            .context("building the HTTP client")?;
        Ok(Self { _child: child, url: format!("http://127.0.0.1:{port}"), chromium, http })
    }

    /// The driver's base URL, e.g. `http://127.0.0.1:40123`.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens headless Chromium with a fresh profile, a `width`×`height` window and a viewport of
    /// exactly that many CSS pixels (see [`Browser::set_window_size`]).
    ///
    /// # Errors
    /// The session could not be created (e.g. driver and browser versions disagree).
    pub async fn new_session(&self, width: u32, height: u32) -> Result<Browser> {
        let profile = tempfile::Builder::new().prefix("parley-chromium-").tempdir()?;
        let caps = session_capabilities(&self.chromium, profile.path(), width, height);
        let value =
            request(&self.http, Method::POST, &format!("{}/session", self.url), Some(caps), "new session").await?;
        let id = value
            .get("sessionId")
            .and_then(Value::as_str)
            .context("WebDriver new session: no sessionId in the response")?;
        let session = Session { http: self.http.clone(), base: format!("{}/session/{id}", self.url) };
        // Capabilities set them already; repeat in case the driver ignored the capability.
        session
            .cmd(
                Method::POST,
                "/timeouts",
                Some(json!({"implicit": IMPLICIT_WAIT_MS, "script": SCRIPT_TIMEOUT_MS})),
                "set timeouts",
            )
            .await?;
        let browser = Browser {
            session,
            script_timeout_ms: std::sync::atomic::AtomicU64::new(SCRIPT_TIMEOUT_MS),
            quit: false,
            _profile: profile,
        };
        browser.set_viewport(width, height).await?;
        Ok(browser)
    }
}

/// One browser session. Quit it with [`Browser::quit`]; dropping it tries the same without
/// waiting, and chromedriver's own shutdown cleans up the rest.
#[derive(Debug)]
pub struct Browser {
    session: Session,
    script_timeout_ms: std::sync::atomic::AtomicU64,
    quit: bool,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Navigates to `url` and waits for the page to load.
    ///
    /// # Errors
    /// WebDriver refused or the load failed.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.session.cmd(Method::POST, "/url", Some(json!({ "url": url })), &format!("goto {url}")).await?;
        Ok(())
    }

    /// The first element matching `css` (waiting up to the implicit wait for it to appear).
    ///
    /// # Errors
    /// No such element; the message names the selector.
    pub async fn find(&self, css: &str) -> Result<Element> {
        let v = self
            .session
            .cmd(
                Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
                &format!("find `{css}`"),
            )
            .await?;
        self.element(&v, css)
    }

    /// Every element matching `css`; waits up to the implicit wait if there is none yet.
    ///
    /// # Errors
    /// WebDriver refused the command (e.g. an invalid selector).
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let v = self
            .session
            .cmd(
                Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
                &format!("find all `{css}`"),
            )
            .await?;
        v.as_array()
            .with_context(|| format!("find all `{css}`: not a list"))?
            .iter()
            .map(|e| self.element(e, css))
            .collect()
    }

    fn element(&self, v: &Value, css: &str) -> Result<Element> {
        let id = v
            .get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .with_context(|| format!("find `{css}`: no element reference in {v}"))?;
        Ok(Element { session: self.session.clone(), id: id.to_owned(), selector: css.to_owned() })
    }

    /// Runs `script` as a function body with `args` (`arguments[i]`); returns what it returns.
    ///
    /// # Errors
    /// The script threw, or WebDriver refused.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.session.cmd(Method::POST, "/execute/sync", Some(json!({"script": script, "args": args})), "execute").await
    }

    /// Like [`Browser::execute`], but the script finishes by calling its last argument.
    ///
    /// # Errors
    /// The script threw, timed out, or WebDriver refused.
    pub async fn execute_async(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.session
            .cmd(Method::POST, "/execute/async", Some(json!({"script": script, "args": args})), "execute async")
            .await
    }

    /// Waits until the JavaScript expression `js_condition` is truthy, for at most `timeout_ms`.
    /// Returns the condition's value when it is a string, number or boolean (else `true`).
    ///
    /// # Errors
    /// Timeout (the message quotes the condition and its last exception, if any).
    pub async fn wait_for(&self, js_condition: &str, timeout_ms: u64) -> Result<Value> {
        let needed = timeout_ms.saturating_add(5_000);
        if needed > self.script_timeout_ms.load(std::sync::atomic::Ordering::Relaxed) {
            self.session
                .cmd(Method::POST, "/timeouts", Some(json!({ "script": needed })), "set script timeout")
                .await?;
            self.script_timeout_ms.store(needed, std::sync::atomic::Ordering::Relaxed);
        }
        let res = self
            .execute_async(&wait_script(js_condition), vec![json!(js_condition), json!(timeout_ms)])
            .await
            .with_context(|| format!("waiting for `{js_condition}`"))?;
        if res.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(res.get("value").cloned().unwrap_or(Value::Bool(true)));
        }
        let last = match res.get("error").and_then(Value::as_str) {
            Some(e) => format!(" (last error: {e})"),
            None => String::new(),
        };
        bail!("timed out after {timeout_ms} ms waiting for `{js_condition}`{last}")
    }

    /// Waits (up to 10 s) for an element matching `css` whose text contains `text`.
    ///
    /// # Errors
    /// Timeout.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> Result<()> {
        self.wait_for(&text_condition(css, text), IMPLICIT_WAIT_MS).await.map(|_| ())
    }

    /// Makes the iframe `frame` the context for later commands.
    ///
    /// # Errors
    /// Not a frame, or gone.
    pub async fn switch_to_frame(&self, frame: &Element) -> Result<()> {
        self.session
            .cmd(
                Method::POST,
                "/frame",
                Some(json!({ "id": { ELEMENT_KEY: frame.id } })),
                &format!("switch to frame `{}`", frame.selector),
            )
            .await?;
        Ok(())
    }

    /// Returns to the parent of the current frame.
    ///
    /// # Errors
    /// WebDriver refused.
    pub async fn switch_to_parent(&self) -> Result<()> {
        self.session.cmd(Method::POST, "/frame/parent", Some(json!({})), "switch to parent frame").await?;
        Ok(())
    }

    /// A PNG of the viewport.
    ///
    /// # Errors
    /// WebDriver refused or sent bad data.
    pub async fn screenshot_png(&self) -> Result<Vec<u8>> {
        let v = self.session.cmd(Method::GET, "/screenshot", None, "screenshot").await?;
        decode_base64(v.as_str().context("screenshot: not a string")?)
    }

    /// Resizes the window and makes the viewport exactly `width`×`height` CSS pixels.
    ///
    /// # Errors
    /// WebDriver refused.
    pub async fn set_window_size(&self, width: u32, height: u32) -> Result<()> {
        self.session
            .cmd(Method::POST, "/window/rect", Some(json!({"width": width, "height": height})), "set window size")
            .await?;
        self.set_viewport(width, height).await
    }

    /// Pins the viewport to exactly `width`×`height` CSS pixels. Chromium windows have a
    /// minimum width (about 500 px) and their outer size includes browser UI, so the window size
    /// alone cannot produce a phone-sized viewport; a device-metrics override can.
    async fn set_viewport(&self, width: u32, height: u32) -> Result<()> {
        let params = json!({
            "width": width,
            "height": height,
            "deviceScaleFactor": 1,
            "mobile": false,
        });
        self.session
            .cmd(
                Method::POST,
                "/goog/cdp/execute",
                Some(json!({ "cmd": "Emulation.setDeviceMetricsOverride", "params": params })),
                "set viewport",
            )
            .await?;
        Ok(())
    }

    /// The document title.
    ///
    /// # Errors
    /// WebDriver refused.
    pub async fn title(&self) -> Result<String> {
        let v = self.session.cmd(Method::GET, "/title", None, "title").await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// The top-level page's URL.
    ///
    /// # Errors
    /// WebDriver refused.
    pub async fn current_url(&self) -> Result<String> {
        let v = self.session.cmd(Method::GET, "/url", None, "current url").await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Reloads the page.
    ///
    /// # Errors
    /// WebDriver refused.
    pub async fn refresh(&self) -> Result<()> {
        self.session.cmd(Method::POST, "/refresh", Some(json!({})), "refresh").await?;
        Ok(())
    }

    /// Console messages and uncaught page errors since the previous call (Chromium only), each
    /// `{"level": "SEVERE"|"WARNING"|"INFO"|…, "message": "…", "timestamp": ms}`.
    ///
    /// # Errors
    /// WebDriver refused.
    pub async fn browser_log(&self) -> Result<Vec<Value>> {
        let v = self.session.cmd(Method::POST, "/se/log", Some(json!({ "type": "browser" })), "browser log").await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Ends the session and closes the browser.
    ///
    /// # Errors
    /// WebDriver refused.
    pub async fn quit(mut self) -> Result<()> {
        self.quit = true;
        self.session.cmd(Method::DELETE, "", None, "quit").await?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.quit {
            return;
        }
        // Best effort, without blocking: ask the driver to close the browser in the background.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let session = self.session.clone();
            handle.spawn(async move {
                let _ = session.cmd(Method::DELETE, "", None, "quit").await;
            });
        }
    }
}

/// A reference to one DOM element in a [`Browser`].
#[derive(Clone, Debug)]
pub struct Element {
    session: Session,
    id: String,
    selector: String,
}

impl Element {
    async fn cmd(&self, method: Method, path: &str, body: Option<Value>, what: &str) -> Result<Value> {
        let what = format!("{what} on `{}`", self.selector);
        self.session.cmd(method, &format!("/element/{}{path}", self.id), body, &what).await
    }

    /// Clicks the element (scrolling it into view first).
    ///
    /// # Errors
    /// Not interactable (hidden, covered, disabled), or gone.
    pub async fn click(&self) -> Result<()> {
        self.cmd(Method::POST, "/click", Some(json!({})), "click").await?;
        Ok(())
    }

    /// Types `text`; see [`keys`] for Enter and friends.
    ///
    /// # Errors
    /// Not interactable, or gone.
    pub async fn send_keys(&self, text: &str) -> Result<()> {
        self.cmd(Method::POST, "/value", Some(json!({ "text": text })), "send keys").await?;
        Ok(())
    }

    /// Empties an input or textarea.
    ///
    /// # Errors
    /// Not editable, or gone.
    pub async fn clear(&self) -> Result<()> {
        self.cmd(Method::POST, "/clear", Some(json!({})), "clear").await?;
        Ok(())
    }

    /// The rendered (visible) text.
    ///
    /// # Errors
    /// Gone.
    pub async fn text(&self) -> Result<String> {
        let v = self.cmd(Method::GET, "/text", None, "text").await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// An attribute's value, `None` when absent.
    ///
    /// # Errors
    /// Gone.
    pub async fn attr(&self, name: &str) -> Result<Option<String>> {
        let v = self.cmd(Method::GET, &format!("/attribute/{name}"), None, &format!("attribute {name}")).await?;
        Ok(v.as_str().map(str::to_owned))
    }

    /// Whether the element is rendered visibly.
    ///
    /// # Errors
    /// Gone.
    pub async fn is_displayed(&self) -> Result<bool> {
        let v = self.cmd(Method::GET, "/displayed", None, "displayed").await?;
        Ok(v.as_bool().unwrap_or(false))
    }

    /// Whether a form control is enabled.
    ///
    /// # Errors
    /// Gone.
    pub async fn is_enabled(&self) -> Result<bool> {
        let v = self.cmd(Method::GET, "/enabled", None, "enabled").await?;
        Ok(v.as_bool().unwrap_or(false))
    }

    /// The first descendant matching `css`.
    ///
    /// # Errors
    /// No such element.
    pub async fn find(&self, css: &str) -> Result<Element> {
        let v = self
            .cmd(
                Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
                &format!("find `{css}`"),
            )
            .await?;
        let id = v
            .get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .with_context(|| format!("find `{css}`: no element reference in {v}"))?;
        Ok(Element { session: self.session.clone(), id: id.to_owned(), selector: format!("{} {css}", self.selector) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_carry_binary_profile_and_size() {
        let caps = session_capabilities(Path::new("/opt/chromium"), Path::new("/tmp/prof"), 390, 844);
        let m = &caps["capabilities"]["alwaysMatch"];
        assert_eq!(m["goog:chromeOptions"]["binary"], "/opt/chromium");
        let args: Vec<&str> =
            m["goog:chromeOptions"]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        for want in ["--headless", "--no-sandbox", "--user-data-dir=/tmp/prof", "--window-size=390,844"] {
            assert!(args.contains(&want), "{want} missing from {args:?}");
        }
        assert_eq!(m["timeouts"]["implicit"], 10_000);
    }

    #[test]
    fn webdriver_errors_name_the_command() {
        let body = r#"{"value":{"error":"no such element","message":"Unable to locate element","stacktrace":""}}"#;
        let err = parse_response("find `#x`", 404, body).unwrap_err().to_string();
        assert_eq!(err, "WebDriver find `#x` failed: no such element: Unable to locate element");
        assert_eq!(parse_response("title", 200, r#"{"value":"Hi"}"#).unwrap(), json!("Hi"));
        assert_eq!(parse_response("click", 200, r#"{"value":null}"#).unwrap(), Value::Null);
        assert!(parse_response("x", 500, "<html>").unwrap_err().to_string().contains("non-JSON"));
        assert!(parse_response("x", 500, r#"{"value":{}}"#).unwrap_err().to_string().contains("HTTP 500"));
    }

    #[test]
    fn base64_decodes_all_paddings() {
        assert_eq!(decode_base64("").unwrap(), b"");
        assert_eq!(decode_base64("Zg==").unwrap(), b"f");
        assert_eq!(decode_base64("Zm8=").unwrap(), b"fo");
        assert_eq!(decode_base64("Zm9v").unwrap(), b"foo");
        assert_eq!(decode_base64("Zm9vYmFy\n").unwrap(), b"foobar");
        assert_eq!(decode_base64("Zm9vYg").unwrap(), b"foob");
        assert_eq!(decode_base64("iVBORw0KGgo=").unwrap(), b"\x89PNG\r\n\x1a\n");
        assert_eq!(decode_base64("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
        assert!(decode_base64("Zm9v!").is_err());
        assert!(decode_base64("Z=g=").is_err());
        assert!(decode_base64("Zm9vY").is_err());
    }

    #[test]
    fn wait_script_embeds_condition_as_code() {
        let cond = text_condition("#log li", "it's \"quoted\"");
        assert_eq!(
            cond,
            r##"Array.from(document.querySelectorAll("#log li")).some((e) => (e.textContent || '').includes("it's \"quoted\""))"##
        );
        let script = wait_script(&cond);
        assert!(script.contains(&format!("const cond = () => ({cond}\n);")));
        assert!(script.contains("MutationObserver"));
        assert!(script.contains("requestAnimationFrame"));
    }
}
