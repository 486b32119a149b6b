//! The conformance suite: what every `Store` implementation must do, written once as stories over
//! `Arc<dyn Store>` and run on each backend. SQLite runs always; PostgreSQL runs when
//! `PARLEY_TEST_DATABASE_URL` names a server (each test gets its own fresh database) and is
//! otherwise skipped with a note on stderr, so the suite stays green on a machine without one.

// Test code: a failed expectation is the report (clippy.toml allows this inside #[test] only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use parley_domain::calendar::{Calendar, Category, OpeningCalendar, Period, Rule, Weekday};
use parley_domain::workflow::{Priority, Workflow, WorkflowDefinition, WorkflowKind, WorkflowVersion};
use parley_domain::{
    ApiKeyId, CalendarId, Conversation, ConversationEvent, ConversationId, ConversationStatus, CustomParameter,
    Customer, DirectChat, DirectChatSettings, DomainTemplate, DomainTemplateId, EntryBody, Licence, LogEntry,
    Membership, OrgUnit, OrgUnitId, Outcome, Presence, Sender, Service, ServiceId, ServiceSession, Skill, SkillId,
    Tenant, TenantId, User, UserId, UserOutcome, UserSession, UserSkill, WidgetAccess, WorkflowId,
};
use parley_domain::{Attachment, AttachmentId, Reader, Receipts, SystemMessages, SystemMessagesId, Watermark};
use parley_domain::{Code, CodeId, ServiceCodes, WrapUp};
use parley_store::testing::{
    POSTGRES_URL_ENV, drop_postgres_db, fresh_postgres_url, open_migrated, postgres_test_url, sqlite_url_in,
    temp_sqlite,
};
use parley_store::{
    AgentSession, ApiKeyRecord, Appended, AttachmentRecord, Backend, ConversationLog, EngineWrite, NewEntry,
    QueueEntry, ReportWindow, Result, Store, StoreError, VisitorCredential,
};
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;
use std::cmp::Reverse;
use std::fmt::Debug;
use std::future::Future;
use std::path::Path;
use std::slice;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Running each story on both backends

async fn on_sqlite<F, Fut>(story: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let (store, _dir) = temp_sqlite().await;
    assert_eq!(store.backend(), Backend::Sqlite);
    story(Arc::clone(&store)).await;
    store.close().await;
}

async fn on_postgres<F, Fut>(story: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(base) = postgres_test_url() else {
        eprintln!("note: {POSTGRES_URL_ENV} is not set; the PostgreSQL run of this story is skipped");
        return;
    };
    let url = fresh_postgres_url(&base).await;
    let store = open_migrated(&url).await;
    assert_eq!(store.backend(), Backend::Postgres);
    story(Arc::clone(&store)).await;
    store.close().await;
    drop_postgres_db(&base, &url).await;
}

/// One module per story, holding its `on_sqlite` and `on_postgres` runs, so test names read as
/// `story_sentence::on_backend`.
macro_rules! conformance {
    ($($name:ident => $story:ident;)*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                super::on_sqlite(super::$story).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                super::on_postgres(super::$story).await;
            }
        }
    )*};
}

conformance! {
    a_returning_customers_last_agent_is_found_within_the_lookback_only => story_last_agent;
    the_store_migrates_idempotently_and_answers_ping => story_migrate_and_ping;
    tenants_are_created_found_and_listed => story_tenants;
    a_taken_slug_conflicts_and_leaves_nothing_behind => story_slug_conflict;
    api_keys_are_found_by_id => story_api_keys;
    org_units_are_listed_root_first_in_insertion_order => story_org_units;
    users_are_created_listed_and_found_for_login => story_users;
    agent_sessions_are_created_found_and_deleted => story_sessions;
    workflows_round_trip_their_draft => story_workflows;
    published_versions_are_listed_oldest_first_and_move_the_current_version => story_workflow_versions;
    a_workflow_created_with_its_first_version_is_published_atomically => story_create_with_first_version;
    a_draft_update_changes_name_draft_and_time_but_no_version => story_draft_update;
    parameters_are_unique_per_tenant_and_changed_in_place => story_parameters;
    calendars_round_trip_their_json_and_stay_while_a_service_names_them => story_calendars;
    services_are_updated_in_place_with_their_references_checked => story_update_service;
    conversations_are_transferred_and_record_their_outcome => story_transfer_and_outcome;
    services_are_created_with_their_members_atomically => story_services;
    memberships_are_upserted_removed_and_listed => story_memberships;
    conversations_are_stored_updated_and_listed => story_conversations;
    log_assigns_gapless_seq_per_conversation => story_gapless_seq;
    a_repeated_client_msg_id_returns_the_original_entry => story_idempotent_append;
    an_ended_conversation_takes_no_more_messages_but_still_answers_duplicates => story_ended_refuses_messages;
    an_unknown_conversation_fails_only_its_own_entry => story_unknown_conversation;
    read_log_pages_with_since_seq_and_limit => story_read_log;
    timestamps_round_trip_at_microsecond_precision => story_timestamps;
    tenants_cannot_read_or_change_each_others_rows => story_tenant_isolation;
    concurrent_appenders_get_every_seq_once_in_order => story_concurrent_appends;
    queue_entries_round_trip_and_a_second_set_replaces_the_first => story_queue_entries;
    an_engine_commit_writes_every_effect_or_none => story_engine_commit_is_atomic;
    engine_state_round_trips_is_replaced_and_forgotten_per_tenant => story_engine_state;
    a_queue_entry_leaves_the_list_once_its_conversation_has_ended => story_queue_entry_of_ended_conversation;
    queue_entries_are_kept_apart_per_tenant => story_queue_entry_isolation;
    user_sessions_round_trip_exactly => story_user_sessions_round_trip;
    service_sessions_round_trip_exactly => story_service_sessions_round_trip;
    session_lists_keep_to_their_window_newest_first_up_to_the_limit => story_session_windows;
    session_lists_filter_by_user_and_by_service => story_session_filters;
    sessions_naming_another_tenants_rows_are_refused_as_not_found => story_session_references;
    a_tenant_never_sees_another_tenants_sessions => story_session_isolation;
    a_repeated_session_id_conflicts_and_keeps_the_original => story_session_conflicts;
    skills_round_trip_and_are_listed_by_name_in_any_case => story_skills;
    a_skill_name_taken_in_any_case_conflicts_within_its_tenant_only => story_skill_names;
    a_users_skills_are_replaced_as_a_whole_or_not_at_all => story_user_skills;
    a_skill_cannot_be_deleted_while_a_user_holds_it => story_delete_skill;
    a_tenant_never_sees_or_changes_another_tenants_skills => story_skill_isolation;
    domain_templates_round_trip_their_origins_and_are_listed_by_creation => story_domain_templates;
    domain_templates_are_changed_and_deleted_in_place => story_domain_template_changes;
    a_tenant_never_sees_or_changes_another_tenants_domain_templates => story_domain_template_isolation;
    a_services_access_settings_round_trip_through_create_and_update => story_service_access;
    receipt_marks_only_grow_stay_within_the_log_and_reading_implies_delivery => story_receipts;
    a_tenant_never_sees_or_moves_another_tenants_receipts => story_receipt_isolation;
    attachments_round_trip_and_a_repeated_id_conflicts => story_attachments;
    attachments_are_found_only_in_their_own_tenant_and_conversation => story_attachment_isolation;
    a_direct_conversation_names_its_user_and_neither_service_nor_workflow => story_direct_conversation;
    a_conversation_names_a_service_with_its_workflow_or_a_user_of_its_tenant_alone => story_direct_conversation_shapes;
    user_sessions_of_direct_chats_have_no_service_and_round_trip => story_direct_user_sessions;
    a_users_personal_snippet_round_trips_and_its_settings_change_in_place => story_personal_snippet;
    a_user_is_found_by_their_snippets_contact_id_from_any_tenant => story_find_user_by_contact_id;
    regenerating_a_widget_key_changes_only_that_key_and_only_in_its_own_tenant => story_regenerated_widget_keys;
    system_messages_round_trip_link_to_services_and_stay_in_their_tenant => story_system_messages;
    a_conversation_keeps_its_customers_language_and_the_agents_alias => story_customer_language;
    a_contact_id_is_unique_across_the_services_and_users_of_every_tenant => story_contact_id_conflicts;
    codes_round_trip_are_listed_by_name_and_their_names_are_unique_in_any_case => story_codes;
    a_services_code_lists_and_a_conversations_wrap_up_round_trip_in_their_tenant => story_wrap_up;
}

// ---------------------------------------------------------------------------------------------
// Fixtures: fixed times, fresh ids

/// 2023-11-14T22:13:20Z; every time in the suite is an offset from it (tests never read clocks).
const T0: i64 = 1_700_000_000;

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(T0 + secs).expect("a valid time")
}

fn at_micros(secs: i64, micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from((T0 + secs) * 1_000_000 + micros) * 1000)
        .expect("a valid time")
}

fn new_id() -> Uuid {
    Uuid::new_v4()
}

fn tenant(slug: &str, created: i64) -> (Tenant, OrgUnit, ApiKeyRecord) {
    let id = TenantId(new_id());
    let root = OrgUnit { id: OrgUnitId(new_id()), tenant_id: id, name: "Root".into(), parent_id: None };
    let t =
        Tenant { id, slug: slug.into(), name: format!("Tenant {slug}"), root_ou_id: root.id, created_at: at(created) };
    let key = ApiKeyRecord {
        id: ApiKeyId(new_id()),
        tenant_id: id,
        name: "bootstrap".into(),
        secret_hash: format!("hash-of-{slug}"),
        created_at: at(created),
    };
    (t, root, key)
}

fn user(tenant: TenantId, ou: OrgUnitId, email: &str, created: i64) -> User {
    let id = UserId(new_id());
    User {
        id,
        tenant_id: tenant,
        ou_id: ou,
        display_name: format!("Agent {email}"),
        email: email.into(),
        licences: vec![Licence::ContactCenter, Licence::InstantMessaging],
        im_enabled: true,
        max_chats: 3,
        presence: Presence::Offline,
        direct: DirectChat::new(format!("user-{}", id.0.simple()), format!("key-of-{email}")),
        created_at: at(created),
    }
}

/// A workflow never published (`current_version` is `None`).
fn workflow(tenant: TenantId, ou: OrgUnitId, created: i64) -> Workflow {
    Workflow {
        id: WorkflowId(new_id()),
        tenant_id: tenant,
        ou_id: ou,
        name: "Welcome".into(),
        kind: WorkflowKind::InstantMessaging,
        draft: WorkflowDefinition::accept_welcome_queue("Welcome, \"dear\" customer ✓"),
        current_version: None,
        created_at: at(created),
        updated_at: at(created),
    }
}

/// Version `n` of `wf`, publishing its draft.
fn version(wf: &Workflow, n: u32, published: i64) -> WorkflowVersion {
    WorkflowVersion {
        workflow_id: wf.id,
        tenant_id: wf.tenant_id,
        version: n,
        definition: wf.draft.clone(),
        published_at: at(published),
        restored_from: None,
    }
}

/// A workflow created with its draft published as version 1, as stored.
async fn published_workflow(store: &dyn Store, tenant: TenantId, ou: OrgUnitId, created: i64) -> Workflow {
    let wf = Workflow { current_version: Some(1), ..workflow(tenant, ou, created) };
    store.create_workflow(&wf, Some(&version(&wf, 1, created))).await.expect("create published workflow");
    wf
}

/// A definition that differs from the fixture's, to tell versions apart.
fn definition(welcome: &str) -> WorkflowDefinition {
    WorkflowDefinition::accept_welcome_queue(welcome)
}

fn parameter(tenant: TenantId, ou: OrgUnitId, id: &str, created: i64) -> CustomParameter {
    CustomParameter {
        id: id.into(),
        tenant_id: tenant,
        ou_id: ou,
        name: format!("Parameter {id}"),
        default_value: format!("default of {id} ✓"),
        created_at: at(created),
    }
}

fn opening_calendar(tenant: TenantId, ou: OrgUnitId, name: &str, created: i64) -> OpeningCalendar {
    let period = |category, rule| Period { category, rule };
    OpeningCalendar {
        id: CalendarId(new_id()),
        tenant_id: tenant,
        ou_id: ou,
        name: name.into(),
        calendar: Calendar {
            time_zone: "Europe/Zurich".into(),
            default_category: Category::Closed,
            periods: vec![
                period(
                    Category::Open,
                    Rule::Weekly {
                        days: vec![Weekday::Mon, Weekday::Tue, Weekday::Fri],
                        start: "08:00".into(),
                        end: "17:30".into(),
                    },
                ),
                period(Category::Holiday, Rule::Annual { month: 12, day: 25, start: None, end: None }),
                period(
                    Category::Special3,
                    Rule::Annual { month: 2, day: 29, start: Some("22:00".into()), end: Some("02:00".into()) },
                ),
                period(
                    Category::Special1,
                    Rule::Dates { start: "2024-01-02T09:00".into(), end: "2024-01-02T12:00".into() },
                ),
            ],
        },
        created_at: at(created),
    }
}

fn domain_template(tenant: TenantId, ou: OrgUnitId, name: &str, created: i64) -> DomainTemplate {
    DomainTemplate {
        id: DomainTemplateId(new_id()),
        tenant_id: tenant,
        ou_id: ou,
        name: name.into(),
        origins: vec!["https://www.example.com".into(), "https://*.example.com".into(), "http://localhost:8080".into()],
        created_at: at(created),
    }
}

fn service(tenant: TenantId, ou: OrgUnitId, wf: WorkflowId, created: i64) -> Service {
    let id = ServiceId(new_id());
    Service {
        id,
        tenant_id: tenant,
        ou_id: ou,
        name: "Support".into(),
        workflow_id: wf,
        contact_id: format!("contact-{}", id.0.simple()),
        widget_key: "widget-key".into(),
        primary_calendar_id: None,
        secondary_calendar_id: None,
        routing: Default::default(),
        access: Default::default(),
        system_messages_id: None,
        codes: Default::default(),
        created_at: at(created),
    }
}

fn conversation(s: &Service, created: i64) -> Conversation {
    Conversation {
        id: ConversationId(new_id()),
        tenant_id: s.tenant_id,
        service_id: Some(s.id),
        workflow_id: Some(s.workflow_id),
        workflow_version: Some(1),
        direct_user_id: None,
        status: ConversationStatus::Workflow,
        customer: Customer {
            display_name: "Ann".into(),
            email: "ann@example.com".into(),
            privacy_consent: true,
            language: None,
        },
        first_message: Some("Hello?".into()),
        agent_id: None,
        last_seq: 0,
        created_at: at(created),
        ended_at: None,
        outcome: None,
        outcome_reason: None,
        agent_alias: None,
        wrap_up: None,
    }
}

fn credential(tag: &str) -> VisitorCredential {
    VisitorCredential { token_hash: format!("visitor-{tag}"), expires_at: at(86_400) }
}

fn text(t: &str) -> EntryBody {
    EntryBody::Message { sender: Sender::Customer { name: "Ann".into() }, text: t.into(), attachment: None }
}

fn entry(c: &Conversation, key: Option<&str>, body: &str, created: i64) -> NewEntry {
    NewEntry {
        tenant_id: c.tenant_id,
        conversation_id: c.id,
        client_msg_id: key.map(str::to_owned),
        body: text(body),
        created_at: at(created),
    }
}

/// A tenant with one agent, one workflow (published as version 1), one service (the agent a
/// member) and one conversation.
struct World {
    tenant: Tenant,
    root: OrgUnit,
    key: ApiKeyRecord,
    agent: User,
    workflow: Workflow,
    service: Service,
    conversation: Conversation,
}

async fn world(store: &dyn Store, slug: &str) -> World {
    let (tenant, root, key) = tenant(slug, 0);
    store.create_tenant(&tenant, &root, &key).await.expect("create tenant");
    let agent = user(tenant.id, root.id, &format!("agent@{slug}.example"), 1);
    store.create_user(&agent, Some("argon2-hash")).await.expect("create user");
    let workflow = published_workflow(store, tenant.id, root.id, 2).await;
    let service = service(tenant.id, root.id, workflow.id, 3);
    let member = Membership { service_id: service.id, user_id: agent.id, active: true };
    store.create_service(&service, &[member]).await.expect("create service");
    let conversation = conversation(&service, 4);
    store.create_conversation(&conversation, &credential(slug)).await.expect("create conversation");
    World { tenant, root, key, agent, workflow, service, conversation }
}

#[track_caller]
fn assert_not_found<T: Debug>(r: Result<T>, what: &str) {
    assert!(matches!(r, Err(StoreError::NotFound)), "{what}: expected NotFound, got {r:?}");
}

#[track_caller]
fn assert_conflict<T: Debug>(r: Result<T>, name: &str) {
    assert!(matches!(&r, Err(StoreError::Conflict(n)) if *n == name), "expected Conflict({name}), got {r:?}");
}

fn appended(r: &Result<Appended>) -> &Appended {
    r.as_ref().unwrap_or_else(|e| panic!("append failed: {e}"))
}

async fn seqs(store: &dyn Store, c: &Conversation) -> Vec<i64> {
    store.read_log(c.tenant_id, c.id, 0, 10_000).await.expect("read log").iter().map(|e| e.seq).collect()
}

// ---------------------------------------------------------------------------------------------
// Stories

async fn story_migrate_and_ping(store: Arc<dyn Store>) {
    store.migrate().await.expect("a second migrate is a no-op");
    store.ping().await.expect("ping");
}

async fn story_tenants(store: Arc<dyn Store>) {
    let (a, a_root, a_key) = tenant("acme", 20);
    let (b, b_root, b_key) = tenant("globex", 10);
    store.create_tenant(&a, &a_root, &a_key).await.unwrap();
    store.create_tenant(&b, &b_root, &b_key).await.unwrap();

    assert_eq!(store.get_tenant(a.id).await.unwrap(), a);
    assert_eq!(store.find_tenant_by_slug("globex").await.unwrap(), b);
    assert_eq!(store.list_tenants().await.unwrap(), [b.clone(), a.clone()], "ordered by created_at");
    assert_eq!(store.list_org_units(a.id).await.unwrap(), slice::from_ref(&a_root));
    assert_eq!(store.get_org_unit(a.id, a_root.id).await.unwrap(), a_root);
    assert_eq!(store.find_api_key(a_key.id).await.unwrap(), a_key);

    assert_not_found(store.get_tenant(TenantId(new_id())).await, "unknown tenant");
    assert_not_found(store.find_tenant_by_slug("initech").await, "unknown slug");
}

async fn story_slug_conflict(store: Arc<dyn Store>) {
    let (a, a_root, a_key) = tenant("acme", 0);
    store.create_tenant(&a, &a_root, &a_key).await.unwrap();

    let (mut b, b_root, b_key) = tenant("acme", 1);
    assert_conflict(store.create_tenant(&b, &b_root, &b_key).await, "tenant_slug");
    assert_not_found(store.get_tenant(b.id).await, "the refused tenant");
    assert_not_found(store.get_org_unit(b.id, b_root.id).await, "the refused tenant's root unit");
    assert_not_found(store.find_api_key(b_key.id).await, "the refused tenant's key");
    assert_eq!(store.list_tenants().await.unwrap(), slice::from_ref(&a));

    // Nothing of the failed attempt lingers: the very same ids go through with a free slug.
    b.slug = "acme-2".into();
    store.create_tenant(&b, &b_root, &b_key).await.unwrap();
    assert_eq!(store.find_api_key(b_key.id).await.unwrap(), b_key);
    assert_eq!(store.get_tenant(a.id).await.unwrap(), a, "the first tenant is untouched");
}

async fn story_api_keys(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let second = ApiKeyRecord {
        id: ApiKeyId(new_id()),
        tenant_id: w.tenant.id,
        name: "ci".into(),
        secret_hash: "f00d".into(),
        created_at: at(50),
    };
    store.create_api_key(&second).await.unwrap();
    assert_eq!(store.find_api_key(second.id).await.unwrap(), second);
    assert_eq!(store.find_api_key(w.key.id).await.unwrap(), w.key);
    assert_not_found(store.find_api_key(ApiKeyId(new_id())).await, "unknown key");
    assert_conflict(store.create_api_key(&second).await, "api_key_id");

    let orphan = ApiKeyRecord { id: ApiKeyId(new_id()), tenant_id: TenantId(new_id()), ..second };
    assert_not_found(store.create_api_key(&orphan).await, "key of an unknown tenant");
}

async fn story_org_units(store: Arc<dyn Store>) {
    let (t, root, key) = tenant("acme", 0);
    store.create_tenant(&t, &root, &key).await.unwrap();
    // Ids in descending order, so a list ordered by id instead of insertion would come out backwards.
    let mut ids = [new_id(), new_id()];
    ids.sort_unstable_by(|x, y| y.cmp(x));
    let child = OrgUnit { id: OrgUnitId(ids[0]), tenant_id: t.id, name: "Sales".into(), parent_id: Some(root.id) };
    let grandchild =
        OrgUnit { id: OrgUnitId(ids[1]), tenant_id: t.id, name: "Inside".into(), parent_id: Some(child.id) };
    store.create_org_unit(&child).await.unwrap();
    store.create_org_unit(&grandchild).await.unwrap();

    assert_eq!(store.get_org_unit(t.id, grandchild.id).await.unwrap(), grandchild);
    assert_eq!(store.list_org_units(t.id).await.unwrap(), [root, child.clone(), grandchild]);
    assert_not_found(store.get_org_unit(t.id, OrgUnitId(new_id())).await, "unknown unit");
    assert_conflict(store.create_org_unit(&child).await, "org_unit_id");

    let dangling =
        OrgUnit { id: OrgUnitId(new_id()), tenant_id: t.id, name: "x".into(), parent_id: Some(OrgUnitId(new_id())) };
    assert_not_found(store.create_org_unit(&dangling).await, "unit under an unknown parent");
}

