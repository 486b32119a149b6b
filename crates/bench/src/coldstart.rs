//! The `cold-start` scenario (goal A5 with data): how long the `parley` binary takes to accept
//! connections when its data folder already holds a busy day's state, 1M log entries and 10k
//! open chats by default. The empty case is [`crate::process::startup`]; this one shows what of
//! the start grows with the data.
//!
//! - **Fill** (timed apart, not part of the figure). The binary starts once on a fresh folder; a
//!   fixture tenant and one chat are made through the API, as a customer would, and the chat is
//!   left waiting (nobody staffs the service) before the server stops. The folder's SQLite
//!   database is then opened with `parley_store` directly, the way the server opens it, and the
//!   chat is cloned `--open-chats` times: same tenant, service and pinned workflow version, the
//!   same status and queue priority, a new id, a visitor token of its own (minted and hashed by
//!   the server's own [`parley_server::auth::mint_visitor_token`]) and a later queue entry, so a
//!   start finds exactly what the server would have written itself. `--messages` customer
//!   messages are then appended round-robin over the clones with `append_batch`, `--batch` at a
//!   time, each with a `client_msg_id` as a widget sends it (the idempotency index grows too).
//! - **Starts.** The binary starts `--starts` times on the filled folder, stopped with SIGTERM
//!   after each. Timed from the spawn: until it logs that it listens (the goal's measure); until
//!   a waiting visitor, reconnecting with the `since_seq` of its whole log, has its `hello`; and
//!   until it has its `queue` frame (*ready*). The session asks the tenant engine for the place,
//!   and the engine answers only once it has rebuilt every open chat into its queue; the place
//!   given, the last clone's, must be the number of open chats.
//! - **Rebuild reads.** The two store reads the engine's rebuild makes (queue entries, open
//!   chats) are timed once more in this process, to tell the database's share of *ready* from
//!   the engine's own work.
//!
//! The verdict is goal A5's with data: spawn → listening, p50 ≤ 500 ms.

use crate::process::rss_kib;
use crate::report::RunInfo;
use crate::stats::{Percentiles, nanos};
use anyhow::{Context, ensure};
use parley_domain::{ConversationId, ConversationStatus, Customer, EntryBody, Sender, TenantId};
use parley_server::clock::{Clock, SystemClock};
use parley_store::{NewEntry, QueueEntry, Store, VisitorCredential};
use parley_testkit::{ServerProcess, fixtures};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;
use uuid::Uuid;

/// The database file the server keeps in its data folder (the default `database_url`).
const DB_FILE: &str = "parley.db";

/// Goal A5 with data: spawn → listening, p50, in milliseconds.
const GOAL_MS: f64 = 500.0;

/// The scenario's parameters; the defaults are goal A5's data (the fill then takes minutes, most
/// of them appending).
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The `parley` binary to fill and start (`cargo build --release -p parley-server`).
    #[arg(long)]
    #[serde(default, skip_deserializing)]
    pub parley_bin: PathBuf,
    /// Open chats cloned from the one made through the API (which stays open too).
    #[arg(long, default_value_t = 10_000)]
    pub open_chats: usize,
    /// Log entries appended, spread evenly over the cloned chats.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: usize,
    /// Entries per `append_batch` call (one transaction) while filling.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Timed starts on the filled folder.
    #[arg(long, default_value_t = 5)]
    pub starts: usize,
    /// Keep the filled data folder after the run (to start or profile the server on it by hand);
    /// it changes nothing measured.
    #[arg(long)]
    #[serde(default)]
    pub keep_data: bool,
}

/// The data folder as the starts find it.
#[derive(Debug, Clone, Serialize)]
pub struct Fill {
    /// Open (queued) conversations in the store: the API's chat and its clones.
    pub open_chats: usize,
    /// Log entries in the store: the API chat's own and those appended.
    pub log_entries: u64,
    pub appended: u64,
    pub batches: u64,
    /// Creating the clones and their queue entries, in seconds.
    pub create_secs: f64,
    /// Appending the messages, in seconds.
    pub append_secs: f64,
    /// Rows per second inside `append_batch` (the messages' making left out).
    pub append_rows_per_sec: f64,
    /// The same over the first tenth of the batches (a small log)…
    pub append_rows_per_sec_first_tenth: f64,
    /// …and over the last tenth (the log nearly full-size).
    pub append_rows_per_sec_last_tenth: f64,
    /// `parley.db` with its `-wal` and `-shm`, once the fill's store closed.
    pub db_bytes: u64,
}

