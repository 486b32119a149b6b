//! temporary
use parley_domain::*;
use parley_store::testing::*;
use parley_store::*;
use parley_domain::workflow::{Workflow, WorkflowDefinition, WorkflowKind};
use std::time::Instant;
use time::OffsetDateTime;
use uuid::Uuid;
use sqlx::{Connection, Executor};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench() {
    let (store, dir) = temp_sqlite().await;
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let tid = TenantId(Uuid::new_v4());
    let root = OrgUnit { id: OrgUnitId(Uuid::new_v4()), tenant_id: tid, name: "r".into(), parent_id: None };
    let t = Tenant { id: tid, slug: "a".into(), name: "a".into(), root_ou_id: root.id, created_at: now };
    let key = ApiKeyRecord { id: ApiKeyId(Uuid::new_v4()), tenant_id: tid, name: "k".into(), secret_hash: "h".into(), created_at: now };
    store.create_tenant(&t, &root, &key).await.unwrap();
    let wf = Workflow { id: WorkflowId(Uuid::new_v4()), tenant_id: tid, ou_id: root.id, name: "w".into(), kind: WorkflowKind::InstantMessaging, definition: WorkflowDefinition::accept_welcome_queue("hi"), created_at: now };
    store.create_workflow(&wf).await.unwrap();
    let svc = Service { id: ServiceId(Uuid::new_v4()), tenant_id: tid, ou_id: root.id, name: "s".into(), workflow_id: wf.id, contact_id: "c".into(), widget_key: "k".into(), created_at: now };
    store.create_service(&svc, &[]).await.unwrap();
    let mut convs = vec![];
    for _ in 0..100 {
        let c = Conversation { id: ConversationId(Uuid::new_v4()), tenant_id: tid, service_id: svc.id, workflow_id: wf.id, status: ConversationStatus::Connected, customer: Customer { display_name: "a".into(), email: "a@b.c".into(), privacy_consent: true }, first_message: None, agent_id: None, last_seq: 0, created_at: now, ended_at: None };
        store.create_conversation(&c, &VisitorCredential { token_hash: "x".into(), expires_at: now }).await.unwrap();
        convs.push(c);
    }
    let mut n = 0u64;
    for batch in [1usize, 10, 100] {
        let rounds = 20_000 / batch;
        let start = Instant::now();
        for r in 0..rounds {
            let entries: Vec<NewEntry> = (0..batch).map(|i| { n += 1; NewEntry { tenant_id: tid, conversation_id: convs[(r * batch + i) % 100].id, client_msg_id: Some(format!("k{n}")), body: EntryBody::Message { sender: Sender::Customer { name: "Ann".into() }, text: "hello there, how are you".into() }, created_at: now } }).collect();
            for o in store.append_batch(&entries).await { o.unwrap(); }
        }
        let el = start.elapsed();
        eprintln!("parley batch {batch}: {:.0} rows/s", (rounds * batch) as f64 / el.as_secs_f64());
    }
    // raw
    let url = format!("sqlite://{}", dir.path().join("raw.db").display());
    let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
    let mut conn = sqlx::SqliteConnection::connect_with(&opts.create_if_missing(true).journal_mode(sqlx::sqlite::SqliteJournalMode::Wal).synchronous(sqlx::sqlite::SqliteSynchronous::Full)).await.unwrap();
    conn.execute("CREATE TABLE t (c TEXT, seq INTEGER, body TEXT, created_at INTEGER, PRIMARY KEY (c, seq)) WITHOUT ROWID").await.unwrap();
    let mut seq = 0i64;
    for batch in [1usize, 10, 100] {
        let rounds = 20_000 / batch;
        let start = Instant::now();
        for _ in 0..rounds {
            let mut tx = conn.begin().await.unwrap();
            for _ in 0..batch { seq += 1; sqlx::query("INSERT INTO t VALUES ($1, $2, $3, $4)").bind("conv").bind(seq).bind("{\"kind\":\"message\",\"text\":\"hello there\"}").bind(1i64).execute(&mut *tx).await.unwrap(); }
            tx.commit().await.unwrap();
        }
        let el = start.elapsed();
        eprintln!("raw batch {batch}: {:.0} rows/s", (rounds * batch) as f64 / el.as_secs_f64());
    }
}