async fn story_users(store: Arc<dyn Store>) {
    let (t, root, key) = tenant("acme", 0);
    store.create_tenant(&t, &root, &key).await.unwrap();
    let ann = User {
        licences: vec![Licence::InstantMessaging, Licence::Interact],
        max_chats: 7,
        ..user(t.id, root.id, "ann@acme.example", 20)
    };
    let bob = User { im_enabled: false, licences: vec![], ..user(t.id, root.id, "bob@acme.example", 10) };
    store.create_user(&ann, Some("$argon2id$ann")).await.unwrap();
    store.create_user(&bob, None).await.unwrap();

    assert_eq!(store.get_user(t.id, ann.id).await.unwrap(), ann);
    assert_eq!(store.list_users(t.id).await.unwrap(), [bob.clone(), ann.clone()], "ordered by created_at");
    assert_eq!(
        store.find_user_login(t.id, "ann@acme.example").await.unwrap(),
        (ann.clone(), Some("$argon2id$ann".into()))
    );
    assert_eq!(store.find_user_login(t.id, "bob@acme.example").await.unwrap(), (bob.clone(), None));
    assert_not_found(store.find_user_login(t.id, "eve@acme.example").await, "unknown e-mail");
    assert_not_found(store.get_user(t.id, UserId(new_id())).await, "unknown user");

    let twin = user(t.id, root.id, "ann@acme.example", 30);
    assert_conflict(store.create_user(&twin, None).await, "user_email");
    // A fresh e-mail and Contact ID, so the id is the only rule broken (which of several broken
    // rules a backend reports first is not part of the contract).
    let ann_again =
        User { email: "ann2@acme.example".into(), direct: DirectChat::new("fresh-contact", "k"), ..ann.clone() };
    assert_conflict(store.create_user(&ann_again, None).await, "user_id");

    // E-mails are unique per tenant, not across the installation.
    let (other, other_root, other_key) = tenant("globex", 0);
    store.create_tenant(&other, &other_root, &other_key).await.unwrap();
    store.create_user(&user(other.id, other_root.id, "ann@acme.example", 0), None).await.unwrap();

    store.set_presence(t.id, ann.id, Presence::Available).await.unwrap();
    assert_eq!(store.get_user(t.id, ann.id).await.unwrap().presence, Presence::Available);
    store.set_presence(t.id, ann.id, Presence::Away).await.unwrap();
    assert_eq!(store.find_user_login(t.id, "ann@acme.example").await.unwrap().0.presence, Presence::Away);
    assert_eq!(store.get_user(t.id, bob.id).await.unwrap().presence, Presence::Offline, "only Ann changed");
    assert_not_found(store.set_presence(t.id, UserId(new_id()), Presence::Busy).await, "presence of an unknown user");
}

async fn story_sessions(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let session = AgentSession {
        token_hash: "cookie-hash".into(),
        tenant_id: w.tenant.id,
        user_id: w.agent.id,
        created_at: at(100),
        expires_at: at(100 + 3600),
    };
    store.create_session(&session).await.unwrap();
    assert_eq!(store.find_session("cookie-hash").await.unwrap(), session);
    assert_conflict(store.create_session(&session).await, "session_token");
    assert_not_found(store.find_session("other-hash").await, "unknown session");

    store.delete_session("cookie-hash").await.unwrap();
    assert_not_found(store.find_session("cookie-hash").await, "deleted session");
    store.delete_session("cookie-hash").await.expect("signing out twice is fine");

    let stranger = AgentSession { token_hash: "h2".into(), user_id: UserId(new_id()), ..session };
    assert_not_found(store.create_session(&stranger).await, "session of an unknown user");
}

async fn story_workflows(store: Arc<dyn Store>) {
    let (t, root, key) = tenant("acme", 0);
    store.create_tenant(&t, &root, &key).await.unwrap();
    let late = workflow(t.id, root.id, 20);
    // A draft may break the validation rules (here: a dangling Message); it is stored as given.
    let mut early = workflow(t.id, root.id, 10);
    early.name = "Early".into();
    early.draft.nodes[1].exits.clear();
    early.draft.nodes.truncate(2);
    early.updated_at = at(15);
    store.create_workflow(&late, None).await.unwrap();
    store.create_workflow(&early, None).await.unwrap();

    let got = store.get_workflow(t.id, late.id).await.unwrap();
    assert_eq!(got, late);
    assert_eq!(got.draft, WorkflowDefinition::accept_welcome_queue("Welcome, \"dear\" customer ✓"));
    assert_eq!(got.current_version, None, "never published");
    assert_eq!(store.get_workflow(t.id, early.id).await.unwrap(), early);
    assert_eq!(store.list_workflows(t.id).await.unwrap(), [early, late.clone()], "ordered by created_at");
    assert!(store.list_workflow_versions(t.id, late.id).await.unwrap().is_empty());
    assert_not_found(store.get_workflow(t.id, WorkflowId(new_id())).await, "unknown workflow");
    assert_conflict(store.create_workflow(&late, None).await, "workflow_id");
}

async fn story_workflow_versions(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let t = a.tenant.id;
    let mut wf = workflow(t, a.root.id, 10);
    store.create_workflow(&wf, None).await.unwrap();
    assert_not_found(store.get_workflow_version(t, wf.id, 1).await, "a version never published");

    let v1 = version(&wf, 1, 20);
    store.publish_workflow_version(&v1).await.unwrap();
    wf.current_version = Some(1);
    assert_eq!(store.get_workflow(t, wf.id).await.unwrap(), wf, "only current_version moved");
    let v2 = WorkflowVersion { definition: definition("Second"), ..version(&wf, 2, 30) };
    store.publish_workflow_version(&v2).await.unwrap();
    // A rollback re-publishes an older version's definition under the next number.
    let v3 = WorkflowVersion { restored_from: Some(1), ..version(&wf, 3, 40) };
    store.publish_workflow_version(&v3).await.unwrap();

    assert_eq!(store.get_workflow(t, wf.id).await.unwrap().current_version, Some(3));
    assert_eq!(store.list_workflow_versions(t, wf.id).await.unwrap(), [v1.clone(), v2.clone(), v3.clone()]);
    assert_eq!(store.get_workflow_version(t, wf.id, 2).await.unwrap(), v2);
    assert_eq!(store.get_workflow_version(t, wf.id, 3).await.unwrap(), v3);
    assert_eq!(
        store.list_workflow_versions(t, a.workflow.id).await.unwrap(),
        [version(&a.workflow, 1, 2)],
        "versions are per workflow"
    );

    // A concurrent publish that lost the race for a number changes nothing, not even the
    // current version (the insert and the move are one transaction).
    let late_two = WorkflowVersion { definition: definition("Lost race"), ..version(&wf, 2, 50) };
    assert_conflict(store.publish_workflow_version(&late_two).await, "workflow_version");
    assert_eq!(store.get_workflow_version(t, wf.id, 2).await.unwrap(), v2);
    assert_eq!(store.get_workflow(t, wf.id).await.unwrap().current_version, Some(3));

    // Restoring a version that was never published is a reference to nothing.
    let bogus = WorkflowVersion { restored_from: Some(9), ..version(&wf, 4, 60) };
    assert_not_found(store.publish_workflow_version(&bogus).await, "restored from an unknown version");
    assert_not_found(store.get_workflow_version(t, wf.id, 4).await, "the refused version");
    assert_eq!(store.get_workflow(t, wf.id).await.unwrap().current_version, Some(3));

    let ghost = WorkflowVersion { workflow_id: WorkflowId(new_id()), ..version(&wf, 1, 70) };
    assert_not_found(store.publish_workflow_version(&ghost).await, "a version of an unknown workflow");
    assert!(store.list_workflow_versions(t, ghost.workflow_id).await.unwrap().is_empty());

    // Another tenant's workflow: not publishable, not readable, not listed.
    let smuggled = WorkflowVersion { tenant_id: t, ..version(&b.workflow, 2, 80) };
    assert_not_found(store.publish_workflow_version(&smuggled).await, "a version of B's workflow as A");
    assert_not_found(store.get_workflow_version(t, b.workflow.id, 1).await, "B's version read as A");
    assert!(store.list_workflow_versions(t, b.workflow.id).await.unwrap().is_empty());
    assert_not_found(store.get_workflow_version(b.tenant.id, wf.id, 1).await, "A's version read as B");
    assert_eq!(store.get_workflow(b.tenant.id, b.workflow.id).await.unwrap(), b.workflow);
    assert_eq!(store.list_workflow_versions(b.tenant.id, b.workflow.id).await.unwrap(), [version(&b.workflow, 1, 2)]);
}

async fn story_create_with_first_version(store: Arc<dyn Store>) {
    let (t, root, key) = tenant("acme", 0);
    store.create_tenant(&t, &root, &key).await.unwrap();
    let wf = Workflow { current_version: Some(1), ..workflow(t.id, root.id, 10) };
    let v1 = version(&wf, 1, 10);
    store.create_workflow(&wf, Some(&v1)).await.unwrap();
    assert_eq!(store.get_workflow(t.id, wf.id).await.unwrap(), wf);
    assert_eq!(store.list_workflow_versions(t.id, wf.id).await.unwrap(), slice::from_ref(&v1));
    assert_conflict(store.create_workflow(&wf, Some(&v1)).await, "workflow_id");
    assert_eq!(store.list_workflow_versions(t.id, wf.id).await.unwrap(), [v1]);

    // When the first version cannot be written, neither is the workflow.
    let doomed = Workflow { current_version: Some(1), ..workflow(t.id, root.id, 20) };
    let broken = WorkflowVersion { restored_from: Some(7), ..version(&doomed, 1, 20) };
    assert_not_found(store.create_workflow(&doomed, Some(&broken)).await, "first version restored from nothing");
    assert_not_found(store.get_workflow(t.id, doomed.id).await, "the workflow of the failed create");

    // The workflow and its first version must agree; the store does not guess.
    let unpublished = workflow(t.id, root.id, 30);
    let refused = [
        (unpublished.clone(), Some(version(&unpublished, 1, 30))),
        (Workflow { current_version: Some(1), ..unpublished.clone() }, None),
        (Workflow { current_version: Some(2), ..unpublished.clone() }, Some(version(&unpublished, 2, 30))),
        (Workflow { current_version: Some(1), ..unpublished.clone() }, Some(version(&wf, 1, 30))),
    ];
    for (w, first) in refused {
        let r = store.create_workflow(&w, first.as_ref()).await;
        assert!(matches!(r, Err(StoreError::Other(_))), "{:?} with {first:?}: {r:?}", w.current_version);
    }
    assert_not_found(store.get_workflow(t.id, unpublished.id).await, "the refused workflow");
    assert_eq!(store.list_workflows(t.id).await.unwrap(), [wf]);
}

async fn story_draft_update(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let t = a.tenant.id;
    let draft = definition("Edited, not yet published");
    store.update_workflow_draft(t, a.workflow.id, "Renamed", &draft, at_micros(50, 5)).await.unwrap();

    let expected =
        Workflow { name: "Renamed".into(), draft: draft.clone(), updated_at: at_micros(50, 5), ..a.workflow.clone() };
    assert_eq!(store.get_workflow(t, a.workflow.id).await.unwrap(), expected, "created_at and current_version kept");
    assert_eq!(
        store.list_workflow_versions(t, a.workflow.id).await.unwrap(),
        [version(&a.workflow, 1, 2)],
        "the published version keeps the old definition"
    );

    assert_not_found(
        store.update_workflow_draft(t, WorkflowId(new_id()), "x", &draft, at(60)).await,
        "draft of an unknown workflow",
    );
    assert_not_found(
        store.update_workflow_draft(t, b.workflow.id, "x", &draft, at(60)).await,
        "draft of B's workflow as A",
    );
    assert_eq!(store.get_workflow(b.tenant.id, b.workflow.id).await.unwrap(), b.workflow);
}

async fn story_parameters(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let t = a.tenant.id;
    // Listed by id byte-wise (upper case, then `_`, then lower case), whatever the database's
    // collation; inserted in another order.
    let ids = ["order_no", "_tmp", "alpha", "Zeta", "A_1"];
    let mut params: Vec<_> = ids.iter().zip(1..).map(|(id, n)| parameter(t, a.root.id, id, 10 - n)).collect();
    params[0].default_value = String::new();
    for p in &params {
        store.create_parameter(p).await.unwrap();
    }
    params.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(store.list_parameters(t).await.unwrap(), params);
    let order_no = params.iter().find(|p| p.id == "order_no").unwrap().clone();
    assert_eq!(store.get_parameter(t, "order_no").await.unwrap(), order_no);
    assert_not_found(store.get_parameter(t, "ORDER_NO").await, "ids are case-sensitive");

    assert_conflict(store.create_parameter(&parameter(t, a.root.id, "order_no", 20)).await, "parameter_id");
    // Ids are unique per tenant: B may use the same one.
    let b_order_no = parameter(b.tenant.id, b.root.id, "order_no", 20);
    store.create_parameter(&b_order_no).await.unwrap();

    // Only name and default change, whatever else the caller passes.
    let changed = CustomParameter {
        name: "Order number".into(),
        default_value: "0000".into(),
        ou_id: OrgUnitId(new_id()),
        created_at: at(99),
        ..order_no.clone()
    };
    store.update_parameter(&changed).await.unwrap();
    let expected = CustomParameter { name: "Order number".into(), default_value: "0000".into(), ..order_no.clone() };
    assert_eq!(store.get_parameter(t, "order_no").await.unwrap(), expected);
    assert_not_found(
        store.update_parameter(&parameter(t, a.root.id, "missing", 0)).await,
        "update of an unknown parameter",
    );

    store.delete_parameter(t, "alpha").await.unwrap();
    assert_not_found(store.get_parameter(t, "alpha").await, "the deleted parameter");
    assert_not_found(store.delete_parameter(t, "alpha").await, "deleting twice");
    assert_eq!(store.list_parameters(t).await.unwrap().len(), 4);

    assert_not_found(
        store.create_parameter(&parameter(t, OrgUnitId(new_id()), "lost", 0)).await,
        "parameter in an unknown unit",
    );
    assert_not_found(store.create_parameter(&parameter(t, b.root.id, "lost", 0)).await, "parameter in B's unit");

    // B sees, changes and deletes only its own parameter of that id.
    let tb = b.tenant.id;
    assert_not_found(store.get_parameter(tb, "Zeta").await, "A's parameter read as B");
    let hijack = CustomParameter { tenant_id: tb, name: "hijacked".into(), ..params[1].clone() };
    assert_not_found(store.update_parameter(&hijack).await, "A's parameter changed as B");
    assert_not_found(store.delete_parameter(tb, "Zeta").await, "A's parameter deleted as B");
    store.delete_parameter(tb, "order_no").await.unwrap();
    assert!(store.list_parameters(tb).await.unwrap().is_empty());
    assert_eq!(store.get_parameter(t, "order_no").await.unwrap(), expected, "A's twin is untouched");
    assert_eq!(store.get_parameter(t, "Zeta").await.unwrap(), params[1]);
}

async fn story_calendars(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let t = a.tenant.id;
    let hours = opening_calendar(t, a.root.id, "Office hours", 20);
    let holidays = opening_calendar(t, a.root.id, "Holidays", 10);
    store.create_calendar(&hours).await.unwrap();
    store.create_calendar(&holidays).await.unwrap();
    assert_eq!(store.get_calendar(t, hours.id).await.unwrap(), hours, "the calendar JSON round-trips");
    assert_eq!(store.list_calendars(t).await.unwrap(), [holidays.clone(), hours.clone()], "ordered by created_at");
    assert_conflict(store.create_calendar(&hours).await, "calendar_id");

    // Name and body change; id, unit and creation time do not, whatever the caller passes.
    let mut body = hours.calendar.clone();
    body.time_zone = "America/New_York".into();
    body.default_category = Category::Open;
    body.periods.truncate(1);
    let changed = OpeningCalendar {
        name: "Summer hours".into(),
        calendar: body.clone(),
        ou_id: OrgUnitId(new_id()),
        created_at: at(99),
        ..hours.clone()
    };
    store.update_calendar(&changed).await.unwrap();
    let hours = OpeningCalendar { name: "Summer hours".into(), calendar: body, ..hours };
    assert_eq!(store.get_calendar(t, hours.id).await.unwrap(), hours);
    assert_not_found(
        store.update_calendar(&opening_calendar(t, a.root.id, "ghost", 0)).await,
        "update of an unknown calendar",
    );

    // A calendar stays while a service names it, as primary or as secondary.
    let desk = Service {
        primary_calendar_id: Some(hours.id),
        secondary_calendar_id: Some(holidays.id),
        ..service(t, a.root.id, a.workflow.id, 30)
    };
    store.create_service(&desk, &[]).await.unwrap();
    assert_eq!(store.get_service(t, desk.id).await.unwrap(), desk);
    assert_conflict(store.delete_calendar(t, hours.id).await, "calendar_in_use");
    assert_conflict(store.delete_calendar(t, holidays.id).await, "calendar_in_use");
    assert_eq!(store.list_calendars(t).await.unwrap().len(), 2);
    store.update_service(&Service { primary_calendar_id: None, ..desk }).await.unwrap();
    store.delete_calendar(t, hours.id).await.unwrap();
    assert_not_found(store.get_calendar(t, hours.id).await, "the deleted calendar");
    assert_not_found(store.delete_calendar(t, hours.id).await, "deleting twice");
    assert_conflict(store.delete_calendar(t, holidays.id).await, "calendar_in_use");

    let ghost = Service { primary_calendar_id: Some(CalendarId(new_id())), ..service(t, a.root.id, a.workflow.id, 40) };
    assert_not_found(store.create_service(&ghost, &[]).await, "service with an unknown calendar");
    assert_not_found(
        store.create_calendar(&opening_calendar(t, OrgUnitId(new_id()), "x", 0)).await,
        "calendar in an unknown unit",
    );
    assert_not_found(store.create_calendar(&opening_calendar(t, b.root.id, "x", 0)).await, "calendar in B's unit");

    // B can neither see, change, delete nor use A's calendar.
    let tb = b.tenant.id;
    assert_not_found(store.get_calendar(tb, holidays.id).await, "A's calendar read as B");
    assert!(store.list_calendars(tb).await.unwrap().is_empty());
    let hijack = OpeningCalendar { tenant_id: tb, name: "hijacked".into(), ..holidays.clone() };
    assert_not_found(store.update_calendar(&hijack).await, "A's calendar changed as B");
    assert_not_found(store.delete_calendar(tb, holidays.id).await, "A's calendar deleted as B");
    let borrower = Service { secondary_calendar_id: Some(holidays.id), ..service(tb, b.root.id, b.workflow.id, 50) };
    assert_not_found(store.create_service(&borrower, &[]).await, "B's service naming A's calendar");
    assert_eq!(store.get_calendar(t, holidays.id).await.unwrap(), holidays);
}

async fn story_update_service(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let t = a.tenant.id;
    let other_workflow = published_workflow(store.as_ref(), t, a.root.id, 10).await;
    let hours = opening_calendar(t, a.root.id, "Office hours", 11);
    let holidays = opening_calendar(t, a.root.id, "Holidays", 12);
    store.create_calendar(&hours).await.unwrap();
    store.create_calendar(&holidays).await.unwrap();
    let b_calendar = opening_calendar(b.tenant.id, b.root.id, "B's hours", 13);
    store.create_calendar(&b_calendar).await.unwrap();

    // Name, workflow and calendars change; id, unit, snippet credentials and creation time do
    // not, whatever the caller passes.
    let updated = Service {
        name: "Sales".into(),
        workflow_id: other_workflow.id,
        primary_calendar_id: Some(hours.id),
        secondary_calendar_id: Some(holidays.id),
        ..a.service.clone()
    };
    let sloppy = Service {
        ou_id: OrgUnitId(new_id()),
        contact_id: "another-contact".into(),
        widget_key: "another-key".into(),
        created_at: at(99),
        ..updated.clone()
    };
    store.update_service(&sloppy).await.unwrap();
    assert_eq!(store.get_service(t, a.service.id).await.unwrap(), updated);
    assert_eq!(store.find_service_by_contact_id(&a.service.contact_id).await.unwrap(), updated);
    assert_not_found(store.find_service_by_contact_id("another-contact").await, "the credentials did not change");

    let refused = [
        (Service { primary_calendar_id: Some(b_calendar.id), ..updated.clone() }, "B's calendar as primary"),
        (Service { secondary_calendar_id: Some(b_calendar.id), ..updated.clone() }, "B's calendar as secondary"),
        (Service { primary_calendar_id: Some(CalendarId(new_id())), ..updated.clone() }, "an unknown calendar"),
        (Service { workflow_id: WorkflowId(new_id()), ..updated.clone() }, "an unknown workflow"),
        (Service { workflow_id: b.workflow.id, ..updated.clone() }, "B's workflow"),
        (Service { id: ServiceId(new_id()), ..updated.clone() }, "an unknown service"),
        (Service { id: b.service.id, ..updated.clone() }, "B's service as A"),
        (Service { tenant_id: b.tenant.id, ..updated.clone() }, "A's service as B"),
    ];
    for (s, what) in refused {
        assert_not_found(store.update_service(&s).await, what);
    }
    assert_eq!(store.get_service(t, a.service.id).await.unwrap(), updated, "refused updates change nothing");
    assert_eq!(store.get_service(b.tenant.id, b.service.id).await.unwrap(), b.service);

    // Calendars can be removed again; routing settings round-trip.
    let routing = parley_domain::RoutingSettings {
        max_tasks: 7,
        aging_secs: Some(90),
        persistent_rona: true,
        rona_reset_secs: Some(600),
        acw_secs: 45,
        acw_max_extensions: 2,
        away_opt_in: true,
        last_user_secs: 120,
        ..Default::default()
    };
    let plain = Service { primary_calendar_id: None, secondary_calendar_id: None, routing, ..updated };
    store.update_service(&plain).await.unwrap();
    assert_eq!(store.get_service(t, a.service.id).await.unwrap(), plain);
    assert_eq!(store.list_services(t).await.unwrap(), [plain]);
}