/// The timed starts.
#[derive(Debug, Clone, Serialize)]
pub struct Starts {
    /// Spawn → "parley is listening", in milliseconds (the goal's measure).
    pub listening_ms: Percentiles,
    /// Spawn → the probing visitor's `hello`, in milliseconds.
    pub hello_ms: Percentiles,
    /// Spawn → the probing visitor's `queue` frame: the engine has rebuilt every open chat.
    pub ready_ms: Percentiles,
    /// Once ready: the agent sets Available → the first offer, in milliseconds (the engine holds
    /// every open chat again).
    pub offer_after_restart_ms: Percentiles,
    /// The place each start's `queue` frame gave the probe (the last chat): the open chats.
    pub queue_positions: Vec<u64>,
    /// Resident memory once ready, the largest of the starts, in KiB.
    pub rss_ready_kib: f64,
}

/// The store reads a tenant engine's rebuild makes, timed in this process on a fresh connection
/// once the starts are done (the OS cache as warm as theirs): the part of *ready* that is the
/// database's, the rest being the engine's own work.
#[derive(Debug, Clone, Serialize)]
pub struct RebuildReads {
    /// `list_queue_entries`, in milliseconds.
    pub queue_entries_ms: f64,
    /// `list_open_conversations`, in milliseconds.
    pub open_conversations_ms: f64,
    /// Conversations the second read returned.
    pub open_conversations: usize,
}

/// Goal A5 with data and how the run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    pub id: &'static str,
    pub measure: &'static str,
    pub value_ms: f64,
    pub goal_ms: f64,
    pub pass: bool,
}

/// What came out of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub run: RunInfo,
    pub params: Params,
    pub fill: Fill,
    pub starts: Starts,
    pub rebuild_reads: RebuildReads,
    pub goal: Goal,
    /// The filled data folder, when kept.
    pub data_dir: Option<PathBuf>,
}

/// The chat made through the API, as the fill needs it.
#[derive(Debug, Clone)]
struct Seed {
    tenant: TenantId,
    /// The fixture tenant, whose agent signs in at each start.
    fixture: fixtures::Tenant,
    conversation: ConversationId,
    token: String,
}

/// The chat whose visitor reconnects at each start: its token, and its log's end.
#[derive(Debug, Clone)]
struct Probe {
    token: String,
    last_seq: i64,
    fixture: fixtures::Tenant,
}

/// One timed start.
#[derive(Debug, Clone, Copy)]
struct Sample {
    listening_ns: u64,
    hello_ns: u64,
    ready_ns: u64,
    /// The agent becomes available → the first offer (the queue's head).
    offer_ns: u64,
    position: u64,
    rss_kib: f64,
}

/// Runs the scenario: seed through the API, fill through the store, time the starts.
///
/// # Errors
/// The binary does not start, an API call or a store write fails, or the probe's frames do not
/// come (the testkit's socket waits at most 10 s for each).
pub async fn run(params: &Params) -> anyhow::Result<Report> {
    ensure!(params.batch > 0 && params.starts > 0, "cold-start needs --batch and --starts above 0");
    ensure!(params.messages == 0 || params.open_chats > 0, "messages need --open-chats to go to");
    let run = RunInfo::now();
    let dir = tempfile::tempdir().context("data folder")?;
    let seed = seed(&params.parley_bin, dir.path()).await?;
    let (fill, probe) = fill(dir.path(), &seed, params).await?;
    let mut samples = Vec::with_capacity(params.starts);
    for _ in 0..params.starts {
        samples.push(start(&params.parley_bin, dir.path(), &probe).await?);
    }
    let starts = summarize(&samples);
    let rebuild_reads = rebuild_reads(dir.path(), seed.tenant).await?;
    let goal = Goal {
        id: "A5",
        measure: "cold start with data: spawn → listening, p50",
        value_ms: starts.listening_ms.p50,
        goal_ms: GOAL_MS,
        pass: starts.listening_ms.p50 <= GOAL_MS,
    };
    let data_dir = params.keep_data.then(|| dir.keep());
    Ok(Report { scenario: "cold-start", run, params: params.clone(), fill, starts, rebuild_reads, goal, data_dir })
}

