//! Carries out the workflow HTTP Request activity: the interpreter asks for an [`HttpCall`] and
//! gets back an [`HttpOutcome`]. Because workflow authors choose the URL (and placeholders fill
//! it from what customers type), every call is a potential server-side request forgery, so this
//! is where the operator's limits hold: only allow-listed hosts, only public addresses unless
//! `http_allow_private` says otherwise, no redirects, a bounded time and a bounded answer.
//!
//! Nothing here fails loudly: every problem becomes [`HttpOutcome::Failed`] with a reason an
//! administrator can act on, and the workflow takes its failure exit.

use crate::config::Config;
use parley_domain::workflow::HttpMethod;
use parley_engine::workflow::{HttpCall, HttpOutcome};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Largest response body kept; a workflow maps a few fields, it never needs a download.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Bounds applied to a call's `timeout_secs`, whatever the definition says.
pub const TIMEOUT_SECS: std::ops::RangeInclusive<u32> = 1..=60;

/// One entry of `http_allow_hosts`: a host exactly, or any subdomain of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `api.example.com`, `203.0.113.7` or `[2001:db8::1]`: that host only.
    Exact(String),
    /// `*.example.com`: any name below `example.com`, but not `example.com` itself.
    Subdomains(String),
}

impl HostPattern {
    /// Reads a pattern as written in the configuration.
    ///
    /// # Errors
    /// Anything that is not a bare host name or IP address, optionally after a leading `*.`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (wild, rest) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if rest.is_empty() {
            return Err(format!("'{text}' names no host"));
        }
        if rest.contains('*') {
            return Err(format!("'{text}': '*' may only start a pattern, as in '*.example.com'"));
        }
        let bare = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(rest);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return if wild {
                Err(format!("'{text}': a wildcard cannot apply to an IP address"))
            } else {
                Ok(Self::Exact(ip.to_string()))
            };
        }
        // These would make the URL parse below read a port, user or path instead of a host.
        if rest.chars().any(|c| c.is_whitespace() || "/\\:@?#[]%".contains(c)) {
            return Err(format!("'{text}' is not a bare host name (no scheme, port or path)"));
        }
        // The same parser as the call's URL, so both sides agree on case, IDNA and odd IPv4 forms.
        let url = Url::parse(&format!("http://{rest}/")).map_err(|e| format!("'{text}' is not a host name: {e}"))?;
        let host = url.host_str().map(canonical_host).unwrap_or_default();
        if host.is_empty() {
            return Err(format!("'{text}' names no host"));
        }
        if host.parse::<IpAddr>().is_ok() {
            return if wild {
                Err(format!("'{text}': a wildcard cannot apply to an IP address"))
            } else {
                Ok(Self::Exact(host))
            };
        }
        Ok(if wild { Self::Subdomains(host) } else { Self::Exact(host) })
    }

    /// Whether `host` (in [`canonical_host`] form) is covered.
    #[must_use]
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(h) => host == h,
            Self::Subdomains(parent) => {
                host.strip_suffix(parent.as_str()).is_some_and(|label| label.len() > 1 && label.ends_with('.'))
            }
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(h) => f.write_str(h),
            Self::Subdomains(parent) => write!(f, "*.{parent}"),
        }
    }
}

impl std::str::FromStr for HostPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A URL host as patterns compare it: no IPv6 brackets, IPs in one spelling, no trailing dot.
#[must_use]
pub fn canonical_host(host: &str) -> String {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => bare.trim_end_matches('.').to_ascii_lowercase(),
    }
}

/// Whether `ip` is an ordinary address on the public internet. Everything else (loopback,
/// private, link-local, CGNAT, documentation, multicast, reserved, and IPv6 forms that embed
/// such an IPv4 address) could reach this server's own network.
#[must_use]
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    Ipv4Addr::new(a, b, c, d).to_bits()
}