async fn story_transfer_and_outcome(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let t = a.tenant.id;
    let c = a.conversation.clone();
    let billing_flow = published_workflow(store.as_ref(), t, a.root.id, 10).await;
    let v2 = WorkflowVersion { definition: definition("Billing v2"), ..version(&billing_flow, 2, 11) };
    store.publish_workflow_version(&v2).await.unwrap();
    let billing = service(t, a.root.id, billing_flow.id, 12);
    store.create_service(&billing, &[]).await.unwrap();

    // A conversation keeps the version it was started with.
    let on_v2 = Conversation { workflow_version: Some(2), ..conversation(&billing, 13) };
    store.create_conversation(&on_v2, &credential("v2")).await.unwrap();
    assert_eq!(store.get_conversation(t, on_v2.id).await.unwrap(), on_v2);
    let unpublished = Conversation { workflow_version: Some(3), ..conversation(&billing, 14) };
    assert_not_found(store.create_conversation(&unpublished, &credential("v3")).await, "an unpublished version");

    store.transfer_conversation(t, c.id, billing.id, billing_flow.id, 2).await.unwrap();
    let moved = Conversation {
        service_id: Some(billing.id),
        workflow_id: Some(billing_flow.id),
        workflow_version: Some(2),
        ..c.clone()
    };
    assert_eq!(store.get_conversation(t, c.id).await.unwrap(), moved);
    assert_eq!(store.list_open_conversations(t).await.unwrap(), [moved.clone(), on_v2.clone()]);

    let refused = [
        (c.id, billing.id, billing_flow.id, 3, "an unpublished version"),
        (c.id, billing.id, a.workflow.id, 2, "a version the workflow does not have"),
        (c.id, ServiceId(new_id()), billing_flow.id, 1, "an unknown service"),
        (c.id, b.service.id, billing_flow.id, 1, "B's service"),
        (c.id, billing.id, b.workflow.id, 1, "B's workflow"),
        (ConversationId(new_id()), billing.id, billing_flow.id, 1, "an unknown conversation"),
        (b.conversation.id, billing.id, billing_flow.id, 1, "B's conversation"),
    ];
    for (conversation, service, workflow, version, what) in refused {
        assert_not_found(store.transfer_conversation(t, conversation, service, workflow, version).await, what);
    }
    assert_not_found(
        store.transfer_conversation(b.tenant.id, c.id, b.service.id, b.workflow.id, 1).await,
        "A's conversation transferred as B",
    );
    assert_eq!(store.get_conversation(t, c.id).await.unwrap(), moved, "refused transfers change nothing");

    // Every outcome round-trips; a later call replaces the earlier one, reason included.
    store.set_outcome(t, c.id, Outcome::Failed, Some("unconnected exit on node \"menu\" ✗")).await.unwrap();
    let failed = store.get_conversation(t, c.id).await.unwrap();
    assert_eq!(
        (failed.outcome, failed.outcome_reason.as_deref()),
        (Some(Outcome::Failed), Some("unconnected exit on node \"menu\" ✗"))
    );
    for outcome in Outcome::ALL {
        store.set_outcome(t, c.id, outcome, None).await.unwrap();
        let got = store.get_conversation(t, c.id).await.unwrap();
        assert_eq!((got.outcome, got.outcome_reason), (Some(outcome), None));
    }
    store.update_conversation(t, c.id, ConversationStatus::Ended, None, Some(at(30))).await.unwrap();
    store.set_outcome(t, c.id, Outcome::CustomerHangupInQueue, None).await.unwrap();
    let ended = store.get_conversation(t, c.id).await.unwrap();
    assert_eq!(
        ended,
        Conversation {
            status: ConversationStatus::Ended,
            ended_at: Some(at(30)),
            outcome: Some(Outcome::CustomerHangupInQueue),
            ..moved
        }
    );
    let created_ended = Conversation {
        status: ConversationStatus::Ended,
        ended_at: Some(at(40)),
        outcome: Some(Outcome::HandledBySystem),
        outcome_reason: Some("closed".into()),
        agent_alias: None,
        wrap_up: None,
        ..conversation(&a.service, 40)
    };
    store.create_conversation(&created_ended, &credential("ended")).await.unwrap();
    assert_eq!(store.get_conversation(t, created_ended.id).await.unwrap(), created_ended);

    assert_not_found(
        store.set_outcome(t, ConversationId(new_id()), Outcome::Cancelled, None).await,
        "outcome of an unknown conversation",
    );
    assert_not_found(
        store.set_outcome(t, b.conversation.id, Outcome::Cancelled, None).await,
        "outcome of B's conversation as A",
    );
    assert_eq!(store.get_conversation(b.tenant.id, b.conversation.id).await.unwrap(), b.conversation);

    // The workflow record: none until saved, then exactly what was saved; tenants stay apart.
    assert_eq!(store.get_workflow_run(t, c.id).await.unwrap(), None);
    let run = serde_json::json!({"state": "finished", "trace": [{"node": "accept", "exit": "next"}], "parameters": {"Order": "4711 ✓"}});
    store.save_workflow_run(t, c.id, &run).await.unwrap();
    assert_eq!(store.get_workflow_run(t, c.id).await.unwrap(), Some(run.clone()));
    assert_not_found(store.get_workflow_run(b.tenant.id, c.id).await, "A's workflow record read as B");
    assert_not_found(store.save_workflow_run(b.tenant.id, c.id, &run).await, "A's workflow record written as B");
    assert_not_found(store.get_workflow_run(t, ConversationId(new_id())).await, "record of an unknown conversation");
}

async fn story_services(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let t = w.tenant.id;
    let bob = user(t, w.root.id, "bob@acme.example", 5);
    store.create_user(&bob, None).await.unwrap();

    let sales = service(t, w.root.id, w.workflow.id, 2);
    let members = [
        Membership { service_id: sales.id, user_id: w.agent.id, active: true },
        Membership { service_id: sales.id, user_id: bob.id, active: false },
    ];
    store.create_service(&sales, &members).await.unwrap();
    assert_eq!(store.get_service(t, sales.id).await.unwrap(), sales);
    assert_eq!(store.find_service_by_contact_id(&sales.contact_id).await.unwrap(), sales);
    assert_eq!(store.list_services(t).await.unwrap(), [sales.clone(), w.service.clone()], "ordered by created_at");
    let mut sales_members: Vec<_> =
        store.list_memberships(t).await.unwrap().into_iter().filter(|m| m.service_id == sales.id).collect();
    sales_members.sort_by_key(|m| m.user_id);
    let mut expected = members.to_vec();
    expected.sort_by_key(|m| m.user_id);
    assert_eq!(sales_members, expected);

    // A taken contact id refuses the whole service, members included.
    let clash = Service { contact_id: sales.contact_id.clone(), ..service(t, w.root.id, w.workflow.id, 6) };
    let clash_member = Membership { service_id: clash.id, user_id: bob.id, active: true };
    assert_conflict(store.create_service(&clash, &[clash_member]).await, "service_contact_id");
    assert_not_found(store.get_service(t, clash.id).await, "the refused service");

    // So does a member that is not a user of the tenant, even after the service row went in.
    let lonely = service(t, w.root.id, w.workflow.id, 7);
    let ghost = Membership { service_id: lonely.id, user_id: UserId(new_id()), active: true };
    let ok = Membership { service_id: lonely.id, user_id: bob.id, active: true };
    assert_not_found(store.create_service(&lonely, &[ok, ghost]).await, "service with an unknown member");
    assert_not_found(store.get_service(t, lonely.id).await, "the service of the failed create");
    assert!(
        store.list_memberships(t).await.unwrap().iter().all(|m| m.service_id != lonely.id && m.service_id != clash.id)
    );

    let unknown_workflow = service(t, w.root.id, WorkflowId(new_id()), 8);
    assert_not_found(store.create_service(&unknown_workflow, &[]).await, "service of an unknown workflow");
    assert_not_found(store.find_service_by_contact_id("no-such-contact").await, "unknown contact id");
    assert_not_found(store.get_service(t, ServiceId(new_id())).await, "unknown service");
}

async fn story_memberships(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let t = w.tenant.id;
    let bob = user(t, w.root.id, "bob@acme.example", 5);
    store.create_user(&bob, None).await.unwrap();
    let other = service(t, w.root.id, w.workflow.id, 6);
    store.create_service(&other, &[]).await.unwrap();

    let bob_in_main = Membership { service_id: w.service.id, user_id: bob.id, active: true };
    let agent_in_other = Membership { service_id: other.id, user_id: w.agent.id, active: true };
    store.set_membership(t, &bob_in_main).await.unwrap();
    store.set_membership(t, &agent_in_other).await.unwrap();
    // Upsert: the same pair again changes the flag, it does not add a row.
    let bob_paused = Membership { active: false, ..bob_in_main };
    store.set_membership(t, &bob_paused).await.unwrap();

    let mut expected =
        vec![Membership { service_id: w.service.id, user_id: w.agent.id, active: true }, bob_paused, agent_in_other];
    expected.sort_by_key(|m| (m.service_id, m.user_id));
    assert_eq!(store.list_memberships(t).await.unwrap(), expected, "ordered by service, then user");

    store.remove_membership(t, w.service.id, bob.id).await.unwrap();
    assert_not_found(store.remove_membership(t, w.service.id, bob.id).await, "removing twice");
    assert!(!store.list_memberships(t).await.unwrap().contains(&bob_paused));

    let ghost_user = Membership { service_id: w.service.id, user_id: UserId(new_id()), active: true };
    assert_not_found(store.set_membership(t, &ghost_user).await, "membership of an unknown user");
    let ghost_service = Membership { service_id: ServiceId(new_id()), user_id: bob.id, active: true };
    assert_not_found(store.set_membership(t, &ghost_service).await, "membership of an unknown service");
    assert_eq!(store.list_memberships(t).await.unwrap().len(), 2);
}

async fn story_conversations(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let t = w.tenant.id;
    let first = w.conversation.clone();
    assert_eq!(store.get_conversation(t, first.id).await.unwrap(), first);
    assert_eq!(store.visitor_credential(t, first.id).await.unwrap(), credential("acme"));

    // last_seq starts at 0 whatever the caller put in it.
    let second = Conversation { first_message: None, last_seq: 99, ..conversation(&w.service, 10) };
    store.create_conversation(&second, &credential("second")).await.unwrap();
    assert_eq!(store.get_conversation(t, second.id).await.unwrap(), Conversation { last_seq: 0, ..second.clone() });
    let third = conversation(&w.service, 20);
    store.create_conversation(&third, &credential("third")).await.unwrap();
    assert_conflict(store.create_conversation(&third, &credential("again")).await, "conversation_id");

    store.update_conversation(t, first.id, ConversationStatus::Connected, Some(w.agent.id), None).await.unwrap();
    store.update_conversation(t, third.id, ConversationStatus::Connected, Some(w.agent.id), None).await.unwrap();
    store.update_conversation(t, second.id, ConversationStatus::Queued, None, None).await.unwrap();
    let connected = store.get_conversation(t, first.id).await.unwrap();
    assert_eq!(
        (connected.status, connected.agent_id, connected.ended_at),
        (ConversationStatus::Connected, Some(w.agent.id), None)
    );

    store.update_conversation(t, first.id, ConversationStatus::Ended, Some(w.agent.id), Some(at(30))).await.unwrap();
    let ended = store.get_conversation(t, first.id).await.unwrap();
    assert_eq!((ended.status, ended.ended_at), (ConversationStatus::Ended, Some(at(30))));

    let open: Vec<_> = store.list_open_conversations(t).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(open, [second.id, third.id], "ended ones excluded, ordered by created_at");

    let history: Vec<_> =
        store.list_agent_conversations(t, w.agent.id, 10).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(history, [third.id, first.id], "newest first");
    let latest: Vec<_> =
        store.list_agent_conversations(t, w.agent.id, 1).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(latest, [third.id]);

    assert_not_found(store.get_conversation(t, ConversationId(new_id())).await, "unknown conversation");
    assert_not_found(
        store.visitor_credential(t, ConversationId(new_id())).await,
        "credential of an unknown conversation",
    );
    assert_not_found(
        store.update_conversation(t, ConversationId(new_id()), ConversationStatus::Ended, None, Some(at(1))).await,
        "update of an unknown conversation",
    );
    assert_not_found(
        store.update_conversation(t, second.id, ConversationStatus::Offered, Some(UserId(new_id())), None).await,
        "offer to an unknown agent",
    );
    assert_eq!(store.get_conversation(t, second.id).await.unwrap().status, ConversationStatus::Queued);
}

async fn story_gapless_seq(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let a = w.conversation.clone();
    let b = conversation(&w.service, 10);
    store.create_conversation(&b, &credential("b")).await.unwrap();

    let batch = [
        entry(&a, None, "a1", 11),
        entry(&b, None, "b1", 12),
        entry(&a, None, "a2", 13),
        entry(&a, None, "a3", 14),
        entry(&b, None, "b2", 15),
    ];
    let out = store.append_batch(&batch).await;
    let got: Vec<_> =
        out.iter().map(|r| (appended(r).entry.conversation_id, appended(r).entry.seq, appended(r).duplicate)).collect();
    assert_eq!(got, [(a.id, 1, false), (b.id, 1, false), (a.id, 2, false), (a.id, 3, false), (b.id, 2, false)]);
    assert_eq!(appended(&out[2]).entry.body, text("a2"), "each outcome belongs to its own input");

    let more = store.append_batch(&[entry(&a, None, "a4", 16)]).await;
    assert_eq!(appended(&more[0]).entry.seq, 4);
    assert_eq!(seqs(store.as_ref(), &a).await, [1, 2, 3, 4]);
    assert_eq!(seqs(store.as_ref(), &b).await, [1, 2]);
    assert_eq!(store.get_conversation(a.tenant_id, a.id).await.unwrap().last_seq, 4);
    assert_eq!(store.get_conversation(b.tenant_id, b.id).await.unwrap().last_seq, 2);
    assert!(store.append_batch(&[]).await.is_empty());
}

async fn story_idempotent_append(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let c = w.conversation.clone();

    let first = store.append_batch(&[entry(&c, Some("m-1"), "first", 10)]).await;
    let original = appended(&first[0]).clone();
    assert_eq!((original.entry.seq, original.duplicate), (1, false));

    let again = store.append_batch(&[entry(&c, Some("m-1"), "edited on retry", 20)]).await;
    assert_eq!(
        *appended(&again[0]),
        Appended { entry: original.entry.clone(), duplicate: true },
        "the original seq, body and time"
    );
    assert_eq!(seqs(store.as_ref(), &c).await, [1], "nothing new written");
    assert_eq!(store.get_conversation(c.tenant_id, c.id).await.unwrap().last_seq, 1);

    // Within one batch the second use of a key is a duplicate of the first.
    let batch = [
        entry(&c, Some("m-2"), "a", 30),
        entry(&c, Some("m-2"), "b", 31),
        entry(&c, None, "c", 32),
        entry(&c, None, "d", 33),
    ];
    let out = store.append_batch(&batch).await;
    let got: Vec<_> =
        out.iter().map(|r| (appended(r).entry.seq, appended(r).duplicate, appended(r).entry.body.clone())).collect();
    assert_eq!(got, [(2, false, text("a")), (2, true, text("a")), (3, false, text("c")), (4, false, text("d"))]);
    assert_eq!(seqs(store.as_ref(), &c).await, [1, 2, 3, 4]);

    // Keys are per conversation: the same key elsewhere is a new entry.
    let other = conversation(&w.service, 40);
    store.create_conversation(&other, &credential("other")).await.unwrap();
    let elsewhere = store.append_batch(&[entry(&other, Some("m-1"), "first", 41)]).await;
    assert_eq!((appended(&elsewhere[0]).entry.seq, appended(&elsewhere[0]).duplicate), (1, false));
    let log = store.read_log(c.tenant_id, c.id, 0, 100).await.unwrap();
    assert_eq!(log[0], original.entry);
}

async fn story_unknown_conversation(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let foreign = world(store.as_ref(), "globex").await;
    let c = w.conversation.clone();
    let unknown = NewEntry { conversation_id: ConversationId(new_id()), ..entry(&c, Some("u"), "lost", 11) };
    // Another tenant's conversation is as unknown as a made-up one.
    let smuggled = NewEntry { conversation_id: foreign.conversation.id, ..entry(&c, None, "smuggled", 12) };
    let batch = [entry(&c, None, "one", 10), unknown, smuggled, entry(&c, Some("k"), "two", 13)];

    let out = store.append_batch(&batch).await;
    assert_eq!(out.len(), 4);
    assert_eq!(appended(&out[0]).entry.seq, 1);
    assert!(matches!(out[1], Err(StoreError::NotFound)), "{:?}", out[1]);
    assert!(matches!(out[2], Err(StoreError::NotFound)), "{:?}", out[2]);
    assert_eq!(appended(&out[3]).entry.seq, 2);
    assert_eq!(seqs(store.as_ref(), &c).await, [1, 2]);
    assert_eq!(seqs(store.as_ref(), &foreign.conversation).await, Vec::<i64>::new());
    assert_eq!(store.get_conversation(foreign.tenant.id, foreign.conversation.id).await.unwrap().last_seq, 0);
}

async fn story_read_log(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let c = w.conversation.clone();
    let batch: Vec<_> = (1..=5).map(|i| entry(&c, Some(&format!("k{i}")), &format!("m{i}"), 10 + i)).collect();
    store.append_batch(&batch).await.iter().for_each(|r| assert!(r.is_ok(), "{r:?}"));

    let page = |since, limit| {
        let store = Arc::clone(&store);
        async move {
            store.read_log(c.tenant_id, c.id, since, limit).await.unwrap().iter().map(|e| e.seq).collect::<Vec<_>>()
        }
    };
    assert_eq!(page(0, 2).await, [1, 2]);
    assert_eq!(page(2, 10).await, [3, 4, 5]);
    assert_eq!(page(4, 1).await, [5]);
    assert_eq!(page(5, 10).await, Vec::<i64>::new(), "nothing new is an empty page, not an error");

    let full = store.read_log(c.tenant_id, c.id, 0, 100).await.unwrap();
    let expected: Vec<LogEntry> = batch
        .iter()
        .zip(1..)
        .map(|(e, seq)| LogEntry {
            conversation_id: c.id,
            seq,
            client_msg_id: e.client_msg_id.clone(),
            body: e.body.clone(),
            created_at: e.created_at,
        })
        .collect();
    assert_eq!(full, expected);
    assert_not_found(
        store.read_log(c.tenant_id, ConversationId(new_id()), 0, 10).await,
        "log of an unknown conversation",
    );
}

async fn story_timestamps(store: Arc<dyn Store>) {
    let created = at_micros(0, 123_456);
    let (mut t, root, mut key) = tenant("acme", 0);
    t.created_at = created;
    key.created_at = at_micros(1, 1);
    store.create_tenant(&t, &root, &key).await.unwrap();
    let got = store.get_tenant(t.id).await.unwrap();
    assert_eq!(got.created_at, created);
    assert_eq!(got.created_at.microsecond(), 123_456);
    assert_eq!(store.find_api_key(key.id).await.unwrap().created_at, at_micros(1, 1));

    let agent = User { created_at: at_micros(2, 999_999), ..user(t.id, root.id, "a@acme.example", 0) };
    store.create_user(&agent, None).await.unwrap();
    assert_eq!(store.get_user(t.id, agent.id).await.unwrap().created_at, at_micros(2, 999_999));

    let session = AgentSession {
        token_hash: "s".into(),
        tenant_id: t.id,
        user_id: agent.id,
        created_at: at_micros(3, 7),
        expires_at: at_micros(3603, 654_321),
    };
    store.create_session(&session).await.unwrap();
    assert_eq!(store.find_session("s").await.unwrap(), session);

    let wf = Workflow {
        created_at: at_micros(4, 500_001),
        updated_at: at_micros(4, 600_006),
        current_version: Some(1),
        ..workflow(t.id, root.id, 0)
    };
    let v1 = WorkflowVersion { published_at: at_micros(4, 700_007), ..version(&wf, 1, 0) };
    store.create_workflow(&wf, Some(&v1)).await.unwrap();
    let svc = Service { created_at: at_micros(5, 42), ..service(t.id, root.id, wf.id, 0) };
    store.create_service(&svc, &[]).await.unwrap();
    let got = store.get_workflow(t.id, wf.id).await.unwrap();
    assert_eq!((got.created_at, got.updated_at), (at_micros(4, 500_001), at_micros(4, 600_006)));
    assert_eq!(store.get_workflow_version(t.id, wf.id, 1).await.unwrap().published_at, at_micros(4, 700_007));
    store.update_workflow_draft(t.id, wf.id, "x", &wf.draft, at_micros(4, 800_008)).await.unwrap();
    assert_eq!(store.get_workflow(t.id, wf.id).await.unwrap().updated_at, at_micros(4, 800_008));
    let p = CustomParameter { created_at: at_micros(5, 5), ..parameter(t.id, root.id, "p", 0) };
    store.create_parameter(&p).await.unwrap();
    assert_eq!(store.get_parameter(t.id, "p").await.unwrap().created_at, at_micros(5, 5));
    let cal = OpeningCalendar { created_at: at_micros(5, 6), ..opening_calendar(t.id, root.id, "c", 0) };
    store.create_calendar(&cal).await.unwrap();
    assert_eq!(store.get_calendar(t.id, cal.id).await.unwrap().created_at, at_micros(5, 6));
    assert_eq!(store.get_service(t.id, svc.id).await.unwrap().created_at, at_micros(5, 42));

    let conv = Conversation { created_at: at_micros(6, 1), ..conversation(&svc, 0) };
    let cred = VisitorCredential { token_hash: "v".into(), expires_at: at_micros(86_406, 999_998) };
    store.create_conversation(&conv, &cred).await.unwrap();
    store
        .update_conversation(t.id, conv.id, ConversationStatus::Ended, None, Some(at_micros(7, 300_003)))
        .await
        .unwrap();
    let got = store.get_conversation(t.id, conv.id).await.unwrap();
    assert_eq!((got.created_at, got.ended_at), (at_micros(6, 1), Some(at_micros(7, 300_003))));
    assert_eq!(store.visitor_credential(t.id, conv.id).await.unwrap(), cred);

    let e = NewEntry { created_at: at_micros(8, 808_080), ..entry(&conv, None, "tick", 0) };
    store.append_batch(&[e]).await.iter().for_each(|r| assert!(r.is_ok(), "{r:?}"));
    assert_eq!(store.read_log(t.id, conv.id, 0, 1).await.unwrap()[0].created_at, at_micros(8, 808_080));

    // Before 1970 too: the encoding must not assume positive times.
    let (mut old, old_root, old_key) = tenant("vintage", 0);
    old.created_at = OffsetDateTime::from_unix_timestamp_nanos(-1_234_567_000).unwrap();
    store.create_tenant(&old, &old_root, &old_key).await.unwrap();
    assert_eq!(store.get_tenant(old.id).await.unwrap().created_at, old.created_at);
}