/// Times the two reads of [`RebuildReads`] on a fresh connection to the folder's database.
async fn rebuild_reads(dir: &Path, tenant: TenantId) -> anyhow::Result<RebuildReads> {
    let store = open(dir).await?;
    let t = Instant::now();
    store.list_queue_entries(tenant).await?;
    let queue_entries_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let open_conversations = store.list_open_conversations(tenant).await?.len();
    let open_conversations_ms = t.elapsed().as_secs_f64() * 1e3;
    store.close().await;
    Ok(RebuildReads { queue_entries_ms, open_conversations_ms, open_conversations })
}

/// Opens the folder's database as the server does (it is already migrated; migrating again is
/// a no-op that checks so).
async fn open(dir: &Path) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    let url = format!("sqlite://{}", dir.join(DB_FILE).display());
    let store = parley_store::connect(&url).await.context("opening the data folder's database")?;
    store.migrate().await?;
    Ok(store)
}

/// Starts the binary on `dir`, makes the fixture tenant and one chat through the API, waits
/// until the chat is queued (its visitor's `queue` frame) and stops the server.
async fn seed(bin: &Path, dir: &Path) -> anyhow::Result<Seed> {
    let server = ServerProcess::start(bin, dir).await?;
    let tenant = fixtures::tenant(&server.base, "coldstart", 1).await?;
    let (conversation, token) = tenant.start_chat(&server.base, "Visitor 0", None).await?;
    // The workflow runs after the start's answer; a chat stopped before its queue step would be
    // restored differently from the clones.
    let mut ws = fixtures::visitor(&server.ws_base(), &token, 0).await?;
    ws.until("the seed chat's queue frame", |f| f["type"] == "queue").await?;
    ws.close().await;
    server.terminate().await?;
    Ok(Seed {
        tenant: TenantId::from_uuid(Uuid::try_parse(&tenant.id).context("tenant id")?),
        fixture: tenant.clone(),
        conversation: ConversationId::from_uuid(Uuid::try_parse(&conversation).context("conversation id")?),
        token,
    })
}

/// Clones the seed chat and appends the messages through the store, as the server would have
/// written them; returns the folder's figures and the chat to probe (the last one queued).
async fn fill(dir: &Path, seed: &Seed, params: &Params) -> anyhow::Result<(Fill, Probe)> {
    let store = open(dir).await?;
    let store = store.as_ref();
    let original = store.get_conversation(seed.tenant, seed.conversation).await?;
    ensure!(original.status == ConversationStatus::Queued, "the seed chat is {:?}, not queued", original.status);

    let created = Instant::now();
    let clones = clone_chats(store, &original, params.open_chats).await?;
    let create_secs = created.elapsed().as_secs_f64();

    let appending = Instant::now();
    let ids: Vec<ConversationId> = clones.iter().map(|c| c.0).collect();
    let timed = append_messages(store, seed.tenant, &ids, params.messages, params.batch).await?;
    let (rate, first_tenth, last_tenth) = append_rates(&timed);
    let append_secs = appending.elapsed().as_secs_f64();

    let probe = match clones.last() {
        Some((id, token)) => Probe {
            token: token.clone(),
            last_seq: store.get_conversation(seed.tenant, *id).await?.last_seq,
            fixture: seed.fixture.clone(),
        },
        None => Probe { token: seed.token.clone(), last_seq: original.last_seq, fixture: seed.fixture.clone() },
    };
    // Closing checkpoints the WAL, as a clean shutdown of the server leaves the folder.
    store.close().await;
    let appended = params.messages as u64;
    let fill = Fill {
        open_chats: clones.len() + 1,
        log_entries: u64::try_from(original.last_seq).unwrap_or_default() + appended,
        appended,
        batches: timed.len() as u64,
        create_secs,
        append_secs,
        append_rows_per_sec: rate,
        append_rows_per_sec_first_tenth: first_tenth,
        append_rows_per_sec_last_tenth: last_tenth,
        db_bytes: db_bytes(dir),
    };
    Ok((fill, probe))
}