/// Non-public IPv4 blocks (IANA special-purpose registry, plus multicast and class E).
const V4_BLOCKED: &[(u32, u32)] = &[
    (v4(0, 0, 0, 0), 8),       // "this network", includes the unspecified address
    (v4(10, 0, 0, 0), 8),      // private
    (v4(100, 64, 0, 0), 10),   // carrier-grade NAT
    (v4(127, 0, 0, 0), 8),     // loopback
    (v4(169, 254, 0, 0), 16),  // link-local, where cloud metadata services live
    (v4(172, 16, 0, 0), 12),   // private
    (v4(192, 0, 0, 0), 24),    // IETF protocol assignments
    (v4(192, 0, 2, 0), 24),    // documentation
    (v4(192, 88, 99, 0), 24),  // 6to4 relay anycast
    (v4(192, 168, 0, 0), 16),  // private
    (v4(198, 18, 0, 0), 15),   // benchmarking
    (v4(198, 51, 100, 0), 24), // documentation
    (v4(203, 0, 113, 0), 24),  // documentation
    (v4(224, 0, 0, 0), 4),     // multicast
    (v4(240, 0, 0, 0), 4),     // reserved, includes broadcast
];

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let bits = ip.to_bits();
    !V4_BLOCKED.iter().any(|&(net, len)| bits >> (32 - len) == net >> (32 - len))
}

fn in_v6(bits: u128, net: u128, len: u32) -> bool {
    bits >> (128 - len) == net >> (128 - len)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let bits = ip.to_bits();
    // Translation forms reach the embedded IPv4 address, so that address decides.
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return is_public_v4(mapped);
    }
    let embedded = |shift: u32| Ipv4Addr::from_bits((bits >> shift) as u32);
    if in_v6(bits, 0x0064_ff9b_u128 << 96, 96) {
        return is_public_v4(embedded(0)); // NAT64 well-known prefix
    }
    // Only global unicast is public; this refuses ::, ::1, IPv4-compatible, ULA fc00::/7,
    // link-local fe80::/10, site-local, multicast and the local-use NAT64 prefix in one go.
    if !in_v6(bits, 0x2000_u128 << 112, 3) {
        return false;
    }
    if in_v6(bits, 0x2002_u128 << 112, 16) {
        return is_public_v4(embedded(80)); // 6to4
    }
    let blocked = [
        (0x2001_u128 << 112, 23),                    // IETF protocol assignments, Teredo, ORCHID
        ((0x2001_u128 << 112) | (0x0db8 << 96), 32), // documentation
        (0x3fff_u128 << 112, 20),                    // documentation
    ];
    !blocked.iter().any(|&(net, len)| in_v6(bits, net, len))
}

/// What outbound calls may reach.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allow_hosts: Vec<HostPattern>,
    allow_private: bool,
}

impl OutboundPolicy {
    /// `allow_hosts` empty refuses every call; `allow_private` lets allow-listed hosts resolve to
    /// non-public addresses (an intranet CRM, or tests against a local server).
    #[must_use]
    pub fn new(allow_hosts: Vec<HostPattern>, allow_private: bool) -> Self {
        Self { allow_hosts, allow_private }
    }

    /// Whether a URL host is on the allow-list.
    #[must_use]
    pub fn allows_host(&self, host: &str) -> bool {
        let host = canonical_host(host);
        self.allow_hosts.iter().any(|p| p.matches(&host))
    }

    /// Whether a resolved address may be connected to.
    #[must_use]
    pub fn allows_address(&self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip)
    }
}

/// The HTTP client of workflows.
#[derive(Debug, Clone)]
pub struct Outbound {
    // No shared reqwest client: each call builds one pinned to the addresses it vetted (see
    // `Pinned`), so a pooled connection or a second DNS answer can never bypass the checks.
    policy: Arc<OutboundPolicy>,
}

impl Outbound {
    #[must_use]
    pub fn new(policy: OutboundPolicy) -> Self {
        Self { policy: Arc::new(policy) }
    }

    /// The policy set by `http_allow_hosts` and `http_allow_private`.
    #[must_use]
    pub fn from_config(cfg: &Config) -> Self {
        Self::new(OutboundPolicy::new(cfg.http_allow_hosts.clone(), cfg.http_allow_private))
    }