async fn story_tenant_isolation(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let ta = a.tenant.id;
    store
        .append_batch(&[entry(&b.conversation, Some("b-1"), "for B only", 10)])
        .await
        .iter()
        .for_each(|r| assert!(r.is_ok()));
    let b_conversation = store.get_conversation(b.tenant.id, b.conversation.id).await.unwrap();
    let b_memberships = store.list_memberships(b.tenant.id).await.unwrap();
    let b_users = store.list_users(b.tenant.id).await.unwrap();

    // Reads of B's rows through A.
    assert_not_found(store.get_org_unit(ta, b.root.id).await, "get_org_unit");
    assert_not_found(store.get_user(ta, b.agent.id).await, "get_user");
    assert_not_found(store.find_user_login(ta, &b.agent.email).await, "find_user_login");
    assert_not_found(store.get_workflow(ta, b.workflow.id).await, "get_workflow");
    assert_not_found(store.get_service(ta, b.service.id).await, "get_service");
    assert_not_found(store.get_conversation(ta, b.conversation.id).await, "get_conversation");
    assert_not_found(store.visitor_credential(ta, b.conversation.id).await, "visitor_credential");
    assert_not_found(store.read_log(ta, b.conversation.id, 0, 10).await, "read_log");

    // Changes of B's rows through A.
    assert_not_found(store.set_presence(ta, b.agent.id, Presence::Available).await, "set_presence");
    let b_pair = Membership { service_id: b.service.id, user_id: b.agent.id, active: false };
    assert_not_found(store.set_membership(ta, &b_pair).await, "set_membership on B's service and user");
    let mixed = Membership { service_id: b.service.id, user_id: a.agent.id, active: true };
    assert_not_found(store.set_membership(ta, &mixed).await, "set_membership on B's service");
    let mixed = Membership { service_id: a.service.id, user_id: b.agent.id, active: true };
    assert_not_found(store.set_membership(ta, &mixed).await, "set_membership of B's user");
    assert_not_found(store.remove_membership(ta, b.service.id, b.agent.id).await, "remove_membership");
    assert_not_found(
        store.update_conversation(ta, b.conversation.id, ConversationStatus::Ended, None, Some(at(99))).await,
        "update_conversation",
    );
    let smuggled = NewEntry { tenant_id: ta, ..entry(&b.conversation, Some("b-1"), "from A", 11) };
    let out = store.append_batch(&[smuggled]).await;
    assert!(matches!(out[0], Err(StoreError::NotFound)), "append to B's conversation as A: {:?}", out[0]);

    // New rows of A that point at B's rows.
    assert_not_found(store.create_user(&user(ta, b.root.id, "x@acme.example", 0), None).await, "user in B's unit");
    let child = OrgUnit { id: OrgUnitId(new_id()), tenant_id: ta, name: "x".into(), parent_id: Some(b.root.id) };
    assert_not_found(store.create_org_unit(&child).await, "unit under B's unit");
    assert_not_found(store.create_workflow(&workflow(ta, b.root.id, 0), None).await, "workflow in B's unit");
    assert_not_found(store.create_parameter(&parameter(ta, b.root.id, "p", 0)).await, "parameter in B's unit");
    assert_not_found(store.create_calendar(&opening_calendar(ta, b.root.id, "c", 0)).await, "calendar in B's unit");
    assert_not_found(
        store.create_service(&service(ta, a.root.id, b.workflow.id, 0), &[]).await,
        "service on B's workflow",
    );
    assert_not_found(
        store
            .create_conversation(&conversation(&Service { tenant_id: ta, ..b.service.clone() }, 0), &credential("x"))
            .await,
        "conversation on B's service",
    );
    assert_not_found(
        store.update_conversation(ta, a.conversation.id, ConversationStatus::Offered, Some(b.agent.id), None).await,
        "offer A's chat to B's agent",
    );
    let session = AgentSession {
        token_hash: "x".into(),
        tenant_id: ta,
        user_id: b.agent.id,
        created_at: at(0),
        expires_at: at(1),
    };
    assert_not_found(store.create_session(&session).await, "session of A for B's user");

    // B is exactly as it was, and A's lists show nothing of B.
    assert_eq!(store.get_conversation(b.tenant.id, b.conversation.id).await.unwrap(), b_conversation);
    assert_eq!(seqs(store.as_ref(), &b.conversation).await, [1]);
    assert_eq!(store.list_memberships(b.tenant.id).await.unwrap(), b_memberships);
    assert_eq!(store.list_users(b.tenant.id).await.unwrap(), b_users);
    assert_eq!(store.get_user(b.tenant.id, b.agent.id).await.unwrap().presence, Presence::Offline);
    assert_eq!(store.list_users(ta).await.unwrap(), slice::from_ref(&a.agent));
    assert_eq!(store.list_org_units(ta).await.unwrap(), slice::from_ref(&a.root));
    assert_eq!(store.list_workflows(ta).await.unwrap(), slice::from_ref(&a.workflow));
    assert_eq!(store.list_services(ta).await.unwrap(), slice::from_ref(&a.service));
    assert_eq!(
        store.list_memberships(ta).await.unwrap(),
        [Membership { service_id: a.service.id, user_id: a.agent.id, active: true }]
    );
    assert_eq!(store.list_open_conversations(ta).await.unwrap(), slice::from_ref(&a.conversation));
    assert!(store.list_agent_conversations(ta, b.agent.id, 10).await.unwrap().is_empty());
    assert_eq!(seqs(store.as_ref(), &a.conversation).await, Vec::<i64>::new());
}

async fn story_concurrent_appends(store: Arc<dyn Store>) {
    const TASKS: usize = 8;
    const EACH: usize = 50;
    let w = world(store.as_ref(), "acme").await;
    let c = w.conversation.clone();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook = {
        let seen = Arc::clone(&seen);
        move |_: TenantId, e: &LogEntry| seen.lock().unwrap().push(e.seq)
    };
    let (log, writer) = ConversationLog::start(Arc::clone(&store), 64, Arc::new(hook));

    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (log, c) = (log.clone(), c.clone());
            tokio::spawn(async move {
                let mut acked = Vec::with_capacity(EACH);
                for i in 0..EACH {
                    let key = format!("t{t}-m{i}");
                    let a = log.append(entry(&c, Some(&key), &key, 100)).await.expect("append");
                    assert!(!a.duplicate);
                    acked.push(a.entry.seq);
                }
                acked
            })
        })
        .collect();
    let mut acked = Vec::new();
    for t in tasks {
        let mine = t.await.expect("appender task");
        assert!(mine.windows(2).all(|p| p[0] < p[1]), "one appender's entries keep their order");
        acked.extend(mine);
    }
    let stats = log.stats();
    assert_eq!(stats.entries, (TASKS * EACH) as u64, "every append counted once");
    assert!((1..=stats.entries).contains(&stats.batches), "{stats:?}");
    log.stop().await;
    writer.await.expect("writer task");

    let all: Vec<i64> = (1..=(TASKS * EACH) as i64).collect();
    acked.sort_unstable();
    assert_eq!(acked, all, "every seq acknowledged exactly once");
    assert_eq!(*seen.lock().unwrap(), all, "the hook saw every entry once, in seq order");
    assert_eq!(seqs(store.as_ref(), &c).await, all);
}

// ---------------------------------------------------------------------------------------------
// Two nodes on one database

/// Two stores on one database append the same keys at the same time; each key is written once
/// and both nodes answer with the same entry.
async fn story_two_nodes(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let w = world(a.as_ref(), "acme").await;
    let c = w.conversation.clone();
    for round in 0..20 {
        let key = format!("k{round}");
        // The filler makes each batch multi-entry, so a lost race takes the per-entry fallback.
        let from_a = [entry(&c, Some(&key), "via a", round), entry(&c, None, "filler a", round)];
        let from_b = [entry(&c, Some(&key), "via b", round), entry(&c, None, "filler b", round)];
        let (ra, rb) = tokio::join!(a.append_batch(&from_a), b.append_batch(&from_b));
        let (ka, kb) = (appended(&ra[0]), appended(&rb[0]));
        assert_eq!(ka.entry, kb.entry, "both nodes answer with the one entry written for {key}");
        assert!(ka.duplicate != kb.duplicate, "exactly one node wrote {key}");
        assert!(appended(&ra[1]).entry.seq != appended(&rb[1]).entry.seq);
    }
    assert_eq!(seqs(a.as_ref(), &c).await, (1..=60).collect::<Vec<_>>(), "gapless across both nodes");
}

mod two_nodes_racing_on_one_client_msg_id_write_it_once {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_sqlite() {
        let (a, dir) = temp_sqlite().await;
        let b = open_migrated(&sqlite_url_in(dir.path())).await;
        story_two_nodes(Arc::clone(&a), Arc::clone(&b)).await;
        b.close().await;
        a.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_postgres() {
        let Some(base) = postgres_test_url() else {
            eprintln!("note: {POSTGRES_URL_ENV} is not set; the PostgreSQL run of this story is skipped");
            return;
        };
        let url = fresh_postgres_url(&base).await;
        let (a, b) = (open_migrated(&url).await, open_migrated(&url).await);
        story_two_nodes(Arc::clone(&a), Arc::clone(&b)).await;
        a.close().await;
        b.close().await;
        drop_postgres_db(&base, &url).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Migrating rows written before workflow versions

/// The first migration of each backend that knows workflow versions; the ones before it are the
/// schema an existing installation has.
const SQLITE_VERSIONS_MIGRATION: u32 = 3;
const POSTGRES_VERSIONS_MIGRATION: u32 = 2;

/// A migrator holding the backend's migrations numbered below `first_new`, read from a copy of
/// them (the directory must live as long as the migrator is used).
async fn migrator_before(backend: &str, first_new: u32) -> (Migrator, tempfile::TempDir) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(backend);
    let dir = tempfile::tempdir().unwrap();
    for file in std::fs::read_dir(&source).unwrap() {
        let file = file.unwrap();
        let name = file.file_name().to_string_lossy().into_owned();
        let number: u32 = name.split('_').next().and_then(|n| n.parse().ok()).expect("a numbered migration");
        if number < first_new {
            std::fs::copy(file.path(), dir.path().join(&name)).unwrap();
        }
    }
    (Migrator::new(dir.path()).await.unwrap(), dir)
}

/// Rows as the schema before workflow versions held them, written as SQL literals in each
/// backend's encoding.
struct Legacy {
    tenant: TenantId,
    root: OrgUnitId,
    workflows: [(WorkflowId, WorkflowDefinition, i64); 2],
    service: ServiceId,
    conversation: ConversationId,
}

impl Legacy {
    fn new() -> Self {
        Self {
            tenant: TenantId(new_id()),
            root: OrgUnitId(new_id()),
            workflows: [
                (WorkflowId(new_id()), definition("It's the 'old' one"), 5),
                (WorkflowId(new_id()), definition("Another"), 6),
            ],
            service: ServiceId(new_id()),
            conversation: ConversationId(new_id()),
        }
    }