/// Creates `n` copies of `original` (new id, own visitor token, a queue entry after the ones
/// before); returns each one's id and visitor token, in queue order.
async fn clone_chats(
    store: &dyn Store,
    original: &parley_domain::Conversation,
    n: usize,
) -> anyhow::Result<Vec<(ConversationId, String)>> {
    let tenant = original.tenant_id;
    let lifetime = store.visitor_credential(tenant, original.id).await?.expires_at - original.created_at;
    let entries = store.list_queue_entries(tenant).await?;
    let priority =
        entries.iter().find(|e| e.conversation_id == original.id).context("the seed chat has no queue entry")?.priority;
    let mut clones = Vec::with_capacity(n);
    for i in 1..=n {
        let now = SystemClock.now();
        let id = ConversationId::from_uuid(Uuid::now_v7());
        let conversation = parley_domain::Conversation {
            id,
            customer: Customer { display_name: format!("Visitor {i}"), ..original.customer.clone() },
            last_seq: 0,
            created_at: now,
            ..original.clone()
        };
        let (token, token_hash) = parley_server::auth::mint_visitor_token(tenant, id);
        let credential = VisitorCredential { token_hash, expires_at: now + lifetime };
        store.create_conversation(&conversation, &credential).await?;
        store.set_queue_entry(tenant, &QueueEntry { conversation_id: id, queued_at: now, priority }).await?;
        clones.push((id, token));
    }
    Ok(clones)
}

/// Appends `messages` customer messages, message `k` to chat `k % chats`, `batch` per
/// `append_batch`; returns each batch's rows and nanoseconds. Every entry must be written, none
/// a duplicate.
async fn append_messages(
    store: &dyn Store,
    tenant: TenantId,
    chats: &[ConversationId],
    messages: usize,
    batch: usize,
) -> anyhow::Result<Vec<Timed>> {
    let mut timed = Vec::with_capacity(messages.div_ceil(batch));
    let mut k = 0;
    while k < messages {
        let end = (k + batch).min(messages);
        let entries = messages_of(tenant, chats, k..end, SystemClock.now());
        let t = Instant::now();
        let outcomes = store.append_batch(&entries).await;
        timed.push(Timed { rows: entries.len(), ns: nanos(t.elapsed()) });
        for (outcome, entry) in outcomes.into_iter().zip(&entries) {
            let appended = outcome.with_context(|| format!("append to {}", entry.conversation_id))?;
            ensure!(!appended.duplicate, "{:?} was taken for a duplicate", entry.client_msg_id);
        }
        k = end;
    }
    Ok(timed)
}

/// One `append_batch` call: how many rows, how long.
#[derive(Debug, Clone, Copy)]
struct Timed {
    rows: usize,
    ns: u64,
}

/// Rows per second of the whole, of its first tenth of batches and of its last tenth (at least
/// one batch each): whether appending slows down as the log grows.
fn append_rates(timed: &[Timed]) -> (f64, f64, f64) {
    let rate = |t: &[Timed]| {
        let ns: u64 = t.iter().map(|b| b.ns).sum();
        t.iter().map(|b| b.rows).sum::<usize>() as f64 / (ns.max(1) as f64 / 1e9)
    };
    let tenth = (timed.len() / 10).max(1).min(timed.len());
    (rate(timed), rate(&timed[..tenth]), rate(&timed[timed.len() - tenth..]))
}

/// Messages `range` of the fill, message `k` to chat `k % chats`.
fn messages_of(
    tenant: TenantId,
    chats: &[ConversationId],
    range: std::ops::Range<usize>,
    now: time::OffsetDateTime,
) -> Vec<NewEntry> {
    range.map(|k| message(tenant, chats[k % chats.len()], k, now)).collect()
}

/// Message `k` of the fill, as a widget would have sent it.
fn message(tenant: TenantId, conversation: ConversationId, k: usize, now: time::OffsetDateTime) -> NewEntry {
    NewEntry {
        tenant_id: tenant,
        conversation_id: conversation,
        client_msg_id: Some(format!("fill-{k}")),
        body: EntryBody::Message {
            sender: Sender::Customer { name: "Visitor".to_owned() },
            text: format!("Hello, I have a question about my order number {k}."),
            attachment: None,
        },
        created_at: now,
    }
}

