//! PostgreSQL as the example server meets it: many instances on one database, instances that
//! start at once, a server that dies or freezes mid-run and comes back. Each test starts a
//! throwaway cluster of its own (`scripts/postgres`), since it stops or freezes it.

mod cluster;
mod common;

use std::time::{Duration, Instant};

use chatkit_tower::chatkit::{PostgresStore, RequestContext, Store, StoreErrorKind};
use chatkit_tower::protocol::ThreadMetadata;
use chatkit_tower::{App, Config, Kit};
use cluster::Cluster;
use common::{post, within, Answer};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

const SECRET: &str = "one-secret-for-every-instance-0123456789abcdef";

/// The example server's app on an ephemeral port, with these variables; its store from
/// `CHATKIT_STORE_URL` through `Kit::open`, or `store` when given.
struct Server {
    base: String,
    task: JoinHandle<std::io::Result<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(vars: &[(&str, &str)], store: Option<PostgresStore>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut all: Vec<(String, String)> = vec![
        ("PORT".into(), addr.port().to_string()),
        ("CHATKIT_DEMO_PACE_MS".into(), "0".into()),
        ("CHATKIT_SESSION_SECRET".into(), SECRET.into()),
    ];
    all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_lookup(|k| {
        all.iter()
            .rev()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    })
    .unwrap();
    let kit = match store {
        Some(store) => Kit::with_store(&config, store).unwrap(),
        None => within(Kit::open(&config)).await.unwrap(),
    };
    let app = App::from_kit(&kit, &config.models);
    Server {
        base: format!("http://{addr}"),
        task: tokio::spawn(app.serve(listener, std::future::pending())),
    }
}

impl Server {
    async fn chatkit(&self, body: Value) -> Answer {
        post(
            &format!("{}/chatkit", self.base),
            &[("authorization", "Bearer test-token")],
            &body.to_string(),
        )
        .await
    }

    async fn threads(&self) -> Answer {
        self.chatkit(json!({"type": "threads.list", "params": {}}))
            .await
    }

    async fn get(&self, path: &str) -> Answer {
        let req = http::Request::get(format!("{}{path}", self.base))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        common::send(req).await
    }

    async fn healthz(&self) -> u16 {
        self.get("/healthz").await.status.as_u16()
    }