    #[must_use]
    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// Makes the call. Any status, 3xx included, is a `Response`; refusals, network errors,
    /// timeouts and oversized bodies are `Failed`.
    pub async fn call(&self, call: HttpCall) -> HttpOutcome {
        let secs = call.timeout_secs.clamp(*TIMEOUT_SECS.start(), *TIMEOUT_SECS.end());
        // One deadline over everything, DNS included: the system resolver has no timeout of its own.
        match tokio::time::timeout(Duration::from_secs(secs.into()), self.send(call)).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(reason)) => HttpOutcome::Failed(reason),
            Err(_) => HttpOutcome::Failed(format!("no complete answer within {secs} s")),
        }
    }

    async fn send(&self, call: HttpCall) -> Result<HttpOutcome, String> {
        let url = Url::parse(call.url.trim()).map_err(|e| format!("the URL is not valid: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("only http and https URLs are allowed, not {}:", url.scheme()));
        }
        let raw_host = url.host_str().ok_or("the URL has no host")?.to_owned();
        let host = canonical_host(&raw_host);
        if !self.policy.allows_host(&host) {
            return Err(format!("host {host} is not on the allow-list (http_allow_hosts)"));
        }
        let port = url.port_or_known_default().ok_or("the URL has no port")?;
        let headers = header_map(&call.headers)?;
        let addrs = self.vetted_addresses(&raw_host, &host, port).await?;

        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would make its own connection to wherever it likes, past the vetting.
            .no_proxy()
            .dns_resolver(Arc::new(Pinned(addrs)))
            .pool_max_idle_per_host(0)
            .user_agent(concat!("parley/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot prepare the HTTP client: {}", chain(&e)))?;
        let mut request = client.request(method(call.method), url).headers(headers);
        if let Some(body) = call.body {
            request = request.body(body);
        }
        let mut response =
            request.send().await.map_err(|e| format!("request to {host} failed: {}", chain(&e.without_url())))?;
        let status = response.status().as_u16();
        if response.content_length().is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading the answer of {host} failed: {}", chain(&e.without_url())))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpOutcome::Response { status, body: interpret(&body) })
    }

    /// Every address `host` stands for, each one checked: one bad answer among good ones is
    /// still a way in, so any refusal refuses the call.
    async fn vetted_addresses(&self, raw_host: &str, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((raw_host, port))
                .await
                .map_err(|e| format!("cannot resolve host {host}: {e}"))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(format!("host {host} resolves to no address"));
        }
        if let Some(bad) = addrs.iter().find(|a| !self.policy.allows_address(a.ip())) {
            let what = if bad.ip().to_string() == host {
                format!("address {host} is")
            } else {
                format!("host {host} resolves to {}, which is", bad.ip())
            };
            return Err(format!(
                "{what} loopback, private or reserved; set http_allow_private to allow internal destinations"
            ));
        }
        Ok(addrs)
    }
}

/// A resolver that answers with the addresses already vetted, for whatever name it is asked:
/// the client it serves makes exactly one request, so the only name is the vetted host, and a
/// second lookup (where DNS rebinding would strike) never happens.
struct Pinned(Vec<SocketAddr>);

impl reqwest::dns::Resolve for Pinned {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let addrs: reqwest::dns::Addrs = Box::new(self.0.clone().into_iter());
        Box::pin(std::future::ready(Ok(addrs)))
    }
}

fn method(m: HttpMethod) -> Method {
    match m {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Delete => Method::DELETE,
    }
}

fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let n = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("'{name}' is not a valid HTTP header name"))?;
        // The value is left out of the reason: it is often a credential.
        let v = HeaderValue::from_str(value.trim())
            .map_err(|_| format!("the value of header '{name}' is not valid (control characters or non-ASCII)"))?;
        map.append(n, v);
    }
    Ok(map)
}

fn too_large() -> String {
    format!("the answer is larger than {} KiB", MAX_BODY_BYTES / 1024)
}