/// Bytes of the database with its WAL and shared-memory files (absent ones count 0).
fn db_bytes(dir: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(dir.join(format!("{DB_FILE}{suffix}"))).ok())
        .map(|m| m.len())
        .sum()
}

/// One start on the filled folder: timed until it listens, until the probe's `hello` and until
/// its `queue` frame; then SIGTERM.
async fn start(bin: &Path, dir: &Path, probe: &Probe) -> anyhow::Result<Sample> {
    let spawned = Instant::now();
    let server = ServerProcess::start(bin, dir).await?;
    let listening_ns = nanos(spawned.elapsed());
    // Reconnecting from the log's end, as a widget that had seen everything: no replay to wait for.
    let mut ws = fixtures::visitor(&server.ws_base(), &probe.token, probe.last_seq).await?;
    let hello = ws.until("hello", |f| f["type"] == "hello").await?;
    let hello_ns = nanos(spawned.elapsed());
    ensure!(hello["last_seq"] == probe.last_seq && hello["status"] == "queued", "unexpected hello {hello}");
    let queue = ws.until("the queue frame (engine rebuilt)", |f| f["type"] == "queue").await?;
    let ready_ns = nanos(spawned.elapsed());
    let position = queue["position"].as_u64().with_context(|| format!("queue frame without position: {queue}"))?;
    let rss_kib = rss_kib(server.pid().context("parley pid")?)?;
    ws.close().await;
    let offer_ns = first_offer(&server, &probe.fixture).await?;
    server.terminate().await?;
    Ok(Sample { listening_ns, hello_ns, ready_ns, offer_ns, position, rss_kib })
}

/// The agent signs in and sets Available: time to the first offer. Then Away, which takes the
/// offer back without counting as a decline, so the next start finds the same queue.
async fn first_offer(server: &ServerProcess, fixture: &fixtures::Tenant) -> anyhow::Result<u64> {
    let cookie = fixture.on(&server.base).login(&server.base, 0).await?;
    let mut agent = parley_testkit::Ws::connect(&format!("{}/ws/v1/agent", server.ws_base()), Some(&cookie)).await?;
    agent.until("the agent's hello", |f| f["type"] == "hello").await?;
    let available = Instant::now();
    agent.send(&serde_json::json!({"type": "presence", "presence": "available"})).await?;
    agent.until("the first offer", |f| f["type"] == "offer").await?;
    let offer_ns = nanos(available.elapsed());
    agent.send(&serde_json::json!({"type": "presence", "presence": "away"})).await?;
    agent.until("the offer taken back", |f| f["type"] == "offer_withdrawn").await?;
    agent.close().await;
    Ok(offer_ns)
}

fn summarize(samples: &[Sample]) -> Starts {
    let ms = |f: fn(&Sample) -> u64| Percentiles::of(&mut samples.iter().map(f).collect::<Vec<_>>(), 1e6);
    Starts {
        listening_ms: ms(|s| s.listening_ns),
        hello_ms: ms(|s| s.hello_ns),
        ready_ms: ms(|s| s.ready_ns),
        offer_after_restart_ms: ms(|s| s.offer_ns),
        queue_positions: samples.iter().map(|s| s.position).collect(),
        rss_ready_kib: samples.iter().map(|s| s.rss_kib).fold(0.0, f64::max),
    }
}