    async fn client_secret(&self) -> String {
        let res = post(
            &format!("{}/api/custom/session", self.base),
            &[("authorization", "Bearer test-token")],
            "",
        )
        .await;
        assert_eq!(res.status, 200, "{}", res.text());
        res.json()["client_secret"].as_str().unwrap().to_owned()
    }
}

fn message(text: &str) -> Value {
    json!({"content": [{"type": "input_text", "text": text}], "attachments": [], "inference_options": {}})
}

fn thread_ids(answer: &Answer) -> Vec<String> {
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn store(url: &str, timeout: Duration) -> PostgresStore {
    within(PostgresStore::builder(url).timeout(timeout).connect())
        .await
        .unwrap()
}

/// Every page is one index range scan: `Index Cond` holds the row comparison on the paging
/// index, newest first reads it backward, and nothing is sorted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_one_index_range_scan() {
    let Some(pg) = Cluster::start().await else {
        return;
    };
    let store = store(&pg.url, Duration::from_secs(5)).await;
    // A busy user with 1000 threads among twenty with fifty, and a thread of 500 items.
    for owner in 0..20 {
        let ctx = RequestContext::new(format!("owner{owner}"));
        for n in 0..if owner == 0 { 1000 } else { 50 } {
            let thread = ThreadMetadata::new(format!("thr_{owner}_{n}"));
            within(store.save_thread(&thread, &ctx)).await.unwrap();
        }
    }
    let ctx = RequestContext::new("owner0");
    within(store.save_thread(&ThreadMetadata::new("thr_long"), &ctx))
        .await
        .unwrap();
    for n in 0..500 {
        let item: chatkit_tower::protocol::ThreadItem = serde_json::from_value(json!({
            "id": format!("msg_{n}"), "thread_id": "thr_long",
            "created_at": chatkit_tower::protocol::Timestamp::now().to_string(),
            "type": "end_of_turn",
        }))
        .unwrap();
        within(store.add_thread_item("thr_long", &item, &ctx))
            .await
            .unwrap();
    }
    // Plans follow statistics; make them current, as autovacuum would.
    pg.psql("ANALYZE").await.unwrap();
    let plans = within(store.explain_paging("thr_long", &ctx))
        .await
        .unwrap();
    println!("{plans}");
    for index in ["chatkit_threads_page", "chatkit_items_page"] {
        let uses = plans.matches(&format!(" using {index} on ")).count();
        assert_eq!(uses, 2, "{plans}");
    }
    assert_eq!(
        plans.matches("Index Scan Backward using").count(),
        2,
        "{plans}"
    );
    assert_eq!(
        plans.matches("(ROW(created_at, seq) > ROW(").count(),
        2,
        "{plans}"
    );
    assert_eq!(
        plans.matches("(ROW(created_at, seq) < ROW(").count(),
        2,
        "{plans}"
    );
    assert!(
        !plans.contains("Seq Scan") && !plans.contains("Sort"),
        "{plans}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_threads_and_client_secrets() {
    let Some(pg) = Cluster::start().await else {
        return;
    };
    let vars = [("CHATKIT_STORE_URL", pg.url.as_str())];
    let (a, b) = (serve(&vars, None).await, serve(&vars, None).await);

    let created = a
        .chatkit(json!({"type": "threads.create", "params": {"input": message("hello from a")}}))
        .await;
    assert_eq!(created.status, 200, "{}", created.text());
    let ids = thread_ids(&b.threads().await);
    assert_eq!(ids.len(), 1);
    // Continued through the other instance, read back through the first.
    let more = b
        .chatkit(json!({"type": "threads.add_user_message",
            "params": {"thread_id": ids[0], "input": message("and from b")}}))
        .await;
    assert_eq!(more.status, 200, "{}", more.text());
    let items = a
        .chatkit(json!({"type": "items.list", "params": {"thread_id": ids[0], "order": "asc"}}))
        .await
        .json();
    let texts: Vec<&str> = items["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["content"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["hello from a", "hello from a", "and from b", "and from b"]
    );

    // A client secret one instance issued is accepted by the other.
    let secret = a.client_secret().await;
    let streamed = post(
        &format!("{}/api/custom/stream", b.base),
        &[("authorization", &format!("Bearer {secret}"))],
        r#"{"message":"hi"}"#,
    )
    .await;
    assert_eq!(streamed.status, 200, "{}", streamed.text());
    assert_eq!(streamed.headers["content-type"], "text/event-stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_at_once_migrate_one_new_database() {
    let Some(pg) = Cluster::start().await else {
        return;
    };
    let connects: Vec<_> = (0..4)
        .map(|_| {
            let url = pg.url.clone();
            tokio::spawn(async move { PostgresStore::connect(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for connect in connects {
        stores.push(within(connect).await.unwrap().unwrap());
    }
    let alice = RequestContext::new("alice");
    within(stores[0].save_thread(&ThreadMetadata::new("thr_1"), &alice))
        .await
        .unwrap();
    for other in &stores[1..] {
        let thread = within(other.load_thread("thr_1", &alice)).await.unwrap();
        assert_eq!(thread.id, "thr_1");
    }
    let applied = pg
        .psql("SELECT version, success FROM _chatkit_migrations ORDER BY version")
        .await
        .unwrap();
    // Each migration applied exactly once, although four instances raced to apply them.
    assert_eq!(applied.trim(), "1|t\n2|t");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_migration_leaves_no_lock_behind() {
    let Some(pg) = Cluster::start().await else {
        return;
    };
    // A table in the way, which the chatkit role may not even touch: the migration fails.
    pg.psql("CREATE TABLE chatkit_threads (x int)")
        .await
        .unwrap();
    let err = within(PostgresStore::connect(&pg.url)).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Other, "{err}");
    assert!(err.message().contains("ChatKit tables"), "{err}");
    // The migration's own connection is closed, not returned to a pool: its advisory lock goes
    // with it (the close completes asynchronously, so allow it a moment, bounded).
    let mut locks = String::new();
    for _ in 0..50 {
        locks = pg
            .psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
            .await
            .unwrap();
        if locks.trim() == "0" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        locks.trim(),
        "0",
        "an advisory lock outlived the failed migration"
    );
    // Out of the way: the next instance migrates at once instead of waiting on a lock.
    pg.psql("DROP TABLE chatkit_threads").await.unwrap();
    within(PostgresStore::connect(&pg.url)).await.unwrap();
}

#[tokio::test]
async fn a_server_out_of_reach_at_startup_is_an_error_naming_the_variable() {
    // A port nobody listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://chatkit:hunter2@127.0.0.1:{port}/chatkit");
    let config = Config::from_lookup(|k| (k == "CHATKIT_STORE_URL").then(|| url.clone())).unwrap();
    let err = within(Kit::open(&config)).await.unwrap_err();
    assert_eq!(err.variable_name(), Some("CHATKIT_STORE_URL"));
    let shown = err.to_string();
    assert!(
        shown.contains("cannot connect") && !shown.contains("hunter2"),
        "{shown}"
    );
    // The synchronous constructor refuses a database rather than fall back to memory.
    let err = Kit::from_config(&config).unwrap_err();
    assert_eq!(err.variable_name(), Some("CHATKIT_STORE_URL"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_503_then_the_next_request_succeeds() {
    let Some(pg) = Cluster::start().await else {
        return;
    };
    // The example server as it runs: Kit::open, the store timeout from its variable.
    let server = serve(
        &[
            ("CHATKIT_STORE_URL", pg.url.as_str()),
            ("CHATKIT_STORE_TIMEOUT_MS", "2000"),
        ],
        None,
    )
    .await;
    let created = server
        .chatkit(json!({"type": "threads.create", "params": {"input": message("before")}}))
        .await;
    assert_eq!(created.status, 200);
    let ready = server.get("/readyz").await;
    assert_eq!(
        (ready.status.as_u16(), &ready.json()["status"]),
        (200, &json!("ready"))
    );

    pg.kill().await;
    let started = Instant::now();
    server
        .threads()
        .await
        .assert_error(503, "STORE_UNAVAILABLE");
    let took = started.elapsed();
    println!("server stopped: 503 STORE_UNAVAILABLE after {took:?}");
    assert!(
        took < Duration::from_millis(3500),
        "{took:?} for a 2 s store timeout"
    );
    // Not ready, within the same bound; what needs no database keeps answering.
    let started = Instant::now();
    server
        .get("/readyz")
        .await
        .assert_error(503, "STORE_UNAVAILABLE");
    assert!(started.elapsed() < Duration::from_millis(3500));
    assert_eq!(server.healthz().await, 200);
    server.client_secret().await;

    pg.restart().await;
    let started = Instant::now();
    assert_eq!(thread_ids(&server.threads().await).len(), 1);
    println!("server back: 200 after {:?}", started.elapsed());
    assert_eq!(server.get("/readyz").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_is_503_within_the_timeout_then_recovers() {
    let Some(pg) = Cluster::start().await else {
        return;
    };
    let timeout = Duration::from_secs(2);
    let server = serve(&[], Some(store(&pg.url, timeout).await)).await;
    let created = server
        .chatkit(json!({"type": "threads.create", "params": {"input": message("before")}}))
        .await;
    assert_eq!(created.status, 200);

    // Connections stay open and nothing answers: without a timeout this would hang for ever.
    pg.freeze().await;
    for _ in 0..2 {
        let started = Instant::now();
        server
            .threads()
            .await
            .assert_error(503, "STORE_UNAVAILABLE");
        let took = started.elapsed();
        println!("server frozen: 503 STORE_UNAVAILABLE after {took:?}");
        assert!(took >= timeout / 2 && took < timeout + Duration::from_millis(1500));
    }
    assert_eq!(server.healthz().await, 200);

    pg.thaw().await;
    let started = Instant::now();
    assert_eq!(thread_ids(&server.threads().await).len(), 1);
    println!("server thawed: 200 after {:?}", started.elapsed());
}

/// A statement in flight when the server freezes is cut off by the store's own timeout: the
/// pool's acquire timeout does not cover it, and a frozen server cannot run its
/// `statement_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_flight_when_the_server_freezes_ends_at_the_timeout() {
    let Some(pg) = Cluster::start().await else {
        return;
    };
    let pg = std::sync::Arc::new(pg);
    let timeout = Duration::from_secs(2);
    let store = store(&pg.url, timeout).await;
    let alice = RequestContext::new("alice");
    let thread = ThreadMetadata::new("thr_1");
    within(store.save_thread(&thread, &alice)).await.unwrap();
    // Another session holds the thread's row, so the next save waits inside the server.
    let holder = tokio::spawn({
        let pg = pg.clone();
        async move {
            let sql =
                "BEGIN; SELECT id FROM chatkit_threads FOR UPDATE; SELECT pg_sleep(5); COMMIT;";
            let _ = pg.psql(sql).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let call = tokio::spawn({
        let (store, alice, thread) = (store.clone(), alice.clone(), thread.clone());
        async move { store.save_thread(&thread, &alice).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !call.is_finished(),
        "the save should be waiting for the row"
    );
    pg.freeze().await;
    let result = within(call).await.unwrap();
    let took = started.elapsed();
    pg.thaw().await;
    println!("statement in flight at the freeze: {result:?} after {took:?}");
    assert_eq!(result.unwrap_err().kind(), StoreErrorKind::Unavailable);
    assert!(took < timeout + Duration::from_millis(1500), "{took:?}");
    within(holder).await.unwrap();
    // And the store goes on.
    within(store.load_thread("thr_1", &alice)).await.unwrap();
}