/// JSON when the body is JSON, whatever the content type claims; otherwise the text; `null`
/// for an empty body (a 204, a redirect).
fn interpret(body: &[u8]) -> serde_json::Value {
    if body.iter().all(u8::is_ascii_whitespace) {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// An error with its causes: reqwest's own message alone ("error sending request") hides
/// whether it was a refused connection, a TLS failure or a reset.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::State;
    use axum::http::{HeaderMap as AxHeaders, Method as AxMethod, StatusCode, Uri, header};
    use axum::response::{IntoResponse, Response};
    use std::sync::Mutex;

    /// What the test server received.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        headers: AxHeaders,
        body: String,
    }

    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<Seen>>>);

    impl Log {
        fn requests(&self) -> Vec<Seen> {
            self.0.lock().unwrap().clone()
        }
    }

    async fn handle(State(log): State<Log>, method: AxMethod, uri: Uri, headers: AxHeaders, body: String) -> Response {
        let path = uri.path().to_owned();
        log.0.lock().unwrap().push(Seen { method: method.to_string(), path: path.clone(), headers, body });
        match path.as_str() {
            "/json" => axum::Json(serde_json::json!({"tier": "gold", "visits": 3})).into_response(),
            "/text" => "plain words".into_response(),
            "/redirect" => (StatusCode::FOUND, [(header::LOCATION, "/json")]).into_response(),
            "/hang" => std::future::pending::<Response>().await,
            "/big" => "x".repeat(MAX_BODY_BYTES + 1).into_response(),
            "/big-chunked" => {
                let chunks = (0..40).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 8 * 1024]));
                Body::from_stream(futures_util::stream::iter(chunks)).into_response()
            }
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    }

    async fn server() -> (SocketAddr, Log) {
        let log = Log::default();
        let app = Router::new().fallback(handle).with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, log)
    }

    fn outbound(hosts: &[&str], allow_private: bool) -> Outbound {
        let hosts = hosts.iter().map(|h| HostPattern::parse(h).unwrap()).collect();
        Outbound::new(OutboundPolicy::new(hosts, allow_private))
    }

    fn get(url: String) -> HttpCall {
        HttpCall { method: HttpMethod::Get, url, headers: vec![], body: None, timeout_secs: 5 }
    }

    fn failure(outcome: HttpOutcome) -> String {
        match outcome {
            HttpOutcome::Failed(reason) => reason,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    fn response(outcome: HttpOutcome) -> (u16, serde_json::Value) {
        match outcome {
            HttpOutcome::Response { status, body } => (status, body),
            HttpOutcome::Failed(reason) => panic!("expected a response, got a failure: {reason}"),
        }
    }

    #[tokio::test]
    async fn a_loopback_destination_is_refused_by_default_even_when_allow_listed() {
        let (addr, log) = server().await;
        let reason = failure(outbound(&["127.0.0.1"], false).call(get(format!("http://{addr}/json"))).await);
        assert!(reason.contains("http_allow_private"), "{reason}");
        assert!(log.requests().is_empty());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_by_default() {
        let (addr, log) = server().await;
        let url = format!("http://localhost:{}/json", addr.port());
        let reason = failure(outbound(&["localhost"], false).call(get(url)).await);
        assert!(reason.contains("localhost"), "{reason}");
        assert!(log.requests().is_empty());
    }

    #[tokio::test]
    async fn an_allowed_private_call_delivers_method_headers_and_body_and_returns_json() {
        let (addr, log) = server().await;
        let call = HttpCall {
            method: HttpMethod::Post,
            url: format!("http://{addr}/json?customer=42"),
            headers: vec![("X-Api-Key".into(), "k-123".into()), ("Content-Type".into(), "application/json".into())],
            body: Some(r#"{"email":"a@example.com"}"#.into()),
            timeout_secs: 5,
        };
        let (status, body) = response(outbound(&["127.0.0.1"], true).call(call).await);
        assert_eq!(status, 200);
        assert_eq!(body["tier"], "gold");
        assert_eq!(body["visits"], 3);
        let seen = log.requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].path, "/json");
        assert_eq!(seen[0].headers["x-api-key"], "k-123");
        assert_eq!(seen[0].headers["content-type"], "application/json");
        assert_eq!(seen[0].body, r#"{"email":"a@example.com"}"#);
    }

    #[tokio::test]
    async fn a_named_host_is_resolved_and_reached_when_private_is_allowed() {
        let (addr, log) = server().await;
        let url = format!("http://localhost:{}/json", addr.port());
        let (status, _) = response(outbound(&["localhost"], true).call(get(url)).await);
        assert_eq!(status, 200);
        assert_eq!(log.requests().len(), 1);
    }

    #[tokio::test]
    async fn a_host_not_on_the_list_is_refused_without_any_connection() {
        let (addr, log) = server().await;
        let reason = failure(
            outbound(&["api.example.com", "*.example.com"], true).call(get(format!("http://{addr}/json"))).await,
        );
        assert_eq!(reason, "host 127.0.0.1 is not on the allow-list (http_allow_hosts)");
        assert!(log.requests().is_empty());
    }

    #[tokio::test]
    async fn an_empty_allow_list_refuses_every_call() {
        let (addr, log) = server().await;
        let reason = failure(outbound(&[], true).call(get(format!("http://{addr}/json"))).await);
        assert!(reason.contains("not on the allow-list"), "{reason}");
        assert!(log.requests().is_empty());
    }

    #[tokio::test]
    async fn a_redirect_is_returned_as_is_and_not_followed() {
        let (addr, log) = server().await;
        let (status, body) =
            response(outbound(&["127.0.0.1"], true).call(get(format!("http://{addr}/redirect"))).await);
        assert_eq!(status, 302);
        assert_eq!(body, serde_json::Value::Null);
        let paths: Vec<_> = log.requests().into_iter().map(|s| s.path).collect();
        assert_eq!(paths, ["/redirect"]);
    }

    #[tokio::test]
    async fn an_endpoint_that_never_answers_times_out_as_a_failure() {
        let (addr, _log) = server().await;
        let call = HttpCall { timeout_secs: 1, ..get(format!("http://{addr}/hang")) };
        let reason = failure(outbound(&["127.0.0.1"], true).call(call).await);
        assert_eq!(reason, "no complete answer within 1 s");
    }

    #[tokio::test]
    async fn an_oversized_body_fails() {
        let (addr, _log) = server().await;
        let out = outbound(&["127.0.0.1"], true);
        for path in ["/big", "/big-chunked"] {
            let reason = failure(out.call(get(format!("http://{addr}{path}"))).await);
            assert_eq!(reason, "the answer is larger than 256 KiB", "{path}");
        }
    }

    #[tokio::test]
    async fn a_body_that_is_not_json_comes_back_as_a_string() {
        let (addr, _log) = server().await;
        let (status, body) = response(outbound(&["127.0.0.1"], true).call(get(format!("http://{addr}/text"))).await);
        assert_eq!(status, 200);
        assert_eq!(body, serde_json::Value::String("plain words".into()));
    }

    #[tokio::test]
    async fn an_error_status_is_a_response_not_a_failure() {
        let (addr, _log) = server().await;
        let (status, _) = response(outbound(&["127.0.0.1"], true).call(get(format!("http://{addr}/missing"))).await);
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn an_invalid_header_fails_cleanly_before_connecting() {
        let (addr, log) = server().await;
        let out = outbound(&["127.0.0.1"], true);
        let bad_name =
            HttpCall { headers: vec![("Bad Header".into(), "v".into())], ..get(format!("http://{addr}/json")) };
        assert_eq!(failure(out.call(bad_name).await), "'Bad Header' is not a valid HTTP header name");
        let bad_value = HttpCall {
            headers: vec![("X-Token".into(), "secret\nInjected: 1".into())],
            ..get(format!("http://{addr}/json"))
        };
        let reason = failure(out.call(bad_value).await);
        assert!(reason.starts_with("the value of header 'X-Token'"), "{reason}");
        assert!(!reason.contains("secret"), "{reason}");
        assert!(log.requests().is_empty());
    }

    #[tokio::test]
    async fn only_http_and_https_urls_are_accepted() {
        let out = outbound(&["127.0.0.1", "files.example.com"], true);
        for url in ["ftp://files.example.com/x", "file:///etc/passwd", "gopher://127.0.0.1/"] {
            let reason = failure(out.call(get(url.into())).await);
            assert!(reason.starts_with("only http and https"), "{url}: {reason}");
        }
        assert!(failure(out.call(get("not a url".into())).await).starts_with("the URL is not valid"));
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_readable_failure() {
        // Bind then drop, so the port is (almost certainly) closed.
        let addr = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let reason = failure(outbound(&["127.0.0.1"], true).call(get(format!("http://{addr}/json"))).await);
        assert!(reason.starts_with("request to 127.0.0.1 failed"), "{reason}");
        assert!(!reason.contains("/json"), "the URL stays out of the reason: {reason}");
    }

    #[test]
    fn ipv4_addresses_are_classified_by_range() {
        let table = [
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("93.184.216.34", true),
            ("100.63.255.255", true),
            ("100.128.0.0", true),
            ("172.15.255.255", true),
            ("172.32.0.0", true),
            ("0.0.0.0", false),
            ("127.0.0.1", false),
            ("127.255.255.254", false),
            ("10.0.0.1", false),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("192.168.1.1", false),
            ("169.254.169.254", false),
            ("100.64.0.1", false),
            ("100.127.255.255", false),
            ("192.0.0.8", false),
            ("192.0.2.1", false),
            ("198.18.0.1", false),
            ("198.51.100.7", false),
            ("203.0.113.9", false),
            ("224.0.0.1", false),
            ("240.0.0.1", false),
            ("255.255.255.255", false),
        ];
        for (ip, public) in table {
            assert_eq!(is_public(ip.parse().unwrap()), public, "{ip}");
        }
    }

    #[test]
    fn ipv6_addresses_are_classified_by_range() {
        let table = [
            ("2606:4700:4700::1111", true),
            ("2a00:1450:4001:81b::200e", true),
            ("::ffff:8.8.8.8", true),
            ("64:ff9b::808:808", true),
            ("2002:808:808::1", true),
            ("::", false),
            ("::1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:169.254.169.254", false),
            ("::10.0.0.1", false),
            ("64:ff9b::a00:1", false),
            ("64:ff9b:1::1", false),
            ("2002:a00:1::1", false),
            ("2002:7f00:1::1", false),
            ("fc00::1", false),
            ("fd12:3456::1", false),
            ("fe80::1", false),
            ("febf::1", false),
            ("fec0::1", false),
            ("ff02::1", false),
            ("100::1", false),
            ("2001::1", false),
            ("2001:db8::1", false),
            ("3fff::1", false),
        ];
        for (ip, public) in table {
            assert_eq!(is_public(ip.parse().unwrap()), public, "{ip}");
        }
    }

    #[test]
    fn a_wildcard_matches_subdomains_only() {
        let p = HostPattern::parse("*.example.com").unwrap();
        assert!(p.matches("a.example.com"));
        assert!(p.matches("a.b.example.com"));
        assert!(!p.matches("example.com"));
        assert!(!p.matches("badexample.com"));
        assert!(!p.matches("example.com.evil.net"));
        assert_eq!(p.to_string(), "*.example.com");
    }

    #[test]
    fn an_exact_pattern_matches_that_host_only() {
        let policy = OutboundPolicy::new(vec![HostPattern::parse("API.Example.com.").unwrap()], false);
        assert!(policy.allows_host("api.example.com"));
        assert!(policy.allows_host("api.example.com."));
        assert!(!policy.allows_host("x.api.example.com"));
        assert!(!policy.allows_host("example.com"));
    }

    #[test]
    fn ip_patterns_match_every_spelling_of_the_address() {
        let policy = OutboundPolicy::new(
            vec![HostPattern::parse("[2001:DB8:0::1]").unwrap(), HostPattern::parse("::ffff:1.2.3.4").unwrap()],
            false,
        );
        assert!(policy.allows_host("[2001:db8::1]"));
        assert!(policy.allows_host("2001:db8::1"));
        // The URL parser writes mapped addresses in hex; both spellings are one address.
        let url = Url::parse("http://[::ffff:1.2.3.4]/").unwrap();
        assert!(policy.allows_host(url.host_str().unwrap()));
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        for bad in [
            "",
            "*",
            "*.",
            "a.*.com",
            "https://api.example.com",
            "api.example.com:443",
            "api.example.com/x",
            "u@h",
            "*.10.0.0.1",
            "a b",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(HostPattern::parse(" *.Example.COM ").unwrap(), HostPattern::Subdomains("example.com".into()));
        assert_eq!(HostPattern::parse("0x7f.1").unwrap(), HostPattern::Exact("127.0.0.1".into()));
    }
}