/// The report as Markdown.
#[must_use]
pub fn markdown(r: &Report) -> String {
    let mut s = String::from("# Cold start with data (goal A5)\n\n");
    s.push_str(&r.run.markdown());
    let (f, st) = (&r.fill, &r.starts);
    let _ = writeln!(
        s,
        "\n{} open chats waiting in one service, {} log entries; {} starts, each stopped with SIGTERM. \
         Times from the spawn; ready = the probing visitor's `queue` frame (the engine has rebuilt the queue).\n",
        f.open_chats, f.log_entries, r.params.starts
    );
    let positions: Vec<String> = st.queue_positions.iter().map(u64::to_string).collect();
    let p50_max = |p: &Percentiles| format!("{:.1} / {:.1} ms", p.p50, p.max);
    s.push_str("| figure | value |\n| --- | --- |\n");
    let rows = [
        ("database on disk", format!("{:.1} MiB", f.db_bytes as f64 / 1_048_576.0)),
        ("fill: chats created (and queue entries)", format!("{} in {:.2} s", f.open_chats - 1, f.create_secs)),
        (
            "fill: messages appended",
            format!(
                "{} in {:.2} s, {} batches: {:.0} rows/s ({:.0} in the first tenth, {:.0} in the last)",
                f.appended,
                f.append_secs,
                f.batches,
                f.append_rows_per_sec,
                f.append_rows_per_sec_first_tenth,
                f.append_rows_per_sec_last_tenth
            ),
        ),
        ("**spawn → listening**, p50 / max", p50_max(&st.listening_ms)),
        ("spawn → visitor `hello`, p50 / max", p50_max(&st.hello_ms)),
        ("spawn → visitor `queue` frame (ready), p50 / max", p50_max(&st.ready_ms)),
        ("then an agent sets Available → first offer, p50 / max", p50_max(&st.offer_after_restart_ms)),
        ("probe's queue position, per start", format!("{} of {}", positions.join(", "), f.open_chats)),
        (
            "rebuild's store reads in process: queue entries / open chats",
            format!("{:.1} / {:.1} ms", r.rebuild_reads.queue_entries_ms, r.rebuild_reads.open_conversations_ms),
        ),
        ("RSS when ready, max", format!("{:.1} MiB", st.rss_ready_kib / 1024.0)),
    ];
    for (name, value) in rows {
        let _ = writeln!(s, "| {name} | {value} |");
    }
    let g = &r.goal;
    let verdict = if g.pass { "pass" } else { "FAIL" };
    s.push_str("\n| id | measure | value | goal | verdict |\n| --- | --- | --- | --- | --- |\n");
    let _ = writeln!(s, "| {} | {} | {:.1} ms | ≤ {} ms | {verdict} |", g.id, g.measure, g.value_ms, g.goal_ms);
    if let Some(dir) = &r.data_dir {
        let _ = writeln!(s, "\nData folder kept: `{}`.", dir.display());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_come_from_a_file_without_the_binary() {
        let p: Params =
            serde_json::from_str(r#"{"open_chats": 3, "messages": 10, "batch": 4, "starts": 1}"#).expect("params");
        assert_eq!((p.open_chats, p.messages, p.batch, p.starts), (3, 10, 4, 1));
        assert_eq!(p.parley_bin, PathBuf::new());
        assert!(
            serde_json::from_str::<Params>(r#"{"open_chats": 3, "messages": 10, "batch": 4, "starts": 1, "x": 0}"#)
                .is_err()
        );
    }

    #[test]
    fn messages_go_round_robin_with_unique_ids() {
        let tenant = TenantId::from_uuid(Uuid::nil());
        let chats = [ConversationId::from_uuid(Uuid::from_u128(1)), ConversationId::from_uuid(Uuid::from_u128(2))];
        let m = messages_of(tenant, &chats, 3..6, SystemClock.now());
        assert_eq!(m.iter().map(|e| e.conversation_id).collect::<Vec<_>>(), [chats[1], chats[0], chats[1]]);
        let ids: Vec<_> = m.iter().map(|e| e.client_msg_id.as_deref().expect("id")).collect();
        assert_eq!(ids, ["fill-3", "fill-4", "fill-5"]);
    }

    #[test]
    fn append_rates_compare_the_first_and_last_tenth() {
        let mut timed = vec![Timed { rows: 10, ns: 1_000_000 }; 20];
        timed[19] = Timed { rows: 5, ns: 1_000_000 };
        let (all, first, last) = append_rates(&timed);
        assert!((first - 10_000.0).abs() < 1e-6 && (last - 7_500.0).abs() < 1e-6, "{first} {last}");
        assert!((all - 195.0 / 0.02).abs() < 1e-6, "{all}");
        let (_, first, last) = append_rates(&timed[..1]);
        assert_eq!(first, last);
    }
}