    fn statements(&self, backend: Backend) -> Vec<String> {
        let time = |secs: i64| match backend {
            Backend::Sqlite => ((T0 + secs) * 1_000_000).to_string(),
            Backend::Postgres => format!("to_timestamp({})", T0 + secs),
        };
        let (yes, json_cast) = match backend {
            Backend::Sqlite => ("1", ""),
            Backend::Postgres => ("true", "::jsonb"),
        };
        let (t, root, service, conversation) = (self.tenant.0, self.root.0, self.service.0, self.conversation.0);
        let mut out = vec![
            format!(
                "INSERT INTO tenants (id, slug, name, root_ou_id, created_at) \
                 VALUES ('{t}', 'legacy', 'Legacy', '{root}', {})",
                time(0)
            ),
            format!("INSERT INTO org_units (id, tenant_id, name, parent_id) VALUES ('{root}', '{t}', 'Root', NULL)"),
        ];
        for (id, definition, created) in &self.workflows {
            let json = serde_json::to_string(definition).unwrap().replace('\'', "''");
            out.push(format!(
                "INSERT INTO workflows (id, tenant_id, ou_id, name, kind, definition, created_at) \
                 VALUES ('{}', '{t}', '{root}', 'Old', 'instant_messaging', '{json}'{json_cast}, {})",
                id.0,
                time(*created)
            ));
        }
        let workflow = self.workflows[0].0.0;
        out.push(format!(
            "INSERT INTO services (id, tenant_id, ou_id, name, workflow_id, contact_id, widget_key, created_at) \
             VALUES ('{service}', '{t}', '{root}', 'Support', '{workflow}', 'legacy-{service}', 'k', {})",
            time(7)
        ));
        out.push(format!(
            "INSERT INTO conversations (id, tenant_id, service_id, workflow_id, status, customer_name, \
             customer_email, privacy_consent, first_message, agent_id, last_seq, visitor_token_hash, \
             visitor_expires_at, created_at, ended_at) \
             VALUES ('{conversation}', '{t}', '{service}', '{workflow}', 'queued', 'Ann', 'ann@example.com', {yes}, \
             NULL, NULL, 0, 'v', {}, {}, NULL)",
            time(86_400),
            time(8)
        ));
        out
    }
}

/// After the upgrade: each workflow's definition is its draft and its current version 1, the
/// conversation runs version 1, and the new operations work on the old rows.
async fn story_migrated_legacy(store: Arc<dyn Store>, legacy: &Legacy) {
    let t = legacy.tenant;
    for (id, definition, created) in &legacy.workflows {
        let expected = Workflow {
            id: *id,
            tenant_id: t,
            ou_id: legacy.root,
            name: "Old".into(),
            kind: WorkflowKind::InstantMessaging,
            draft: definition.clone(),
            current_version: Some(1),
            created_at: at(*created),
            updated_at: at(*created),
        };
        assert_eq!(store.get_workflow(t, *id).await.unwrap(), expected);
        assert_eq!(store.list_workflow_versions(t, *id).await.unwrap(), [version(&expected, 1, *created)]);
    }
    let service = store.get_service(t, legacy.service).await.unwrap();
    assert_eq!((service.primary_calendar_id, service.secondary_calendar_id), (None, None));
    assert_eq!(service.access, WidgetAccess::default(), "an existing service is not restricted");
    let c = store.get_conversation(t, legacy.conversation).await.unwrap();
    assert_eq!(
        (c.workflow_id, c.workflow_version, c.outcome, c.outcome_reason),
        (Some(legacy.workflows[0].0), Some(1), None, None)
    );

    let wf = store.get_workflow(t, legacy.workflows[0].0).await.unwrap();
    let v2 = WorkflowVersion { definition: definition("New"), ..version(&wf, 2, 20) };
    store.publish_workflow_version(&v2).await.unwrap();
    store.transfer_conversation(t, c.id, legacy.service, wf.id, 2).await.unwrap();
    store.set_outcome(t, c.id, Outcome::UserAccepted, None).await.unwrap();
    let c = store.get_conversation(t, c.id).await.unwrap();
    assert_eq!((c.workflow_version, c.outcome), (Some(2), Some(Outcome::UserAccepted)));
    let fresh = Conversation { workflow_version: Some(2), ..conversation(&service, 30) };
    store.create_conversation(&fresh, &credential("fresh")).await.unwrap();
    assert_eq!(store.get_conversation(t, fresh.id).await.unwrap(), fresh);
}

mod an_existing_workflow_becomes_its_own_version_1_on_upgrade {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = sqlite_url_in(dir.path());
        let options = SqliteConnectOptions::from_str(&url).unwrap().create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let (old, _files) = migrator_before("sqlite", SQLITE_VERSIONS_MIGRATION).await;
        old.run(&pool).await.unwrap();
        let legacy = Legacy::new();
        for statement in legacy.statements(Backend::Sqlite) {
            sqlx::query(&statement).execute(&pool).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        pool.close().await;

        let store = open_migrated(&url).await;
        story_migrated_legacy(Arc::clone(&store), &legacy).await;
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_postgres() {
        let Some(base) = postgres_test_url() else {
            eprintln!("note: {POSTGRES_URL_ENV} is not set; the PostgreSQL run of this story is skipped");
            return;
        };
        let url = fresh_postgres_url(&base).await;
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let (old, _files) = migrator_before("postgres", POSTGRES_VERSIONS_MIGRATION).await;
        old.run(&pool).await.unwrap();
        let legacy = Legacy::new();
        for statement in legacy.statements(Backend::Postgres) {
            sqlx::query(&statement).execute(&pool).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        pool.close().await;

        let store = open_migrated(&url).await;
        story_migrated_legacy(Arc::clone(&store), &legacy).await;
        store.close().await;
        drop_postgres_db(&base, &url).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Migrating rows written before direct chats

/// The first migration of each backend that knows direct chats.
const SQLITE_DIRECT_CHATS_MIGRATION: u32 = 12;
const POSTGRES_DIRECT_CHATS_MIGRATION: u32 = 11;

/// Rows of every table the direct-chat migration changes or rebuilds (and of the tables that
/// reference those), as the schema before it held them: two users, a service, an ended
/// conversation with its log, sessions and attachment, and an open one in the queue.
struct BeforeDirectChats {
    tenant: TenantId,
    root: OrgUnitId,
    agent: UserId,
    bob: UserId,
    workflow: WorkflowId,
    service: ServiceId,
    ended: ConversationId,
    queued: ConversationId,
    user_session: Uuid,
    service_session: Uuid,
    attachment: AttachmentId,
}

impl BeforeDirectChats {
    fn new() -> Self {
        Self {
            tenant: TenantId(new_id()),
            root: OrgUnitId(new_id()),
            agent: UserId(new_id()),
            bob: UserId(new_id()),
            workflow: WorkflowId(new_id()),
            service: ServiceId(new_id()),
            ended: ConversationId(new_id()),
            queued: ConversationId(new_id()),
            user_session: new_id(),
            service_session: new_id(),
            attachment: AttachmentId(new_id()),
        }
    }

    fn log_body(n: i64) -> EntryBody {
        text(&format!("message {n} ✓"))
    }

    fn statements(&self, backend: Backend) -> Vec<String> {
        let time = |secs: i64| match backend {
            Backend::Sqlite => ((T0 + secs) * 1_000_000).to_string(),
            Backend::Postgres => format!("to_timestamp({})", T0 + secs),
        };
        let (yes, no) = match backend {
            Backend::Sqlite => ("1", "0"),
            Backend::Postgres => ("true", "false"),
        };
        let (t, root, agent, bob) = (self.tenant.0, self.root.0, self.agent.0, self.bob.0);
        let (wf, service, ended, queued) = (self.workflow.0, self.service.0, self.ended.0, self.queued.0);
        let definition = json_literal(&definition("Before direct chats"));
        let licences = json_literal(&vec![Licence::InstantMessaging]);
        let mut out = vec![
            format!(
                "INSERT INTO tenants (id, slug, name, root_ou_id, created_at) VALUES ('{t}', 'old', 'Old', '{root}', {})",
                time(0)
            ),
            format!("INSERT INTO org_units (id, tenant_id, name, parent_id) VALUES ('{root}', '{t}', 'Root', NULL)"),
        ];
        for (id, email, password, created) in
            [(agent, "agent@old.example", "'hash'", 1), (bob, "bob@old.example", "NULL", 2)]
        {
            out.push(format!(
                "INSERT INTO users (id, tenant_id, ou_id, display_name, email, password_hash, licences, im_enabled, \
                 max_chats, presence, created_at) \
                 VALUES ('{id}', '{t}', '{root}', 'Old {email}', '{email}', {password}, '{licences}', {yes}, 2, \
                 'away', {})",
                time(created)
            ));
        }
        out.extend([
            format!(
                "INSERT INTO workflows (id, tenant_id, ou_id, name, kind, draft, current_version, created_at, \
                 updated_at) VALUES ('{wf}', '{t}', '{root}', 'Old', 'instant_messaging', '{definition}', 1, {}, {})",
                time(3),
                time(3)
            ),
            format!(
                "INSERT INTO workflow_versions (tenant_id, workflow_id, version, definition, published_at, \
                 restored_from) VALUES ('{t}', '{wf}', 1, '{definition}', {}, NULL)",
                time(3)
            ),
            format!(
                "INSERT INTO services (id, tenant_id, ou_id, name, workflow_id, contact_id, widget_key, created_at) \
                 VALUES ('{service}', '{t}', '{root}', 'Support', '{wf}', 'old-{service}', 'old-key', {})",
                time(4)
            ),
            format!(
                "INSERT INTO memberships (service_id, user_id, tenant_id, active) \
                 VALUES ('{service}', '{agent}', '{t}', {yes})"
            ),
            format!(
                "INSERT INTO conversations (id, tenant_id, service_id, workflow_id, workflow_version, status, \
                 customer_name, customer_email, privacy_consent, first_message, agent_id, last_seq, \
                 visitor_token_hash, visitor_expires_at, created_at, ended_at, outcome, outcome_reason, \
                 workflow_run, queued_at, priority, customer_delivered_seq, customer_read_seq, agent_delivered_seq, \
                 agent_read_seq) \
                 VALUES ('{ended}', '{t}', '{service}', '{wf}', 1, 'ended', 'Ann', 'ann@example.com', {yes}, \
                 'Hello?', '{agent}', 0, 'v-ended', {}, {}, {}, 'user_accepted', 'it''s done', '{{\"nodes\":3}}', \
                 {}, 'high', 2, 1, 2, 2)",
                time(86_400),
                time(10),
                time(20),
                time(11)
            ),
            format!(
                "INSERT INTO conversations (id, tenant_id, service_id, workflow_id, workflow_version, status, \
                 customer_name, customer_email, privacy_consent, first_message, agent_id, last_seq, \
                 visitor_token_hash, visitor_expires_at, created_at, ended_at, queued_at, priority) \
                 VALUES ('{queued}', '{t}', '{service}', '{wf}', 1, 'queued', 'Bea', 'bea@example.com', {no}, \
                 NULL, NULL, 0, 'v-queued', {}, {}, NULL, {}, 'strict')",
                time(86_400),
                time(30),
                time(31)
            ),
        ]);
        for n in 1..=2 {
            let key = if n == 1 { "'k1'" } else { "NULL" };
            let body = json_literal(&Self::log_body(n));
            out.push(format!(
                "INSERT INTO log_entries (conversation_id, seq, tenant_id, client_msg_id, body, created_at) \
                 VALUES ('{ended}', {n}, '{t}', {key}, '{body}', {})",
                time(11 + n)
            ));
        }
        // PostgreSQL advances last_seq in the store's append statement, not by trigger.
        out.push(format!("UPDATE conversations SET last_seq = 2 WHERE id = '{ended}'"));
        out.extend([
            format!(
                "INSERT INTO user_sessions (id, tenant_id, conversation_id, service_id, user_id, outcome, offered_at, \
                 answered_at, ended_at, ring_secs, connected_secs) \
                 VALUES ('{}', '{t}', '{ended}', '{service}', '{agent}', 'accepted', {}, {}, {}, 1, 8)",
                self.user_session,
                time(11),
                time(12),
                time(20)
            ),
            format!(
                "INSERT INTO service_sessions (id, tenant_id, conversation_id, service_id, outcome, user_id, \
                 started_at, ended_at, ivr_secs, queue_secs, connected_secs, offers) \
                 VALUES ('{}', '{t}', '{ended}', '{service}', 'user_accepted', '{agent}', {}, {}, 0, 1, 8, 1)",
                self.service_session,
                time(10),
                time(20)
            ),
            format!(
                "INSERT INTO attachments (id, tenant_id, conversation_id, name, content_type, size, sha256, \
                 created_at) VALUES ('{}', '{t}', '{ended}', 'old.pdf', 'application/pdf', 42, '{}', {})",
                self.attachment.0,
                "ef".repeat(32),
                time(13)
            ),
        ]);
        out
    }
}

/// JSON text of a fixture value, quoted for an SQL string literal.
fn json_literal<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("fixture JSON").replace('\'', "''")
}

/// After the upgrade every old row reads as before (as a service chat), users have freshly
/// minted snippet credentials with the default settings, every reference is still enforced,
/// and direct chats can be stored.
async fn story_upgraded_to_direct_chats(store: Arc<dyn Store>, old: &BeforeDirectChats) {
    let t = old.tenant;
    let ended = Conversation {
        id: old.ended,
        tenant_id: t,
        service_id: Some(old.service),
        workflow_id: Some(old.workflow),
        workflow_version: Some(1),
        direct_user_id: None,
        status: ConversationStatus::Ended,
        customer: Customer {
            display_name: "Ann".into(),
            email: "ann@example.com".into(),
            privacy_consent: true,
            language: None,
        },
        first_message: Some("Hello?".into()),
        agent_id: Some(old.agent),
        last_seq: 2,
        created_at: at(10),
        ended_at: Some(at(20)),
        outcome: Some(Outcome::UserAccepted),
        outcome_reason: Some("it's done".into()),
        agent_alias: None,
        wrap_up: None,
    };
    assert_eq!(store.get_conversation(t, old.ended).await.unwrap(), ended);
    assert_eq!(
        store.visitor_credential(t, old.ended).await.unwrap(),
        VisitorCredential { token_hash: "v-ended".into(), expires_at: at(86_400) }
    );
    assert_eq!(store.get_workflow_run(t, old.ended).await.unwrap(), Some(serde_json::json!({ "nodes": 3 })));
    assert_eq!(store.get_receipts(t, old.ended).await.unwrap(), Receipts { customer: mark(2, 1), agent: mark(2, 2) });
    let queued = store.get_conversation(t, old.queued).await.unwrap();
    assert_eq!(
        (queued.service_id, queued.direct_user_id, queued.status),
        (Some(old.service), None, ConversationStatus::Queued)
    );
    assert_eq!(store.list_open_conversations(t).await.unwrap(), slice::from_ref(&queued));
    assert_eq!(
        store.list_queue_entries(t).await.unwrap(),
        [QueueEntry { conversation_id: old.queued, queued_at: at(31), priority: Priority::Strict }]
    );
    assert_eq!(store.list_agent_conversations(t, old.agent, 10).await.unwrap(), slice::from_ref(&ended));
    assert_eq!(store.last_agent_of_customer(t, "ann@example.com", at(0)).await.unwrap(), Some(old.agent));

    // The log, its idempotency keys and its last_seq bookkeeping survive the rebuild.
    let log = store.read_log(t, old.ended, 0, 10).await.unwrap();
    let bodies: Vec<_> = log.iter().map(|e| (e.seq, e.client_msg_id.clone(), e.body.clone())).collect();
    assert_eq!(
        bodies,
        [(1, Some("k1".into()), BeforeDirectChats::log_body(1)), (2, None, BeforeDirectChats::log_body(2))]
    );
    let again = store.append_batch(&[entry(&ended, Some("k1"), "retried", 40)]).await;
    assert_eq!((appended(&again[0]).entry.seq, appended(&again[0]).duplicate), (1, true));
    let next =
        store.append_batch(&[entry(&queued, None, "to the queued one", 41), entry(&ended, None, "closing", 42)]).await;
    assert_eq!((appended(&next[0]).entry.seq, appended(&next[1]).entry.seq), (1, 3));
    assert_eq!(store.get_conversation(t, old.ended).await.unwrap().last_seq, 3);

    // Reporting rows, memberships and attachments.
    let sessions = store.list_user_sessions(t, all_time(), None).await.unwrap();
    assert_eq!(
        sessions.iter().map(|s| (s.id, s.service_id, s.outcome)).collect::<Vec<_>>(),
        [(old.user_session, Some(old.service), UserOutcome::Accepted)]
    );
    let sessions = store.list_service_sessions(t, all_time(), Some(old.service)).await.unwrap();
    assert_eq!(
        sessions.iter().map(|s| (s.id, s.outcome)).collect::<Vec<_>>(),
        [(old.service_session, Some(Outcome::UserAccepted))]
    );
    assert_eq!(
        store.list_memberships(t).await.unwrap(),
        [Membership { service_id: old.service, user_id: old.agent, active: true }]
    );
    let file = store.get_attachment(t, old.ended, old.attachment).await.unwrap();
    assert_eq!((file.attachment.name.as_str(), file.attachment.size), ("old.pdf", 42));

    // Every user has snippet credentials of their own, in the server's format, switched off.
    let users = store.list_users(t).await.unwrap();
    assert_eq!(users.iter().map(|u| u.id).collect::<Vec<_>>(), [old.agent, old.bob]);
    let hex32 = |s: &str| s.len() == 32 && s.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    let mut credentials = Vec::new();
    for u in &users {
        assert!(hex32(&u.direct.contact_id) && hex32(&u.direct.widget_key), "{:?}", u.direct);
        assert_eq!(u.direct.settings, DirectChatSettings::default());
        assert_eq!((u.presence, u.max_chats), (Presence::Away, 2));
        assert_eq!(&store.find_user_by_contact_id(&u.direct.contact_id).await.unwrap(), u);
        credentials.extend([u.direct.contact_id.clone(), u.direct.widget_key.clone()]);
    }
    credentials.sort_unstable();
    credentials.dedup();
    assert_eq!(credentials.len(), 4, "every minted value differs");
    let (agent, hash) = store.find_user_login(t, "agent@old.example").await.unwrap();
    assert_eq!((agent.id, hash.as_deref()), (old.agent, Some("hash")));

    // References are enforced as before (SQLite's foreign keys are back on after migrating).
    let service = store.get_service(t, old.service).await.unwrap();
    let unknown_service = Conversation { service_id: Some(ServiceId(new_id())), ..conversation(&service, 50) };
    assert_not_found(store.create_conversation(&unknown_service, &credential("x")).await, "an unknown service");
    let unpublished = Conversation { workflow_version: Some(2), ..conversation(&service, 50) };
    assert_not_found(store.create_conversation(&unpublished, &credential("x")).await, "an unpublished version");
    let stranger = UserSession { user_id: UserId(new_id()), ..sessions_fixture(old, None) };
    assert_not_found(store.record_user_session(&stranger).await, "a session of an unknown user");
    assert_conflict(
        store
            .create_user(
                &User {
                    direct: DirectChat::new(service.contact_id.clone(), "k"),
                    ..user(t, old.root, "new@old.example", 60)
                },
                None,
            )
            .await,
        "user_contact_id",
    );

    // And the new rows go in next to the old ones.
    let fresh = conversation(&service, 60);
    store.create_conversation(&fresh, &credential("fresh")).await.unwrap();
    assert_eq!(store.get_conversation(t, fresh.id).await.unwrap(), fresh);
    let direct = Conversation {
        service_id: None,
        workflow_id: None,
        workflow_version: None,
        direct_user_id: Some(old.bob),
        ..conversation(&service, 61)
    };
    store.create_conversation(&direct, &credential("direct")).await.unwrap();
    assert_eq!(store.get_conversation(t, direct.id).await.unwrap(), direct);
    let missed = UserSession { conversation_id: direct.id, ..sessions_fixture(old, None) };
    store.record_user_session(&missed).await.unwrap();
    store.set_direct_chat(t, old.bob, &DirectChatSettings { enabled: true, ..Default::default() }).await.unwrap();
    assert!(store.get_user(t, old.bob).await.unwrap().direct.settings.enabled);
}

/// A missed invitation of Bob's, in `service` (none for a direct chat).
fn sessions_fixture(old: &BeforeDirectChats, service: Option<ServiceId>) -> UserSession {
    UserSession {
        id: new_id(),
        tenant_id: old.tenant,
        conversation_id: old.ended,
        service_id: service,
        user_id: old.bob,
        outcome: UserOutcome::Missed,
        offered_at: at(70),
        answered_at: None,
        ended_at: at(80),
        ring_secs: 10,
        connected_secs: 0,
    }
}

/// Writes the rows before the direct-chat migration with a migrator holding the migrations
/// before it, then opens (and fully migrates) the store.
async fn upgraded_to_direct_chats<DB>(
    pool: &sqlx::Pool<DB>,
    backend: Backend,
    url: &str,
) -> (Arc<dyn Store>, BeforeDirectChats)
where
    DB: sqlx::Database,
    <DB as sqlx::Database>::Connection: sqlx::migrate::Migrate,
    for<'c> &'c mut <DB as sqlx::Database>::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
{
    let (name, first_new) = match backend {
        Backend::Sqlite => ("sqlite", SQLITE_DIRECT_CHATS_MIGRATION),
        Backend::Postgres => ("postgres", POSTGRES_DIRECT_CHATS_MIGRATION),
    };
    let (before, _files) = migrator_before(name, first_new).await;
    before.run(pool).await.unwrap();
    let old = BeforeDirectChats::new();
    for statement in old.statements(backend) {
        sqlx::query(&statement).execute(pool).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    pool.close().await;
    (open_migrated(url).await, old)
}

mod existing_rows_survive_the_direct_chat_upgrade_and_users_get_snippet_credentials {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = sqlite_url_in(dir.path());
        let options = SqliteConnectOptions::from_str(&url).unwrap().create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options.clone()).await.unwrap();
        let (store, old) = upgraded_to_direct_chats(&pool, Backend::Sqlite, &url).await;
        story_upgraded_to_direct_chats(Arc::clone(&store), &old).await;
        store.close().await;

        // The rebuilt tables have every index and trigger the earlier migrations made, and
        // every reference holds.
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let names: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_schema WHERE type IN ('index', 'trigger') AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let names: Vec<_> = names.into_iter().map(|(n,)| n).collect();
        for expected in [
            "conversations_by_agent",
            "conversations_by_customer",
            "conversations_open",
            "log_entries_advance_last_seq",
            "log_entries_client_msg_id",
            "user_sessions_by_end",
            "user_sessions_by_user",
            "users_contact_id_key",
            "services_calendars_exist_on_insert",
            "services_calendars_exist_on_update",
            "calendars_named_by_services_stay",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} is missing from {names:?}");
        }
        let violations: Vec<(String,)> =
            sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check").fetch_all(&pool).await.unwrap();
        assert!(violations.is_empty(), "{violations:?}");
        let leftovers: Vec<(String,)> =
            sqlx::query_as("SELECT name FROM sqlite_schema WHERE name LIKE '%\\_new' ESCAPE '\\'")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        pool.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_postgres() {
        let Some(base) = postgres_test_url() else {
            eprintln!("note: {POSTGRES_URL_ENV} is not set; the PostgreSQL run of this story is skipped");
            return;
        };
        let url = fresh_postgres_url(&base).await;
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let (store, old) = upgraded_to_direct_chats(&pool, Backend::Postgres, &url).await;
        story_upgraded_to_direct_chats(Arc::clone(&store), &old).await;
        store.close().await;
        drop_postgres_db(&base, &url).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Opening stores

#[tokio::test]
async fn connect_refuses_an_unknown_scheme() {
    let Err(err) = parley_store::connect("mysql://localhost/parley").await else { panic!("a mysql URL was accepted") };
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
}

#[tokio::test]
async fn sqlite_creates_missing_directories_and_keeps_a_write_ahead_log() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested").join("deeper").join("parley.db");
    let store = open_migrated(&format!("sqlite://{}", file.display())).await;
    let (t, root, key) = tenant("acme", 0);
    store.create_tenant(&t, &root, &key).await.unwrap();
    assert!(file.exists(), "the database file was created");
    assert!(file.with_extension("db-wal").exists(), "the database runs in WAL mode");
    store.close().await;

    // Reopening finds the data, and migrating again is a no-op.
    let again = open_migrated(&format!("sqlite://{}", file.display())).await;
    assert_eq!(again.get_tenant(t.id).await.unwrap(), t);
    again.close().await;
}

#[tokio::test]
async fn sqlite_in_memory_serves_reads_from_its_single_connection() {
    // An in-memory database exists once per connection set-up; reads must see the writes.
    let store = open_migrated("sqlite::memory:").await;
    let (t, root, key) = tenant("acme", 0);
    store.create_tenant(&t, &root, &key).await.unwrap();
    assert_eq!(store.get_tenant(t.id).await.unwrap(), t);
    store.close().await;
}

async fn story_ended_refuses_messages(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "ended-log").await;
    let c = &w.conversation;
    let before = store.append_batch(&[entry(c, Some("k1"), "before", 1)]).await;
    let seq = appended(&before[0]).entry.seq;
    store.update_conversation(c.tenant_id, c.id, ConversationStatus::Ended, None, Some(at(2))).await.unwrap();
    // The system's own closing entry (no client_msg_id) is still written.
    let closing = store.append_batch(&[entry(c, None, "closing", 3)]).await;
    assert!(closing[0].is_ok());
    let after = store.append_batch(&[entry(c, Some("k2"), "after", 4), entry(c, Some("k1"), "before", 4)]).await;
    assert!(matches!(after[0], Err(StoreError::NotFound)), "{:?}", after[0]);
    assert_eq!((appended(&after[1]).entry.seq, appended(&after[1]).duplicate), (seq, true));
    let log = store.read_log(c.tenant_id, c.id, 0, 100).await.unwrap();
    assert_eq!(log.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Queue entries

const PRIORITIES: [Priority; 4] = [Priority::Low, Priority::Normal, Priority::High, Priority::Strict];

fn queue_entry(c: &Conversation, queued_at: OffsetDateTime, priority: Priority) -> QueueEntry {
    QueueEntry { conversation_id: c.id, queued_at, priority }
}

/// The tenant's queue entries ordered by conversation id (the store promises no order).
async fn queue_entries(store: &dyn Store, tenant: TenantId) -> Vec<QueueEntry> {
    let mut entries = store.list_queue_entries(tenant).await.expect("list queue entries");
    entries.sort_by_key(|e| e.conversation_id);
    entries
}

fn by_conversation<const N: usize>(mut entries: [QueueEntry; N]) -> Vec<QueueEntry> {
    entries.sort_by_key(|e| e.conversation_id);
    entries.to_vec()
}

async fn story_queue_entries(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let t = w.tenant.id;
    let first = w.conversation.clone();
    let second = conversation(&w.service, 10);
    store.create_conversation(&second, &credential("second")).await.unwrap();
    let never_queued = conversation(&w.service, 11);
    store.create_conversation(&never_queued, &credential("never")).await.unwrap();
    assert_eq!(queue_entries(store.as_ref(), t).await, [], "no conversation queued yet");

    let first_entry = queue_entry(&first, at_micros(20, 123_456), Priority::High);
    let second_entry = queue_entry(&second, at(21), Priority::Low);
    store.set_queue_entry(t, &first_entry).await.unwrap();
    store.set_queue_entry(t, &second_entry).await.unwrap();
    assert_eq!(
        queue_entries(store.as_ref(), t).await,
        by_conversation([first_entry, second_entry]),
        "exactly what was set, and nothing for the conversation never queued"
    );

    // Every priority round-trips; each set replaces the conversation's entry, time included.
    for (n, priority) in (1..).zip(PRIORITIES) {
        let requeued = queue_entry(&second, at_micros(30 + n, n), priority);
        store.set_queue_entry(t, &requeued).await.unwrap();
        assert_eq!(queue_entries(store.as_ref(), t).await, by_conversation([first_entry, requeued]));
    }
    let reprioritised = QueueEntry { priority: Priority::Strict, ..first_entry };
    store.set_queue_entry(t, &reprioritised).await.unwrap();
    let requeued = queue_entry(&first, at(40), Priority::Normal);
    store.set_queue_entry(t, &requeued).await.unwrap();
    let got = queue_entries(store.as_ref(), t).await;
    assert_eq!(got.iter().filter(|e| e.conversation_id == first.id).collect::<Vec<_>>(), [&requeued]);

    // The entry is kept beside the conversation, not in it.
    assert_eq!(store.get_conversation(t, first.id).await.unwrap(), first);
    assert_eq!(store.list_open_conversations(t).await.unwrap(), [first, second, never_queued]);

    let unknown = QueueEntry { conversation_id: ConversationId(new_id()), ..requeued };
    assert_not_found(store.set_queue_entry(t, &unknown).await, "queue entry of an unknown conversation");
    assert_eq!(queue_entries(store.as_ref(), t).await, got, "the refused set wrote nothing");
}

async fn story_queue_entry_of_ended_conversation(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let t = w.tenant.id;
    let ending = w.conversation.clone();
    let staying = conversation(&w.service, 10);
    store.create_conversation(&staying, &credential("staying")).await.unwrap();
    let ending_entry = queue_entry(&ending, at(20), Priority::Normal);
    let staying_entry = queue_entry(&staying, at(21), Priority::High);
    store.set_queue_entry(t, &ending_entry).await.unwrap();
    store.set_queue_entry(t, &staying_entry).await.unwrap();

    // Offered and connected conversations are open: their entries stay listed.
    store.update_conversation(t, staying.id, ConversationStatus::Offered, Some(w.agent.id), None).await.unwrap();
    store.update_conversation(t, ending.id, ConversationStatus::Connected, Some(w.agent.id), None).await.unwrap();
    assert_eq!(queue_entries(store.as_ref(), t).await, by_conversation([ending_entry, staying_entry]));

    store.update_conversation(t, ending.id, ConversationStatus::Ended, Some(w.agent.id), Some(at(30))).await.unwrap();
    assert_eq!(queue_entries(store.as_ref(), t).await, [staying_entry]);
    // A late set on the ended conversation is accepted but does not bring it back.
    store.set_queue_entry(t, &queue_entry(&ending, at(31), Priority::Strict)).await.unwrap();
    assert_eq!(queue_entries(store.as_ref(), t).await, [staying_entry]);

    store.update_conversation(t, staying.id, ConversationStatus::Ended, None, Some(at(40))).await.unwrap();
    assert_eq!(queue_entries(store.as_ref(), t).await, []);
}

async fn story_queue_entry_isolation(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let (ta, tb) = (a.tenant.id, b.tenant.id);
    let a_entry = queue_entry(&a.conversation, at(20), Priority::Normal);
    store.set_queue_entry(ta, &a_entry).await.unwrap();
    assert_eq!(queue_entries(store.as_ref(), tb).await, [], "B sees none of A's entries");

    let as_b = QueueEntry { priority: Priority::Strict, ..a_entry };
    assert_not_found(store.set_queue_entry(tb, &as_b).await, "A's conversation queued as B");
    let b_entry = queue_entry(&b.conversation, at(21), Priority::Low);
    assert_not_found(store.set_queue_entry(ta, &b_entry).await, "B's conversation queued as A");
    assert_eq!(queue_entries(store.as_ref(), ta).await, [a_entry], "B's attempt changed nothing");
    assert_eq!(queue_entries(store.as_ref(), tb).await, [], "A's attempt wrote nothing");

    store.set_queue_entry(tb, &b_entry).await.unwrap();
    assert_eq!(queue_entries(store.as_ref(), ta).await, [a_entry]);
    assert_eq!(queue_entries(store.as_ref(), tb).await, [b_entry]);
}

// ---------------------------------------------------------------------------------------------
// Reporting sessions

const USER_OUTCOMES: [UserOutcome; 6] = [
    UserOutcome::Accepted,
    UserOutcome::Declined,
    UserOutcome::Rona,
    UserOutcome::Cancelled,
    UserOutcome::Withdrawn,
    UserOutcome::Missed,
];

/// One offer of the world's conversation in its service to `user`, ended `ended` seconds after
/// `T0`.
fn user_session(w: &World, user: UserId, outcome: UserOutcome, ended: i64) -> UserSession {
    let accepted = outcome == UserOutcome::Accepted;
    UserSession {
        id: new_id(),
        tenant_id: w.tenant.id,
        conversation_id: w.conversation.id,
        service_id: Some(w.service.id),
        user_id: user,
        outcome,
        offered_at: at(ended - 30),
        answered_at: accepted.then(|| at(ended - 20)),
        ended_at: at(ended),
        ring_secs: 10,
        connected_secs: if accepted { 20 } else { 0 },
    }
}

/// The world's conversation's stay in its service, ended `ended` seconds after `T0`.
fn service_session(w: &World, user: Option<UserId>, outcome: Option<Outcome>, ended: i64) -> ServiceSession {
    ServiceSession {
        id: new_id(),
        tenant_id: w.tenant.id,
        conversation_id: w.conversation.id,
        service_id: w.service.id,
        outcome,
        user_id: user,
        started_at: at(ended - 100),
        ended_at: at(ended),
        ivr_secs: 30,
        queue_secs: 50,
        connected_secs: 20,
        offers: 2,
    }
}

fn window(from: OffsetDateTime, to: OffsetDateTime, limit: u32) -> ReportWindow {
    ReportWindow { from, to, limit }
}

/// A window around every session of the suite.
fn all_time() -> ReportWindow {
    window(at(-1_000_000), at(1_000_000), 1_000)
}

async fn story_user_sessions_round_trip(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let t = w.tenant.id;
    let mut written = Vec::new();
    for (n, outcome) in (1..).zip(USER_OUTCOMES) {
        let plain = user_session(&w, w.agent.id, outcome, 100 * n);
        let session = UserSession {
            offered_at: at_micros(100 * n - 30, n),
            answered_at: plain.answered_at.map(|_| at_micros(100 * n - 20, 999_999 - n)),
            ended_at: at_micros(100 * n, 123_456 + n),
            ring_secs: n,
            connected_secs: if plain.answered_at.is_some() { 86_400 * 365 } else { 0 },
            ..plain
        };
        store.record_user_session(&session).await.unwrap();
        written.push(session);
    }
    written.reverse();
    assert_eq!(store.list_user_sessions(t, all_time(), None).await.unwrap(), written, "exactly as written");
    assert_eq!(store.list_user_sessions(t, all_time(), Some(w.agent.id)).await.unwrap(), written);
}

async fn story_service_sessions_round_trip(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let t = w.tenant.id;
    let mut written = Vec::new();
    // Every outcome, then none (moved on by a transfer); handled by the agent or by no one.
    let outcomes = Outcome::ALL.into_iter().map(Some).chain([None]);
    for (n, outcome) in (1..).zip(outcomes) {
        let user = (outcome == Some(Outcome::UserAccepted) || n % 2 == 0).then_some(w.agent.id);
        let session = ServiceSession {
            started_at: at_micros(100 * n - 90, n),
            ended_at: at_micros(100 * n, 654_321 - n),
            ivr_secs: n,
            queue_secs: 2 * n,
            connected_secs: if user.is_some() { 3 * n } else { 0 },
            offers: u32::try_from(n).unwrap(),
            ..service_session(&w, user, outcome, 0)
        };
        store.record_service_session(&session).await.unwrap();
        written.push(session);
    }
    let most_offers = ServiceSession { offers: u32::MAX, ..service_session(&w, None, None, 2_000) };
    store.record_service_session(&most_offers).await.unwrap();
    written.push(most_offers);
    written.reverse();
    assert_eq!(store.list_service_sessions(t, all_time(), None).await.unwrap(), written, "exactly as written");
    assert_eq!(store.list_service_sessions(t, all_time(), Some(w.service.id)).await.unwrap(), written);
}

async fn story_session_windows(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let t = w.tenant.id;
    let agent = Some(w.agent.id);
    // Ended at 100, 200 (twice, to see the tie broken by id), 300, 400 minus a microsecond, 400.
    let ends = [at(100), at(200), at(200), at(300), at_micros(399, 999_999), at(400)];
    let mut users = Vec::new();
    let mut services = Vec::new();
    for (n, ended_at) in ends.into_iter().enumerate() {
        let u = UserSession { ended_at, ..user_session(&w, w.agent.id, USER_OUTCOMES[n % USER_OUTCOMES.len()], 0) };
        let s = ServiceSession { ended_at, ..service_session(&w, agent, Some(Outcome::UserAccepted), 0) };
        store.record_user_session(&u).await.unwrap();
        store.record_service_session(&s).await.unwrap();
        users.push(u);
        services.push(s);
    }
    // Newest first; the two ended at 200 by id, descending.
    let user_order = |mut v: Vec<UserSession>| {
        v.sort_by_key(|s| Reverse((s.ended_at, s.id)));
        v
    };
    let service_order = |mut v: Vec<ServiceSession>| {
        v.sort_by_key(|s| Reverse((s.ended_at, s.id)));
        v
    };

    // From inclusive, to exclusive: 200, 200, 300 and 399.999999 are in; 100 and 400 are out.
    let inside = window(at(200), at(400), 100);
    let expected_users = user_order(users[1..5].to_vec());
    let expected_services = service_order(services[1..5].to_vec());
    assert_eq!(store.list_user_sessions(t, inside, None).await.unwrap(), expected_users);
    assert_eq!(store.list_service_sessions(t, inside, None).await.unwrap(), expected_services);
    assert_eq!(expected_users[0].ended_at, at_micros(399, 999_999));
    assert!(expected_users[2].ended_at == at(200) && expected_users[2].id > expected_users[3].id);

    // The limit keeps the newest.
    let two = ReportWindow { limit: 2, ..inside };
    assert_eq!(store.list_user_sessions(t, two, None).await.unwrap(), expected_users[..2]);
    assert_eq!(store.list_service_sessions(t, two, None).await.unwrap(), expected_services[..2]);
    let three = ReportWindow { limit: 3, ..inside };
    assert_eq!(store.list_user_sessions(t, three, agent).await.unwrap(), expected_users[..3]);
    assert_eq!(store.list_service_sessions(t, three, Some(w.service.id)).await.unwrap(), expected_services[..3]);
    let none = ReportWindow { limit: 0, ..inside };
    assert_eq!(store.list_user_sessions(t, none, None).await.unwrap(), []);
    assert_eq!(store.list_service_sessions(t, none, None).await.unwrap(), []);

    // A window a microsecond wide holds what ended at its start; an empty one holds nothing.
    let instant = window(at(400), at_micros(400, 1), 100);
    assert_eq!(store.list_user_sessions(t, instant, None).await.unwrap(), [users[5].clone()]);
    assert_eq!(store.list_service_sessions(t, instant, None).await.unwrap(), [services[5].clone()]);
    let empty = window(at(300), at(300), 100);
    assert_eq!(store.list_user_sessions(t, empty, None).await.unwrap(), []);
    assert_eq!(store.list_service_sessions(t, empty, None).await.unwrap(), []);

    assert_eq!(store.list_user_sessions(t, all_time(), None).await.unwrap(), user_order(users));
    assert_eq!(store.list_service_sessions(t, all_time(), None).await.unwrap(), service_order(services));
}

async fn story_session_filters(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let t = w.tenant.id;
    let bob = user(t, w.root.id, "bob@acme.example", 5);
    store.create_user(&bob, None).await.unwrap();
    let billing = service(t, w.root.id, w.workflow.id, 6);
    store.create_service(&billing, &[]).await.unwrap();

    let agent_early = user_session(&w, w.agent.id, UserOutcome::Rona, 100);
    let bob_offer =
        UserSession { service_id: Some(billing.id), ..user_session(&w, bob.id, UserOutcome::Accepted, 110) };
    let agent_late = user_session(&w, w.agent.id, UserOutcome::Declined, 120);
    for s in [&agent_early, &bob_offer, &agent_late] {
        store.record_user_session(s).await.unwrap();
    }
    let list = |window, user| {
        let store = Arc::clone(&store);
        async move { store.list_user_sessions(t, window, user).await.unwrap() }
    };
    assert_eq!(list(all_time(), Some(w.agent.id)).await, [agent_late.clone(), agent_early.clone()]);
    assert_eq!(list(all_time(), Some(bob.id)).await, slice::from_ref(&bob_offer));
    assert_eq!(list(all_time(), Some(UserId(new_id()))).await, []);
    assert_eq!(list(all_time(), None).await, [agent_late.clone(), bob_offer.clone(), agent_early.clone()]);
    assert_eq!(list(window(at(105), at(200), 10), Some(w.agent.id)).await, slice::from_ref(&agent_late));
    assert_eq!(list(window(at(0), at(200), 1), Some(w.agent.id)).await, slice::from_ref(&agent_late));

    let main_early = service_session(&w, None, None, 100);
    let billing_stay = ServiceSession {
        service_id: billing.id,
        ..service_session(&w, Some(bob.id), Some(Outcome::UserAccepted), 110)
    };
    let main_late = service_session(&w, Some(w.agent.id), Some(Outcome::Abandoned), 120);
    for s in [&main_early, &billing_stay, &main_late] {
        store.record_service_session(s).await.unwrap();
    }
    let list = |window, service| {
        let store = Arc::clone(&store);
        async move { store.list_service_sessions(t, window, service).await.unwrap() }
    };
    assert_eq!(list(all_time(), Some(w.service.id)).await, [main_late.clone(), main_early.clone()]);
    assert_eq!(list(all_time(), Some(billing.id)).await, slice::from_ref(&billing_stay));
    assert_eq!(list(all_time(), Some(ServiceId(new_id()))).await, []);
    assert_eq!(list(all_time(), None).await, [main_late.clone(), billing_stay, main_early]);
    assert_eq!(list(window(at(105), at(200), 10), Some(w.service.id)).await, slice::from_ref(&main_late));
    assert_eq!(list(window(at(0), at(200), 1), Some(w.service.id)).await, [main_late]);
}

async fn story_session_references(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let (ta, tb) = (a.tenant.id, b.tenant.id);

    let good = user_session(&a, a.agent.id, UserOutcome::Accepted, 100);
    let refused = [
        (UserSession { conversation_id: b.conversation.id, ..good.clone() }, "B's conversation"),
        (UserSession { service_id: Some(b.service.id), ..good.clone() }, "B's service"),
        (UserSession { user_id: b.agent.id, ..good.clone() }, "B's user"),
        (UserSession { conversation_id: ConversationId(new_id()), ..good.clone() }, "an unknown conversation"),
        (UserSession { service_id: Some(ServiceId(new_id())), ..good.clone() }, "an unknown service"),
        (UserSession { user_id: UserId(new_id()), ..good.clone() }, "an unknown user"),
        (UserSession { tenant_id: tb, ..good.clone() }, "A's rows recorded as B"),
        (UserSession { tenant_id: TenantId(new_id()), ..good.clone() }, "an unknown tenant"),
    ];
    for (session, what) in refused {
        assert_not_found(store.record_user_session(&session).await, &format!("user session naming {what}"));
    }

    let good = service_session(&a, Some(a.agent.id), Some(Outcome::UserAccepted), 100);
    let refused = [
        (ServiceSession { conversation_id: b.conversation.id, ..good.clone() }, "B's conversation"),
        (ServiceSession { service_id: b.service.id, ..good.clone() }, "B's service"),
        (ServiceSession { user_id: Some(b.agent.id), ..good.clone() }, "B's user"),
        (ServiceSession { conversation_id: ConversationId(new_id()), ..good.clone() }, "an unknown conversation"),
        (ServiceSession { service_id: ServiceId(new_id()), ..good.clone() }, "an unknown service"),
        (ServiceSession { user_id: Some(UserId(new_id())), ..good.clone() }, "an unknown user"),
        (ServiceSession { tenant_id: tb, ..good.clone() }, "A's rows recorded as B"),
        (ServiceSession { tenant_id: TenantId(new_id()), ..good.clone() }, "an unknown tenant"),
    ];
    for (session, what) in refused {
        assert_not_found(store.record_service_session(&session).await, &format!("service session naming {what}"));
    }

    for t in [ta, tb] {
        assert_eq!(store.list_user_sessions(t, all_time(), None).await.unwrap(), [], "no refused session written");
        assert_eq!(store.list_service_sessions(t, all_time(), None).await.unwrap(), []);
    }
    // The same sessions naming only A's rows go through.
    store.record_user_session(&user_session(&a, a.agent.id, UserOutcome::Accepted, 100)).await.unwrap();
    store.record_service_session(&good).await.unwrap();
    store.record_service_session(&ServiceSession { id: new_id(), user_id: None, ..good }).await.unwrap();
}

async fn story_session_isolation(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let (ta, tb) = (a.tenant.id, b.tenant.id);
    let a_user = user_session(&a, a.agent.id, UserOutcome::Accepted, 100);
    let b_user = user_session(&b, b.agent.id, UserOutcome::Declined, 101);
    let a_service = service_session(&a, Some(a.agent.id), Some(Outcome::UserAccepted), 100);
    let b_service = service_session(&b, None, Some(Outcome::HandledBySystem), 101);
    store.record_user_session(&a_user).await.unwrap();
    store.record_user_session(&b_user).await.unwrap();
    store.record_service_session(&a_service).await.unwrap();
    store.record_service_session(&b_service).await.unwrap();

    assert_eq!(store.list_user_sessions(ta, all_time(), None).await.unwrap(), slice::from_ref(&a_user));
    assert_eq!(store.list_user_sessions(tb, all_time(), None).await.unwrap(), slice::from_ref(&b_user));
    assert_eq!(store.list_service_sessions(ta, all_time(), None).await.unwrap(), slice::from_ref(&a_service));
    assert_eq!(store.list_service_sessions(tb, all_time(), None).await.unwrap(), slice::from_ref(&b_service));

    // Filtering by the other tenant's user or service finds nothing either way.
    assert_eq!(store.list_user_sessions(ta, all_time(), Some(b.agent.id)).await.unwrap(), []);
    assert_eq!(store.list_user_sessions(tb, all_time(), Some(a.agent.id)).await.unwrap(), []);
    assert_eq!(store.list_service_sessions(ta, all_time(), Some(b.service.id)).await.unwrap(), []);
    assert_eq!(store.list_service_sessions(tb, all_time(), Some(a.service.id)).await.unwrap(), []);
    assert_eq!(store.list_user_sessions(tb, all_time(), Some(b.agent.id)).await.unwrap(), [b_user]);
    assert_eq!(store.list_service_sessions(ta, all_time(), Some(a.service.id)).await.unwrap(), [a_service]);
}

async fn story_session_conflicts(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let t = w.tenant.id;
    let user_first = user_session(&w, w.agent.id, UserOutcome::Accepted, 100);
    store.record_user_session(&user_first).await.unwrap();
    assert_conflict(store.record_user_session(&user_first).await, "user_session_id");
    let user_other = UserSession { id: user_first.id, ..user_session(&w, w.agent.id, UserOutcome::Rona, 200) };
    assert_conflict(store.record_user_session(&user_other).await, "user_session_id");
    assert_eq!(store.list_user_sessions(t, all_time(), None).await.unwrap(), slice::from_ref(&user_first));

    let service_first = service_session(&w, None, None, 100);
    store.record_service_session(&service_first).await.unwrap();
    assert_conflict(store.record_service_session(&service_first).await, "service_session_id");
    let service_other = ServiceSession {
        id: service_first.id,
        ..service_session(&w, Some(w.agent.id), Some(Outcome::UserAccepted), 200)
    };
    assert_conflict(store.record_service_session(&service_other).await, "service_session_id");
    assert_eq!(store.list_service_sessions(t, all_time(), None).await.unwrap(), [service_first]);
}

async fn story_last_agent(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let t = a.tenant.id;
    let email = "ann@example.com";
    assert_eq!(store.last_agent_of_customer(t, email, at(0)).await.unwrap(), None, "nobody served Ann yet");
    // Connected, not ended: not yet "last".
    let c = &a.conversation;
    store.update_conversation(t, c.id, ConversationStatus::Connected, Some(a.agent.id), None).await.unwrap();
    assert_eq!(store.last_agent_of_customer(t, email, at(0)).await.unwrap(), None);
    store.update_conversation(t, c.id, ConversationStatus::Ended, Some(a.agent.id), Some(at(100))).await.unwrap();
    assert_eq!(store.last_agent_of_customer(t, email, at(100)).await.unwrap(), Some(a.agent.id));
    assert_eq!(store.last_agent_of_customer(t, email, at(101)).await.unwrap(), None, "ended before the lookback");
    assert_eq!(store.last_agent_of_customer(t, "bob@example.com", at(0)).await.unwrap(), None);
    // Tenant B has its own Ann, served by nobody.
    assert_eq!(store.last_agent_of_customer(b.tenant.id, email, at(0)).await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Skills

fn skill(tenant: TenantId, name: &str, created: i64) -> Skill {
    Skill { id: SkillId(new_id()), tenant_id: tenant, name: name.into(), created_at: at(created) }
}

fn held(skill: &Skill, level: u8) -> UserSkill {
    UserSkill { skill_id: skill.id, level }
}

/// `(user, skill)` pairs ordered as `list_user_skills` promises: by user, then skill.
fn by_user_then_skill(mut pairs: Vec<(UserId, UserSkill)>) -> Vec<(UserId, UserSkill)> {
    pairs.sort_by_key(|(user, s)| (*user, s.skill_id));
    pairs
}

async fn story_skills(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let t = w.tenant.id;
    assert_eq!(store.list_skills(t).await.unwrap(), [], "a new tenant has no skills");

    // Created out of name order; byte-wise "French" < "Tier 2" < "Tier1" < "english", but the list
    // ignores case (english first) and compares the rest by code point, whatever the database's
    // locale (which might ignore the space and put "Tier1" first).
    let french = Skill { created_at: at_micros(10, 123_456), ..skill(t, "French", 0) };
    let english = skill(t, "english", 11);
    let tier1 = skill(t, "Tier1", 12);
    let tier2 = skill(t, "Tier 2", 13);
    let accented = skill(t, "Élan ✓", 14);
    for s in [&tier1, &french, &accented, &tier2, &english] {
        store.create_skill(s).await.unwrap();
    }
    assert_eq!(
        store.list_skills(t).await.unwrap(),
        [english.clone(), french.clone(), tier2, tier1, accented],
        "ordered by lowercased name, exactly as created (microseconds included)"
    );

    assert_conflict(store.create_skill(&Skill { name: "Other".into(), ..english }).await, "skill_id");
    assert_not_found(store.create_skill(&skill(TenantId(new_id()), "Orphan", 0)).await, "skill of an unknown tenant");
    assert_eq!(store.list_skills(t).await.unwrap().len(), 5, "nothing refused was written");
}

async fn story_skill_names(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let (ta, tb) = (a.tenant.id, b.tenant.id);
    let billing = skill(ta, "Billing", 0);
    let french = skill(ta, "Français", 1);
    store.create_skill(&billing).await.unwrap();
    store.create_skill(&french).await.unwrap();

    for name in ["Billing", "BILLING", "billing", "bIlLiNg"] {
        assert_conflict(store.create_skill(&skill(ta, name, 2)).await, "skill_name");
    }
    // Case is folded beyond ASCII, alike on both backends.
    assert_conflict(store.create_skill(&skill(ta, "FRANÇAIS", 2)).await, "skill_name");
    assert_eq!(store.list_skills(ta).await.unwrap(), [billing.clone(), french.clone()], "no refused skill written");

    // Only the case is ignored; and another tenant may use the same names in any case.
    let billing_2 = skill(ta, "Billing 2", 3);
    store.create_skill(&billing_2).await.unwrap();
    let b_billing = skill(tb, "billing", 4);
    let b_french = skill(tb, "Français", 5);
    store.create_skill(&b_billing).await.unwrap();
    store.create_skill(&b_french).await.unwrap();
    assert_eq!(store.list_skills(ta).await.unwrap(), [billing.clone(), billing_2, french]);
    assert_eq!(store.list_skills(tb).await.unwrap(), [b_billing, b_french]);

    // A deleted skill's name is free again.
    store.delete_skill(ta, billing.id).await.unwrap();
    let again = skill(ta, "BILLING", 6);
    store.create_skill(&again).await.unwrap();
    assert!(store.list_skills(ta).await.unwrap().contains(&again));
}

async fn story_user_skills(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let (ta, tb) = (a.tenant.id, b.tenant.id);
    let bob = user(ta, a.root.id, "bob@acme.example", 5);
    store.create_user(&bob, None).await.unwrap();
    let [billing, french, german] = [skill(ta, "Billing", 0), skill(ta, "French", 1), skill(ta, "German", 2)];
    for s in [&billing, &french, &german] {
        store.create_skill(s).await.unwrap();
    }
    let b_skill = skill(tb, "Billing", 0);
    store.create_skill(&b_skill).await.unwrap();
    assert_eq!(store.list_user_skills(ta).await.unwrap(), [], "nobody holds a skill yet");

    let agent = a.agent.id;
    store.set_user_skills(ta, agent, &[held(&german, 3), held(&billing, 10)]).await.unwrap();
    store.set_user_skills(ta, bob.id, &[held(&french, 1)]).await.unwrap();
    let first =
        by_user_then_skill(vec![(agent, held(&german, 3)), (agent, held(&billing, 10)), (bob.id, held(&french, 1))]);
    assert_eq!(store.list_user_skills(ta).await.unwrap(), first, "ordered by user, then skill");

    // A second set replaces the first: a skill left out goes, a level changes, a skill is added.
    store.set_user_skills(ta, agent, &[held(&billing, 4), held(&french, 7)]).await.unwrap();
    let second =
        by_user_then_skill(vec![(agent, held(&billing, 4)), (agent, held(&french, 7)), (bob.id, held(&french, 1))]);
    assert_eq!(store.list_user_skills(ta).await.unwrap(), second, "bob's skills are untouched");

    // A set naming a skill or user the tenant does not have fails whole, after the good entries
    // before it: the previous set stays.
    let ghost = UserSkill { skill_id: SkillId(new_id()), level: 5 };
    let refused = [
        (agent, vec![held(&german, 2), held(&b_skill, 5)], "B's skill"),
        (agent, vec![held(&german, 2), ghost], "an unknown skill"),
        (b.agent.id, vec![held(&german, 2)], "B's user"),
        (b.agent.id, vec![], "B's user, clearing"),
        (UserId(new_id()), vec![], "an unknown user"),
    ];
    for (user, skills, what) in refused {
        assert_not_found(store.set_user_skills(ta, user, &skills).await, &format!("set naming {what}"));
        assert_eq!(store.list_user_skills(ta).await.unwrap(), second, "the set naming {what} changed nothing");
    }
    assert_not_found(store.set_user_skills(tb, agent, &[held(&b_skill, 5)]).await, "A's user set as B");
    assert_eq!(store.list_user_skills(tb).await.unwrap(), []);

    // An empty set clears the user's skills.
    store.set_user_skills(ta, agent, &[]).await.unwrap();
    assert_eq!(store.list_user_skills(ta).await.unwrap(), [(bob.id, held(&french, 1))]);
}

async fn story_delete_skill(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let t = w.tenant.id;
    let billing = skill(t, "Billing", 0);
    let french = skill(t, "French", 1);
    store.create_skill(&billing).await.unwrap();
    store.create_skill(&french).await.unwrap();
    store.set_user_skills(t, w.agent.id, &[held(&billing, 5)]).await.unwrap();

    assert_conflict(store.delete_skill(t, billing.id).await, "skill_in_use");
    assert_eq!(store.list_skills(t).await.unwrap(), [billing.clone(), french.clone()], "the held skill stays");
    assert_eq!(store.list_user_skills(t).await.unwrap(), [(w.agent.id, held(&billing, 5))], "and stays held");

    // A skill nobody holds goes at once; the held one once the user's skills no longer name it.
    store.delete_skill(t, french.id).await.unwrap();
    store.set_user_skills(t, w.agent.id, &[]).await.unwrap();
    store.delete_skill(t, billing.id).await.unwrap();
    assert_eq!(store.list_skills(t).await.unwrap(), []);
    assert_not_found(store.delete_skill(t, billing.id).await, "deleting twice");
    assert_not_found(store.delete_skill(t, SkillId(new_id())).await, "deleting an unknown skill");
    assert_not_found(store.set_user_skills(t, w.agent.id, &[held(&billing, 5)]).await, "holding a deleted skill");
}

async fn story_skill_isolation(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let (ta, tb) = (a.tenant.id, b.tenant.id);
    let a_skill = skill(ta, "Billing", 0);
    let idle = skill(ta, "French", 1);
    store.create_skill(&a_skill).await.unwrap();
    store.create_skill(&idle).await.unwrap();
    store.set_user_skills(ta, a.agent.id, &[held(&a_skill, 6)]).await.unwrap();

    assert_eq!(store.list_skills(tb).await.unwrap(), [], "B sees none of A's skills");
    assert_eq!(store.list_user_skills(tb).await.unwrap(), [], "nor who holds them");
    // B deleting A's skills finds nothing (not even "in use" for the held one).
    assert_not_found(store.delete_skill(tb, a_skill.id).await, "A's held skill deleted as B");
    assert_not_found(store.delete_skill(tb, idle.id).await, "A's idle skill deleted as B");
    // Nor can B give A's skill to its own agent, or change A's agent.
    assert_not_found(store.set_user_skills(tb, b.agent.id, &[held(&idle, 2)]).await, "B's agent given A's skill");
    assert_not_found(store.set_user_skills(tb, a.agent.id, &[]).await, "A's agent cleared as B");
    // Nor create a skill under A's id.
    assert_conflict(store.create_skill(&Skill { tenant_id: tb, ..idle.clone() }).await, "skill_id");

    assert_eq!(store.list_skills(ta).await.unwrap(), [a_skill.clone(), idle]);
    assert_eq!(store.list_user_skills(ta).await.unwrap(), [(a.agent.id, held(&a_skill, 6))]);
    assert_eq!(store.list_user_skills(tb).await.unwrap(), []);
}

// ---------------------------------------------------------------------------------------------
// Domain templates and widget access

async fn story_domain_templates(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let t = a.tenant.id;
    let shop = DomainTemplate { created_at: at_micros(20, 7), ..domain_template(t, a.root.id, "Shop", 0) };
    let blog = DomainTemplate {
        origins: vec!["https://blog.example.org".into()],
        ..domain_template(t, a.root.id, "Blog", 10)
    };
    let same_time = domain_template(t, a.root.id, "Same time", 10);
    store.create_domain_template(&shop).await.unwrap();
    store.create_domain_template(&blog).await.unwrap();
    store.create_domain_template(&same_time).await.unwrap();
    assert_eq!(store.get_domain_template(t, shop.id).await.unwrap(), shop, "origins and time round-trip");
    assert_eq!(store.get_domain_template(t, blog.id).await.unwrap(), blog);

    let mut tied = [blog.clone(), same_time.clone()];
    tied.sort_by_key(|d| d.id);
    let expected = [tied[0].clone(), tied[1].clone(), shop.clone()];
    assert_eq!(store.list_domain_templates(t).await.unwrap(), expected, "ordered by created_at, then id");

    assert_conflict(store.create_domain_template(&shop).await, "domain_template_id");
    assert_not_found(
        store.create_domain_template(&domain_template(t, OrgUnitId(new_id()), "x", 0)).await,
        "template in an unknown unit",
    );
    assert_not_found(store.get_domain_template(t, DomainTemplateId(new_id())).await, "unknown template");
    assert_eq!(store.list_domain_templates(t).await.unwrap().len(), 3, "refused creates add nothing");
}

async fn story_domain_template_changes(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let t = a.tenant.id;
    let shop = domain_template(t, a.root.id, "Shop", 10);
    let blog = domain_template(t, a.root.id, "Blog", 20);
    store.create_domain_template(&shop).await.unwrap();
    store.create_domain_template(&blog).await.unwrap();

    // Name and origins change; id, unit and creation time do not, whatever the caller passes.
    let changed =
        DomainTemplate { name: "Web shop".into(), origins: vec!["https://shop.example.net".into()], ..shop.clone() };
    let sloppy = DomainTemplate { ou_id: OrgUnitId(new_id()), created_at: at(99), ..changed.clone() };
    store.update_domain_template(&sloppy).await.unwrap();
    assert_eq!(store.get_domain_template(t, shop.id).await.unwrap(), changed);
    assert_eq!(store.get_domain_template(t, blog.id).await.unwrap(), blog, "the other template is untouched");
    assert_eq!(store.list_domain_templates(t).await.unwrap(), [changed.clone(), blog.clone()]);
    assert_not_found(
        store.update_domain_template(&domain_template(t, a.root.id, "ghost", 0)).await,
        "update of an unknown template",
    );

    store.delete_domain_template(t, shop.id).await.unwrap();
    assert_not_found(store.get_domain_template(t, shop.id).await, "the deleted template");
    assert_not_found(store.delete_domain_template(t, shop.id).await, "deleting twice");
    assert_not_found(store.update_domain_template(&changed).await, "updating the deleted template");
    assert_eq!(store.list_domain_templates(t).await.unwrap(), [blog]);
}

async fn story_domain_template_isolation(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let (ta, tb) = (a.tenant.id, b.tenant.id);
    let shop = domain_template(ta, a.root.id, "Shop", 10);
    store.create_domain_template(&shop).await.unwrap();

    assert_not_found(
        store.create_domain_template(&domain_template(ta, b.root.id, "x", 0)).await,
        "template in B's unit",
    );
    assert_not_found(store.get_domain_template(tb, shop.id).await, "A's template read as B");
    assert!(store.list_domain_templates(tb).await.unwrap().is_empty());
    let hijack = DomainTemplate { tenant_id: tb, name: "Hijacked".into(), origins: vec![], ..shop.clone() };
    assert_not_found(store.update_domain_template(&hijack).await, "A's template changed as B");
    assert_not_found(store.delete_domain_template(tb, shop.id).await, "A's template deleted as B");
    assert_conflict(
        store.create_domain_template(&DomainTemplate { tenant_id: tb, ou_id: b.root.id, ..shop.clone() }).await,
        "domain_template_id",
    );
    assert_eq!(store.get_domain_template(ta, shop.id).await.unwrap(), shop, "A's template is unchanged");
    assert_eq!(store.list_domain_templates(ta).await.unwrap(), [shop]);
}

async fn story_service_access(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let t = a.tenant.id;
    assert_eq!(store.get_service(t, a.service.id).await.unwrap().access, WidgetAccess::default());
    let shop = domain_template(t, a.root.id, "Shop", 10);
    let blog = domain_template(t, a.root.id, "Blog", 11);
    store.create_domain_template(&shop).await.unwrap();
    store.create_domain_template(&blog).await.unwrap();

    let restricted = Service {
        access: WidgetAccess { restrict_access: true, domain_template_ids: vec![shop.id, blog.id] },
        ..service(t, a.root.id, a.workflow.id, 20)
    };
    store.create_service(&restricted, &[]).await.unwrap();
    assert_eq!(store.get_service(t, restricted.id).await.unwrap(), restricted);
    assert_eq!(store.find_service_by_contact_id(&restricted.contact_id).await.unwrap(), restricted);
    assert_eq!(store.list_services(t).await.unwrap(), [a.service.clone(), restricted.clone()]);

    // Order of the linked templates is kept; switching the restriction off keeps the links.
    let reordered = Service {
        access: WidgetAccess { restrict_access: false, domain_template_ids: vec![blog.id, shop.id] },
        ..restricted.clone()
    };
    store.update_service(&reordered).await.unwrap();
    assert_eq!(store.get_service(t, restricted.id).await.unwrap(), reordered);
    let opened = Service { access: WidgetAccess::default(), ..reordered };
    store.update_service(&opened).await.unwrap();
    assert_eq!(store.get_service(t, restricted.id).await.unwrap(), opened);
    let limited = Service {
        access: WidgetAccess { restrict_access: true, domain_template_ids: vec![shop.id] },
        ..a.service.clone()
    };
    store.update_service(&limited).await.unwrap();
    assert_eq!(store.list_services(t).await.unwrap(), [limited, opened]);
}

fn mark(delivered_seq: i64, read_seq: i64) -> Watermark {
    Watermark { delivered_seq, read_seq }
}

async fn story_receipts(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let c = &w.conversation;
    let (t, id) = (c.tenant_id, c.id);
    assert_eq!(store.get_receipts(t, id).await.unwrap(), Receipts::default(), "a new chat has no receipts");
    let batch: Vec<_> = (1..=4).map(|i| entry(c, None, &format!("m{i}"), 10 + i)).collect();
    for r in &store.append_batch(&batch).await {
        appended(r);
    }

    let r = store.mark_receipt(t, id, Reader::Customer, mark(2, 0)).await.unwrap();
    assert_eq!(r, Receipts { customer: mark(2, 0), agent: mark(0, 0) });
    // Reading implies delivery; the other side's marks stay.
    let r = store.mark_receipt(t, id, Reader::Customer, mark(0, 3)).await.unwrap();
    assert_eq!(r.customer, mark(3, 3));
    let r = store.mark_receipt(t, id, Reader::Agent, mark(4, 1)).await.unwrap();
    assert_eq!(r, Receipts { customer: mark(3, 3), agent: mark(4, 1) });
    // Never lowered, never past the last seq, negative marks change nothing.
    let r = store.mark_receipt(t, id, Reader::Customer, mark(1, 1)).await.unwrap();
    assert_eq!(r.customer, mark(3, 3));
    let r = store.mark_receipt(t, id, Reader::Agent, mark(99, 99)).await.unwrap();
    assert_eq!(r.agent, mark(4, 4));
    let r = store.mark_receipt(t, id, Reader::Customer, mark(-5, -5)).await.unwrap();
    assert_eq!(r.customer, mark(3, 3));
    assert_eq!(store.get_receipts(t, id).await.unwrap(), Receipts { customer: mark(3, 3), agent: mark(4, 4) });
    // Receipts do not touch the log.
    assert_eq!(seqs(store.as_ref(), c).await, [1, 2, 3, 4]);
    assert_eq!(store.get_conversation(t, id).await.unwrap().last_seq, 4);
}

async fn story_receipt_isolation(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    appended(&store.append_batch(&[entry(&a.conversation, None, "hi", 10)]).await[0]);
    let (ta, ca) = (a.tenant.id, a.conversation.id);
    assert_not_found(store.mark_receipt(b.tenant.id, ca, Reader::Agent, mark(1, 1)).await, "mark across tenants");
    assert_not_found(store.get_receipts(b.tenant.id, ca).await, "read across tenants");
    assert_not_found(store.get_receipts(ta, ConversationId(new_id())).await, "unknown conversation");
    assert_eq!(store.get_receipts(ta, ca).await.unwrap(), Receipts::default(), "nothing moved");
}

fn attachment_record(c: &Conversation, name: &str, created: i64) -> AttachmentRecord {
    AttachmentRecord {
        tenant_id: c.tenant_id,
        conversation_id: c.id,
        attachment: Attachment {
            id: AttachmentId(new_id()),
            name: name.into(),
            content_type: "application/pdf".into(),
            size: 5_000_000_000,
        },
        sha256: "ab".repeat(32),
        created_at: at_micros(created, 123_456),
    }
}

async fn story_attachments(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let c = &w.conversation;
    let r = attachment_record(c, "Rechnung März.pdf", 10);
    store.create_attachment(&r).await.unwrap();
    assert_eq!(store.get_attachment(c.tenant_id, c.id, r.attachment.id).await.unwrap(), r);
    let again = AttachmentRecord { sha256: "cd".repeat(32), ..r.clone() };
    assert_conflict(store.create_attachment(&again).await, "attachment_id");
    assert_eq!(store.get_attachment(c.tenant_id, c.id, r.attachment.id).await.unwrap(), r, "the first one stays");
    let orphan = AttachmentRecord { conversation_id: ConversationId(new_id()), ..attachment_record(c, "x.pdf", 11) };
    assert_not_found(store.create_attachment(&orphan).await, "unknown conversation");
}

async fn story_attachment_isolation(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let r = attachment_record(&a.conversation, "a.pdf", 10);
    store.create_attachment(&r).await.unwrap();
    let id = r.attachment.id;
    assert_not_found(store.get_attachment(b.tenant.id, a.conversation.id, id).await, "another tenant");
    let other = conversation(&a.service, 12);
    store.create_conversation(&other, &credential("other")).await.unwrap();
    assert_not_found(store.get_attachment(a.tenant.id, other.id, id).await, "another conversation");
    let cross = AttachmentRecord { tenant_id: b.tenant.id, ..attachment_record(&a.conversation, "b.pdf", 13) };
    assert_not_found(store.create_attachment(&cross).await, "into another tenant's conversation");
}

// ---------------------------------------------------------------------------------------------
// Direct chats: a user's personal snippet, and chats straight to that user

/// A direct chat of the world's tenant with `user`: no service, no workflow.
fn direct_conversation(w: &World, user: UserId, created: i64) -> Conversation {
    Conversation {
        service_id: None,
        workflow_id: None,
        workflow_version: None,
        direct_user_id: Some(user),
        status: ConversationStatus::Offered,
        agent_id: Some(user),
        first_message: None,
        ..conversation(&w.service, created)
    }
}

/// Settings unlike the defaults in every field.
fn direct_settings(template: DomainTemplateId) -> DirectChatSettings {
    DirectChatSettings {
        enabled: true,
        invite_secs: 45,
        access: WidgetAccess { restrict_access: true, domain_template_ids: vec![template] },
        system_messages_id: None,
        idle_warning_secs: 90,
        idle_close_secs: 30,
        idle_warning_text: "Noch da? ✓".into(),
    }
}

fn system_messages(tenant: TenantId, ou: OrgUnitId, name: &str, created: i64) -> SystemMessages {
    let content = serde_json::json!({"name": name, "scope": "service", "default_language": "en",
        "agent_name": {"mode": "custom", "template": "$(User.FirstName) ✓"}, "texts": [
        {"event": "customer.connected", "language": "en", "text": "Hi, $(Customer.DisplayName)"},
        {"event": "customer.connected", "language": "de", "text": "Grüezi"}]});
    SystemMessages {
        id: SystemMessagesId(new_id()),
        tenant_id: tenant,
        ou_id: ou,
        content: serde_json::from_value(content).unwrap(),
        created_at: at(created),
    }
}

async fn story_system_messages(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let t = a.tenant.id;
    let first = system_messages(t, a.root.id, "Support texts", 10);
    let second = system_messages(t, a.root.id, "Sales texts", 5);
    store.create_system_messages(&first).await.unwrap();
    store.create_system_messages(&second).await.unwrap();
    assert_eq!(store.get_system_messages(t, first.id).await.unwrap(), first, "content round-trips");
    assert_eq!(store.list_system_messages(t).await.unwrap(), [second.clone(), first.clone()], "by creation");

    let mut changed = first.clone();
    changed.content.name = "Renamed".into();
    changed.content.texts.pop();
    store.update_system_messages(&changed).await.unwrap();
    assert_eq!(store.get_system_messages(t, first.id).await.unwrap(), changed);

    // A service links one; the link round-trips and can be removed.
    let linked = Service { system_messages_id: Some(first.id), ..a.service.clone() };
    store.update_service(&linked).await.unwrap();
    assert_eq!(store.get_service(t, a.service.id).await.unwrap().system_messages_id, Some(first.id));
    store.update_service(&a.service).await.unwrap();
    assert_eq!(store.get_service(t, a.service.id).await.unwrap().system_messages_id, None);

    // Another tenant neither sees nor changes nor deletes them.
    let other = b.tenant.id;
    assert_not_found(store.get_system_messages(other, first.id).await, "another tenant's item");
    assert_eq!(store.list_system_messages(other).await.unwrap(), []);
    let stolen = SystemMessages { tenant_id: other, ..changed.clone() };
    assert_not_found(store.update_system_messages(&stolen).await, "update across tenants");
    assert_not_found(store.delete_system_messages(other, first.id).await, "delete across tenants");
    assert_eq!(store.get_system_messages(t, first.id).await.unwrap(), changed, "untouched");

    store.delete_system_messages(t, first.id).await.unwrap();
    assert_not_found(store.get_system_messages(t, first.id).await, "deleted");
    assert_eq!(store.list_system_messages(t).await.unwrap(), [second]);
}

async fn story_customer_language(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let mut c = conversation(&w.service, 10);
    c.customer.language = Some("pt-BR".into());
    store.create_conversation(&c, &credential("lang")).await.unwrap();
    assert_eq!(store.get_conversation(w.tenant.id, c.id).await.unwrap().customer.language.as_deref(), Some("pt-BR"));
    assert_eq!(store.get_conversation(w.tenant.id, w.conversation.id).await.unwrap().customer.language, None);

    // The agent's name as the customer reads it is set at the connection, per tenant.
    assert_eq!(store.get_conversation(w.tenant.id, c.id).await.unwrap().agent_alias, None);
    store.set_agent_alias(w.tenant.id, c.id, "Ada from Billing").await.unwrap();
    assert_eq!(
        store.get_conversation(w.tenant.id, c.id).await.unwrap().agent_alias.as_deref(),
        Some("Ada from Billing")
    );
    let b = world(store.as_ref(), "globex").await;
    assert_not_found(store.set_agent_alias(b.tenant.id, c.id, "Mallory").await, "alias across tenants");
    assert_eq!(
        store.get_conversation(w.tenant.id, c.id).await.unwrap().agent_alias.as_deref(),
        Some("Ada from Billing")
    );
}

async fn story_direct_conversation(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let t = w.tenant.id;
    let direct = direct_conversation(&w, w.agent.id, 10);
    store.create_conversation(&direct, &credential("direct")).await.unwrap();
    assert_eq!(store.get_conversation(t, direct.id).await.unwrap(), direct);
    assert!(store.get_conversation(t, direct.id).await.unwrap().is_direct());
    assert_eq!(store.visitor_credential(t, direct.id).await.unwrap(), credential("direct"));
    assert_eq!(store.list_open_conversations(t).await.unwrap(), [w.conversation.clone(), direct.clone()]);

    // The invitation is an event of its log like any other.
    let invited = EntryBody::Event {
        event: ConversationEvent::Invited {
            user_id: w.agent.id,
            user_name: w.agent.display_name.clone(),
            deadline: at_micros(70, 250_000),
        },
    };
    let new = NewEntry { body: invited.clone(), ..entry(&direct, None, "", 10) };
    let written = appended(&store.append_batch(&[new, entry(&direct, Some("c-1"), "Hi Ann!", 11)]).await[0]).clone();
    assert_eq!((written.entry.seq, &written.entry.body), (1, &invited));
    assert_eq!(store.read_log(t, direct.id, 0, 10).await.unwrap()[0], written.entry);

    // Accepted, then ended with each outcome a direct chat can have.
    store.update_conversation(t, direct.id, ConversationStatus::Connected, Some(w.agent.id), None).await.unwrap();
    for outcome in [Outcome::Declined, Outcome::Missed, Outcome::UserAccepted] {
        store.set_outcome(t, direct.id, outcome, Some("why ✓")).await.unwrap();
        let got = store.get_conversation(t, direct.id).await.unwrap();
        assert_eq!((got.outcome, got.outcome_reason.as_deref()), (Some(outcome), Some("why ✓")));
    }
    store.update_conversation(t, direct.id, ConversationStatus::Ended, Some(w.agent.id), Some(at(20))).await.unwrap();
    let ended = Conversation {
        status: ConversationStatus::Ended,
        ended_at: Some(at(20)),
        last_seq: 2,
        outcome: Some(Outcome::UserAccepted),
        outcome_reason: Some("why ✓".into()),
        agent_alias: None,
        wrap_up: None,
        ..direct.clone()
    };
    assert_eq!(store.get_conversation(t, direct.id).await.unwrap(), ended);
    assert_eq!(store.list_agent_conversations(t, w.agent.id, 10).await.unwrap(), slice::from_ref(&ended));
    assert_eq!(store.list_open_conversations(t).await.unwrap(), slice::from_ref(&w.conversation));
    assert_eq!(store.last_agent_of_customer(t, "ann@example.com", at(0)).await.unwrap(), Some(w.agent.id));

    // One the user missed holds no agent, yet is in their history.
    let missed = direct_conversation(&w, w.agent.id, 30);
    store.create_conversation(&missed, &credential("missed")).await.unwrap();
    store.update_conversation(t, missed.id, ConversationStatus::Ended, None, Some(at(31))).await.unwrap();
    let history: Vec<ConversationId> =
        store.list_agent_conversations(t, w.agent.id, 10).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(history, [missed.id, direct.id]);

    // A direct chat never moves to a service: it would name both.
    let moved = store.transfer_conversation(t, direct.id, w.service.id, w.workflow.id, 1).await;
    assert!(matches!(moved, Err(StoreError::Other(_))), "transfer of a direct chat: {moved:?}");
    assert_eq!(store.get_conversation(t, direct.id).await.unwrap(), ended, "the refused transfer changed nothing");
}

async fn story_direct_conversation_shapes(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let direct = direct_conversation(&a, a.agent.id, 10);
    let service_chat = conversation(&a.service, 10);
    let refused = [
        (Conversation { direct_user_id: Some(a.agent.id), ..service_chat.clone() }, "a service chat with a user too"),
        (Conversation { direct_user_id: None, ..direct.clone() }, "neither a service nor a user"),
        (Conversation { workflow_id: Some(a.workflow.id), workflow_version: Some(1), ..direct.clone() }, "a workflow"),
        (Conversation { workflow_version: Some(1), ..direct.clone() }, "a direct chat with a version"),
        (Conversation { service_id: Some(a.service.id), ..direct.clone() }, "a service and a user, no workflow"),
        (Conversation { workflow_version: None, ..service_chat.clone() }, "a service chat without its version"),
        (Conversation { workflow_id: None, ..service_chat.clone() }, "a service chat without its workflow"),
    ];
    for (c, what) in refused {
        let r = store.create_conversation(&c, &credential("x")).await;
        assert!(matches!(r, Err(StoreError::Other(_))), "{what}: {r:?}");
        assert_not_found(store.get_conversation(a.tenant.id, c.id).await, what);
    }
    let strangers = [(UserId(new_id()), "an unknown user"), (b.agent.id, "B's user")];
    for (user, what) in strangers {
        let c = Conversation { agent_id: None, ..direct_conversation(&a, user, 10) };
        assert_not_found(store.create_conversation(&c, &credential("x")).await, what);
        assert_not_found(store.get_conversation(a.tenant.id, c.id).await, what);
    }
    // A direct chat in B of A's user, written as B.
    let smuggled = Conversation { tenant_id: b.tenant.id, agent_id: None, ..direct.clone() };
    assert_not_found(store.create_conversation(&smuggled, &credential("x")).await, "a chat of A's user as B");
    assert_eq!(store.list_open_conversations(b.tenant.id).await.unwrap(), [b.conversation]);
}

async fn story_direct_user_sessions(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "acme").await;
    let t = w.tenant.id;
    let direct = direct_conversation(&w, w.agent.id, 10);
    store.create_conversation(&direct, &credential("direct")).await.unwrap();
    let session = |outcome, ended| UserSession {
        conversation_id: direct.id,
        service_id: None,
        ..user_session(&w, w.agent.id, outcome, ended)
    };
    let (missed, accepted) = (session(UserOutcome::Missed, 100), session(UserOutcome::Accepted, 200));
    let declined = session(UserOutcome::Declined, 300);
    for s in [&missed, &accepted, &declined] {
        store.record_user_session(s).await.unwrap();
    }
    let newest_first = [declined.clone(), accepted.clone(), missed.clone()];
    assert_eq!(store.list_user_sessions(t, all_time(), None).await.unwrap(), newest_first);
    assert_eq!(store.list_user_sessions(t, all_time(), Some(w.agent.id)).await.unwrap(), newest_first);
    assert!(store.list_user_sessions(w.tenant.id, window(at(0), at(50), 10), None).await.unwrap().is_empty());
    let foreign = UserSession { tenant_id: TenantId(new_id()), ..session(UserOutcome::Missed, 400) };
    assert_not_found(store.record_user_session(&foreign).await, "a session without a service, of no tenant");
}

async fn story_personal_snippet(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let t = a.tenant.id;
    let template = domain_template(t, a.root.id, "Sites", 5);
    store.create_domain_template(&template).await.unwrap();

    // Created switched on, so every setting differs from the defaults the world's agent has.
    let mut ann = User {
        licences: vec![Licence::InstantMessaging, Licence::Interact],
        ..user(t, a.root.id, "ann@acme.example", 10)
    };
    ann.direct.settings = direct_settings(template.id);
    store.create_user(&ann, Some("hash")).await.unwrap();
    assert_eq!(store.get_user(t, ann.id).await.unwrap(), ann);
    assert!(store.get_user(t, ann.id).await.unwrap().takes_direct_chats());
    assert_eq!(store.find_user_login(t, "ann@acme.example").await.unwrap(), (ann.clone(), Some("hash".into())));
    assert_eq!(store.list_users(t).await.unwrap(), [a.agent.clone(), ann.clone()]);
    let agent = store.get_user(t, a.agent.id).await.unwrap();
    assert_eq!(agent.direct.settings, DirectChatSettings::default(), "a user created with the defaults keeps them");

    // Switching off changes only the settings, and answers with the user as now stored.
    let off = DirectChatSettings { enabled: false, invite_secs: 600, ..DirectChatSettings::default() };
    let changed = store.set_direct_chat(t, ann.id, &off).await.unwrap();
    let expected = User { direct: DirectChat { settings: off.clone(), ..ann.direct.clone() }, ..ann.clone() };
    assert_eq!(changed, expected);
    assert_eq!(store.get_user(t, ann.id).await.unwrap(), expected);
    assert_eq!(store.get_user(t, a.agent.id).await.unwrap(), agent, "only Ann changed");

    assert_not_found(store.set_direct_chat(t, UserId(new_id()), &off).await, "settings of an unknown user");
    assert_not_found(store.set_direct_chat(t, b.agent.id, &off).await, "settings of B's user as A");
    let b_agent = store.get_user(b.tenant.id, b.agent.id).await.unwrap();
    assert_eq!(b_agent, b.agent, "B's user is untouched");
}

async fn story_find_user_by_contact_id(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    // Global, as the widget does not know the tenant: the user found names theirs.
    let found = store.find_user_by_contact_id(&a.agent.direct.contact_id).await.unwrap();
    assert_eq!((found.tenant_id, &found), (a.tenant.id, &a.agent));
    assert_eq!(store.find_user_by_contact_id(&b.agent.direct.contact_id).await.unwrap(), b.agent);

    assert_not_found(store.find_user_by_contact_id("no-such-contact").await, "an unknown Contact ID");
    assert_not_found(store.find_user_by_contact_id(&a.agent.direct.widget_key).await, "the widget key");
    let upper = a.agent.direct.contact_id.to_uppercase();
    assert_not_found(store.find_user_by_contact_id(&upper).await, "Contact IDs are case-sensitive");
    assert_not_found(store.find_user_by_contact_id(&a.service.contact_id).await, "a service's Contact ID");
    assert_not_found(store.find_service_by_contact_id(&a.agent.direct.contact_id).await, "a user's Contact ID");
}

async fn story_regenerated_widget_keys(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let t = a.tenant.id;

    store.set_service_widget_key(t, a.service.id, "regenerated-service-key").await.unwrap();
    let service = Service { widget_key: "regenerated-service-key".into(), ..a.service.clone() };
    assert_eq!(store.get_service(t, a.service.id).await.unwrap(), service, "only the key changed");
    assert_eq!(store.find_service_by_contact_id(&a.service.contact_id).await.unwrap(), service);

    store.set_user_widget_key(t, a.agent.id, "regenerated-user-key").await.unwrap();
    let mut agent = a.agent.clone();
    agent.direct.widget_key = "regenerated-user-key".into();
    assert_eq!(store.get_user(t, a.agent.id).await.unwrap(), agent, "only the key changed");
    assert_eq!(store.find_user_by_contact_id(&a.agent.direct.contact_id).await.unwrap(), agent);

    // Another tenant's ids (and unknown ones) are not found, and nothing of B changes.
    assert_not_found(store.set_service_widget_key(t, b.service.id, "x").await, "B's service as A");
    assert_not_found(store.set_user_widget_key(t, b.agent.id, "x").await, "B's user as A");
    assert_not_found(store.set_service_widget_key(b.tenant.id, a.service.id, "x").await, "A's service as B");
    assert_not_found(store.set_user_widget_key(b.tenant.id, a.agent.id, "x").await, "A's user as B");
    assert_not_found(store.set_service_widget_key(t, ServiceId(new_id()), "x").await, "an unknown service");
    assert_not_found(store.set_user_widget_key(t, UserId(new_id()), "x").await, "an unknown user");
    assert_eq!(store.get_service(b.tenant.id, b.service.id).await.unwrap(), b.service);
    assert_eq!(store.get_user(b.tenant.id, b.agent.id).await.unwrap(), b.agent);
    assert_eq!(store.get_service(t, a.service.id).await.unwrap(), service);
    assert_eq!(store.get_user(t, a.agent.id).await.unwrap(), agent);
}

async fn story_contact_id_conflicts(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let t = a.tenant.id;
    let with_contact = |email: &str, contact: &str| {
        let mut u = user(t, a.root.id, email, 20);
        u.direct.contact_id = contact.into();
        u
    };

    // Taken by a user, of this tenant or another; taken by a service.
    let refused = [
        (with_contact("c1@acme.example", &a.agent.direct.contact_id), "A's user's"),
        (with_contact("c2@acme.example", &b.agent.direct.contact_id), "B's user's"),
        (with_contact("c3@acme.example", &a.service.contact_id), "A's service's"),
        (with_contact("c4@acme.example", &b.service.contact_id), "B's service's"),
    ];
    for (u, whose) in refused {
        assert_conflict(store.create_user(&u, None).await, "user_contact_id");
        assert_not_found(store.get_user(t, u.id).await, whose);
    }
    let clash = |contact: &str| Service { contact_id: contact.into(), ..service(t, a.root.id, a.workflow.id, 20) };
    for contact in [&a.agent.direct.contact_id, &b.agent.direct.contact_id] {
        let s = clash(contact);
        let member = Membership { service_id: s.id, user_id: a.agent.id, active: true };
        assert_conflict(store.create_service(&s, &[member]).await, "service_contact_id");
        assert_not_found(store.get_service(t, s.id).await, "the refused service");
    }
    assert_eq!(store.list_users(t).await.unwrap(), slice::from_ref(&a.agent));
    assert_eq!(store.list_services(t).await.unwrap(), slice::from_ref(&a.service));
    assert_eq!(store.list_memberships(t).await.unwrap().len(), 1, "no membership of a refused service");

    // A free one goes through, and then is taken too.
    let free = with_contact("c5@acme.example", "a-free-contact-id");
    store.create_user(&free, None).await.unwrap();
    assert_eq!(store.find_user_by_contact_id("a-free-contact-id").await.unwrap(), free);
    assert_conflict(store.create_service(&clash("a-free-contact-id"), &[]).await, "service_contact_id");
}

fn code(tenant: TenantId, ou: OrgUnitId, name: &str, created: i64) -> Code {
    Code {
        id: CodeId(new_id()),
        tenant_id: tenant,
        ou_id: ou,
        name: name.into(),
        description: format!("{name} ✓"),
        created_at: at(created),
    }
}

async fn story_codes(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let t = a.tenant.id;
    let resolved = code(t, a.root.id, "Resolved", 1);
    let callback = code(t, a.root.id, "callback", 2);
    store.create_code(&resolved).await.unwrap();
    store.create_code(&callback).await.unwrap();
    assert_eq!(store.get_code(t, resolved.id).await.unwrap(), resolved, "round-trips");
    assert_eq!(store.list_codes(t).await.unwrap(), [callback.clone(), resolved.clone()], "by name in any case");
    assert_conflict(store.create_code(&code(t, a.root.id, "RESOLVED", 3)).await, "code_name");
    // Another tenant may use the name, and sees none of A's codes.
    store.create_code(&code(b.tenant.id, b.root.id, "Resolved", 3)).await.unwrap();
    assert_eq!(store.list_codes(b.tenant.id).await.unwrap().len(), 1);
    assert_not_found(store.get_code(b.tenant.id, resolved.id).await, "another tenant's code");

    let renamed = Code { name: "Solved".into(), description: String::new(), ..resolved.clone() };
    store.update_code(&renamed).await.unwrap();
    assert_eq!(store.get_code(t, resolved.id).await.unwrap(), renamed);
    assert_conflict(store.update_code(&Code { name: "CALLBACK".into(), ..renamed.clone() }).await, "code_name");
    let stolen = Code { tenant_id: b.tenant.id, name: "Mine".into(), ..renamed.clone() };
    assert_not_found(store.update_code(&stolen).await, "update across tenants");
    assert_not_found(store.delete_code(b.tenant.id, resolved.id).await, "delete across tenants");
    store.delete_code(t, resolved.id).await.unwrap();
    assert_not_found(store.get_code(t, resolved.id).await, "deleted");
    assert_eq!(store.list_codes(t).await.unwrap(), [callback]);
}

async fn story_wrap_up(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "acme").await;
    let b = world(store.as_ref(), "globex").await;
    let t = a.tenant.id;
    let resolved = code(t, a.root.id, "Resolved", 1);
    store.create_code(&resolved).await.unwrap();
    assert_eq!(a.service.codes, ServiceCodes::default(), "a service starts with no codes");
    let listed = Service {
        codes: ServiceCodes { primary: vec![resolved.id], secondary: vec![CodeId(new_id())] },
        ..a.service.clone()
    };
    store.update_service(&listed).await.unwrap();
    assert_eq!(store.get_service(t, a.service.id).await.unwrap().codes, listed.codes);

    // A conversation's wrap-up is set as a whole and found by the report once it ended.
    let c = a.conversation.id;
    assert_eq!(store.get_conversation(t, c).await.unwrap().wrap_up, None);
    let wrap =
        WrapUp { codes: vec![resolved.id], tags: vec!["VIP ✓".into()], user_id: a.agent.id, updated_at: at(20) };
    store.set_wrap_up(t, c, &wrap).await.unwrap();
    assert_eq!(store.get_conversation(t, c).await.unwrap().wrap_up.as_ref(), Some(&wrap));
    assert_eq!(store.list_wrapped_up(t, all_time(), None).await.unwrap(), [], "not ended yet");
    store.update_conversation(t, c, ConversationStatus::Ended, Some(a.agent.id), Some(at(30))).await.unwrap();
    let found = store.list_wrapped_up(t, all_time(), None).await.unwrap();
    assert_eq!(found.iter().map(|c| c.id).collect::<Vec<_>>(), [c]);
    assert_eq!(found[0].wrap_up.as_ref(), Some(&wrap));
    assert_eq!(store.list_wrapped_up(t, all_time(), Some(a.service.id)).await.unwrap().len(), 1);
    assert_eq!(store.list_wrapped_up(t, all_time(), Some(b.service.id)).await.unwrap(), []);
    assert_eq!(store.list_wrapped_up(t, window(at(31), at(100), 10), None).await.unwrap(), [], "ended before");

    let changed = WrapUp { codes: vec![], tags: vec![], user_id: a.agent.id, updated_at: at(40) };
    store.set_wrap_up(t, c, &changed).await.unwrap();
    assert_eq!(store.get_conversation(t, c).await.unwrap().wrap_up, Some(changed.clone()));
    // Another tenant neither sets nor finds it.
    assert_not_found(store.set_wrap_up(b.tenant.id, c, &wrap).await, "wrap-up across tenants");
    assert_eq!(store.list_wrapped_up(b.tenant.id, all_time(), None).await.unwrap(), []);
    assert_eq!(store.get_conversation(t, c).await.unwrap().wrap_up, Some(changed));
}

async fn story_engine_commit_is_atomic(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "atomic").await;
    let c = &w.conversation;
    let at = at(10);
    let queued =
        EngineWrite::Status { conversation: c.id, status: ConversationStatus::Queued, agent: None, ended_at: None };
    let entry = |text: &str| EngineWrite::Append {
        conversation: c.id,
        body: EntryBody::Message { sender: parley_domain::Sender::System, text: text.into(), attachment: None },
        created_at: at,
    };
    let state = EngineWrite::ChatState { conversation: c.id, state: Some(r#"{"node":"ask"}"#.to_owned()) };
    // The last write names an unknown user: nothing of the input is kept, not even the entries.
    let stranger = UserId::from_uuid(uuid::Uuid::from_u128(999));
    let bad = EngineWrite::Presence { user: stranger, presence: Presence::Available };
    let writes = [queued.clone(), entry("one"), entry("two"), state.clone(), bad];
    assert_not_found(store.commit_engine(w.tenant.id, &writes).await, "unknown user");
    assert_eq!(store.get_conversation(w.tenant.id, c.id).await.unwrap().status, c.status);
    assert!(seqs(store.as_ref(), c).await.is_empty(), "no entry of a rolled-back input");
    assert!(store.load_engine_state(w.tenant.id).await.unwrap().chats.is_empty());

    // Without it, all of it, in order; the entries come back with their seq.
    let appended = store.commit_engine(w.tenant.id, &[queued, entry("one"), entry("two"), state]).await.unwrap();
    assert_eq!(appended.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(store.get_conversation(w.tenant.id, c.id).await.unwrap().status, ConversationStatus::Queued);
    assert_eq!(seqs(store.as_ref(), c).await, [1, 2]);
    // A reporting row of another tenant is refused inside the commit too.
    let other = world(store.as_ref(), "atomic-other").await;
    let session = ServiceSession {
        id: uuid::Uuid::from_u128(77),
        tenant_id: other.tenant.id,
        conversation_id: other.conversation.id,
        service_id: other.service.id,
        outcome: None,
        user_id: None,
        started_at: at,
        ended_at: at,
        ivr_secs: 0,
        queue_secs: 0,
        connected_secs: 0,
        offers: 0,
    };
    assert_not_found(store.commit_engine(w.tenant.id, &[EngineWrite::ServiceSession(session)]).await, "foreign row");
    assert!(store.commit_engine(w.tenant.id, &[]).await.unwrap().is_empty());
}

async fn story_engine_state(store: Arc<dyn Store>) {
    let w = world(store.as_ref(), "kept").await;
    let other = world(store.as_ref(), "kept-other").await;
    let (c, a) = (w.conversation.id, w.agent.id);
    let chat = |v: &str| EngineWrite::ChatState { conversation: c, state: Some(v.to_owned()) };
    let agent = |v: Option<&str>| EngineWrite::AgentState { agent: a, state: v.map(str::to_owned) };
    store.commit_engine(w.tenant.id, &[chat(r#"{"v":1}"#), agent(Some(r#"{"rona":true}"#))]).await.unwrap();
    store.commit_engine(w.tenant.id, &[chat(r#"{"v":2,"at":[2026,9,0]}"#)]).await.unwrap();
    let kept = store.load_engine_state(w.tenant.id).await.unwrap();
    // JSON comes back as JSON (PostgreSQL may respace it), the last state winning.
    let json = |t: &str| serde_json::from_str::<serde_json::Value>(t).unwrap();
    assert_eq!(kept.chats.len(), 1);
    assert_eq!((kept.chats[0].0, json(&kept.chats[0].1)), (c, serde_json::json!({"v": 2, "at": [2026, 9, 0]})));
    assert_eq!((kept.agents[0].0, json(&kept.agents[0].1)), (a, serde_json::json!({"rona": true})));
    assert_eq!(store.load_engine_state(other.tenant.id).await.unwrap(), parley_store::EngineState::default());
    // Another tenant cannot write state for this tenant's chat.
    let foreign = EngineWrite::ChatState { conversation: c, state: Some("{}".to_owned()) };
    assert!(store.commit_engine(other.tenant.id, &[foreign]).await.is_err());
    // Forgetting removes it (twice is no error).
    let forget = [EngineWrite::ChatState { conversation: c, state: None }, agent(None)];
    store.commit_engine(w.tenant.id, &forget).await.unwrap();
    store.commit_engine(w.tenant.id, &forget).await.unwrap();
    assert_eq!(store.load_engine_state(w.tenant.id).await.unwrap(), parley_store::EngineState::default());
}
