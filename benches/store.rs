//! Store benchmark: ChatKit protocol turns through `ChatKitService` (in process, `oneshot`, the
//! echo assistant with no pacing) on each store, in one run, peers interleaved round by round so
//! machine noise hits all of them.
//!
//! A turn is one `threads.add_user_message` request whose whole SSE answer is read: the service
//! loads the thread, saves the user message, streams the echo and saves the assistant message.
//!
//! Peers: `memory` (`InMemoryStore`), `sqlite` (`SqliteStore` in a temporary file), `postgres`
//! (`PostgresStore` on `CHATKIT_TEST_POSTGRES_URL`; skipped when it is unset).
//!
//! ```text
//! cargo bench --bench store                # full run
//! BENCH_QUICK=1 cargo bench --bench store  # a short one
//! ```
//!
//! Prints turns/s and CPU per turn (this process's threads, from /proc/self/task/*/schedstat:
//! the service, the tokio workers and SQLite's worker threads; a PostgreSQL server's own CPU is
//! not included), for 1 and 8 concurrent conversations, with ratios to `memory`, and the bytes
//! SQLite stores per turn (growth of the checkpointed file / turns).
//!
//! A second table runs only the store calls of a turn (`load_thread`, then `add_thread_item`
//! for a user and an assistant message), with no service around them: the floor each store
//! puts under a turn, as a share of the memory store's whole turn.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chatkit_tower::auth::Principal;
use chatkit_tower::chatkit::{
    ChatKitService, EchoAssistant, IdKind, InMemoryStore, PostgresStore, RequestContext,
    SqliteStore, Store,
};
use chatkit_tower::protocol::{ThreadItem, ThreadMetadata, Timestamp};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const CONCURRENCY: [usize; 2] = [1, 8];

fn main() {
    // `cargo bench` passes `--bench`; arguments are ignored.
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(quick));
}

struct Peer {
    name: &'static str,
    service: ChatKitService,
    /// The same store, called directly for the store-calls-only table.
    store: Arc<dyn Store>,
    /// The SQLite file, for its size.
    file: Option<PathBuf>,
}

#[derive(Default, Clone, Copy)]
struct Sample {
    turns: u64,
    /// `threads.create` turns that opened the conversations (untimed, but stored).
    created: u64,
    seconds: f64,
    cpu_ns: u64,
}

impl std::ops::AddAssign for Sample {
    fn add_assign(&mut self, o: Self) {
        self.turns += o.turns;
        self.created += o.created;
        self.seconds += o.seconds;
        self.cpu_ns += o.cpu_ns;
    }
}

fn peer(name: &'static str, store: impl Store, file: Option<PathBuf>) -> Peer {
    let store: Arc<dyn Store> = Arc::new(store);
    Peer {
        name,
        service: ChatKitService::builder(EchoAssistant::new(Duration::ZERO), store.clone())
            .build()
            .unwrap(),
        store,
        file,
    }
}

async fn run(quick: bool) {
    let (rounds, turns) = if quick { (2, 100) } else { (6, 600) };
    let dir = std::env::temp_dir().join(format!("chatkit-store-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = dir.join("chatkit.db");

    let mut peers = vec![
        peer("memory", InMemoryStore::new(), None),
        peer(
            "sqlite",
            SqliteStore::open(&db).await.unwrap(),
            Some(db.clone()),
        ),
    ];
    match std::env::var("CHATKIT_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => peers.push(peer(
            "postgres",
            PostgresStore::connect(&url).await.unwrap(),
            None,
        )),
        _ => println!("postgres: skipped (CHATKIT_TEST_POSTGRES_URL is unset)"),
    }

    // Warm up each peer (connections, statement caches, allocator).
    for peer in &peers {
        let _ = conversation(&peer.service, "warmup", 50).await;
    }
    let sqlite_before = stored_bytes(&db).await;

    let mut totals = vec![[Sample::default(); CONCURRENCY.len()]; peers.len()];
    let mut calls_only = vec![[Sample::default(); CONCURRENCY.len()]; peers.len()];
    for round in 0..rounds {
        for k in 0..peers.len() {
            // Rotate the order of the peers each round.
            let i = (k + round) % peers.len();
            for (c, &concurrency) in CONCURRENCY.iter().enumerate() {
                let sample = load(&peers[i].service, concurrency, turns, round).await;
                totals[i][c] += sample;
                let sample = load_calls(&peers[i].store, concurrency, turns, round).await;
                calls_only[i][c] += sample;
            }
        }
    }

    let sqlite_after = stored_bytes(&db).await;
    // Both tables' turns store a user and an assistant message.
    let sqlite_turns: u64 = totals[1]
        .iter()
        .chain(&calls_only[1])
        .map(|s| s.turns + s.created)
        .sum();

    println!(
        "\n{} rounds × {turns} turns per peer and concurrency; 2 tokio workers\n",
        rounds
    );
    println!("| store | concurrent conversations | turns/s | CPU per turn (µs) | turns/s vs memory | CPU per turn vs memory |");
    println!("|---|---|---|---|---|---|");
    for (c, &concurrency) in CONCURRENCY.iter().enumerate() {
        let base = &totals[0][c];
        let (base_rate, base_cpu) = rate_cpu(base);
        for (i, peer) in peers.iter().enumerate() {
            let (rate, cpu) = rate_cpu(&totals[i][c]);
            println!(
                "| {} | {concurrency} | {rate:.0} | {cpu:.1} | {:.2}× | {:.2}× |",
                peer.name,
                rate / base_rate,
                cpu / base_cpu
            );
        }
    }
    if peers.len() < 3 {
        println!("| postgres | – | skipped | skipped | – | – |");
    }

    println!(
        "\nThe store calls of a turn alone (load_thread + add_thread_item × 2, no service), \
         with their CPU as a share of memory's whole turn above:\n"
    );
    println!("| store | concurrent conversations | calls-only turns/s | CPU per turn (µs) | CPU vs memory's whole turn |");
    println!("|---|---|---|---|---|");
    for (c, &concurrency) in CONCURRENCY.iter().enumerate() {
        let (_, base_cpu) = rate_cpu(&totals[0][c]);
        for (i, peer) in peers.iter().enumerate() {
            let (rate, cpu) = rate_cpu(&calls_only[i][c]);
            println!(
                "| {} | {concurrency} | {rate:.0} | {cpu:.1} | {:.2}× |",
                peer.name,
                cpu / base_cpu
            );
        }
    }
    if let Some(file) = &peers[1].file {
        let growth = sqlite_after.saturating_sub(sqlite_before);
        println!(
            "\nSQLite: {} turns stored (threads.create and store-calls-only turns included), file {} → {} bytes ({}), {:.0} bytes per turn \
             (user message + assistant message rows and their index entries)",
            sqlite_turns,
            sqlite_before,
            sqlite_after,
            file.display(),
            growth as f64 / sqlite_turns as f64
        );
    }
    drop(peers);
    let _ = std::fs::remove_dir_all(&dir);
}

fn rate_cpu(s: &Sample) -> (f64, f64) {
    (
        s.turns as f64 / s.seconds,
        s.cpu_ns as f64 / 1000.0 / s.turns as f64,
    )
}

/// `turns` turns in all, over `concurrency` conversations (one new thread each) at once.
async fn load(service: &ChatKitService, concurrency: usize, turns: usize, round: usize) -> Sample {
    // Threads are created before the clock starts: only `add_user_message` turns are timed.
    let mut conversations = Vec::new();
    for n in 0..concurrency {
        let user = format!("user-{round}-{n}");
        let thread_id = create_thread(service, &user).await;
        conversations.push((service.clone(), user, thread_id));
    }
    let mut sample = timed(
        conversations,
        turns / concurrency,
        |(service, user, thread_id)| async move {
            turn(&service, &user, &thread_id).await;
            (service, user, thread_id)
        },
    )
    .await;
    sample.created = concurrency as u64;
    sample
}

/// The store calls of `turns` turns, over `concurrency` threads at once: load the thread, save
/// a user message and an assistant message, as `ChatKitService` does for a turn.
async fn load_calls(
    store: &Arc<dyn Store>,
    concurrency: usize,
    turns: usize,
    round: usize,
) -> Sample {
    let mut conversations = Vec::new();
    for n in 0..concurrency {
        let ctx = RequestContext::new(format!("calls-{round}-{n}"));
        let thread = ThreadMetadata::new(store.generate_thread_id(&ctx));
        store.save_thread(&thread, &ctx).await.unwrap();
        conversations.push((store.clone(), ctx, thread.id));
    }
    timed(
        conversations,
        turns / concurrency,
        |(store, ctx, thread_id)| async move {
            let thread = store.load_thread(&thread_id, &ctx).await.unwrap();
            for user in [true, false] {
                let id = store.generate_item_id(IdKind::Message, &thread, &ctx);
                let item = item(&id, &thread.id, user);
                store
                    .add_thread_item(&thread.id, &item, &ctx)
                    .await
                    .unwrap();
            }
            (store, ctx, thread_id)
        },
    )
    .await
}

/// Run `per` turns of each conversation, the conversations at once (a task each); time and CPU
/// of the whole. A turn takes its conversation's state and gives it back.
async fn timed<C, F, Fut>(conversations: Vec<C>, per: usize, turn: F) -> Sample
where
    C: Send + 'static,
    F: Fn(C) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = C> + Send,
{
    let count = conversations.len();
    let cpu_before = cpu_ns();
    let started = Instant::now();
    let tasks: Vec<_> = conversations
        .into_iter()
        .map(|mut state| {
            let turn = turn.clone();
            tokio::spawn(async move {
                for _ in 0..per {
                    state = turn(state).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    Sample {
        turns: (per * count) as u64,
        created: 0,
        seconds: started.elapsed().as_secs_f64(),
        cpu_ns: cpu_ns() - cpu_before,
    }
}

/// A user or an assistant message like those of the echo's turns.
fn item(id: &str, thread_id: &str, user: bool) -> ThreadItem {
    let text = "the quick brown fox jumps over the lazy dog";
    let value = if user {
        json!({"id": id, "thread_id": thread_id, "created_at": Timestamp::now(), "type": "user_message",
               "content": [{"type": "input_text", "text": text}], "attachments": [], "inference_options": {}})
    } else {
        json!({"id": id, "thread_id": thread_id, "created_at": Timestamp::now(), "type": "assistant_message",
               "content": [{"annotations": [], "text": text, "type": "output_text"}]})
    };
    serde_json::from_value(value).unwrap()
}

async fn conversation(service: &ChatKitService, user: &str, turns: usize) -> String {
    let thread_id = create_thread(service, user).await;
    for _ in 0..turns {
        turn(service, user, &thread_id).await;
    }
    thread_id
}

fn message(text: &str) -> Value {
    json!({"content": [{"type": "input_text", "text": text}], "attachments": [], "inference_options": {}})
}

/// POST `body` as `user`; the whole answer.
async fn call(service: &ChatKitService, user: &str, body: Value) -> Bytes {
    let mut req = http::Request::post("/chatkit")
        .header("content-type", "application/json")
        .body(body.to_string())
        .unwrap();
    req.extensions_mut().insert(Principal::new(user));
    let res = service.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    res.into_body().collect().await.unwrap().to_bytes()
}

async fn create_thread(service: &ChatKitService, user: &str) -> String {
    let body = call(
        service,
        user,
        json!({"type": "threads.create", "params": {"input": message("hello")}}),
    )
    .await;
    let text = std::str::from_utf8(&body).unwrap();
    let first = text.split("\n\n").next().unwrap();
    let event: Value = serde_json::from_str(first.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(event["type"], "thread.created", "{text}");
    event["thread"]["id"].as_str().unwrap().to_owned()
}

async fn turn(service: &ChatKitService, user: &str, thread_id: &str) {
    let body = call(
        service,
        user,
        json!({"type": "threads.add_user_message", "params": {
            "thread_id": thread_id,
            "input": message("the quick brown fox jumps over the lazy dog"),
        }}),
    )
    .await;
    // The echo's last event closes the turn.
    assert!(body.ends_with(b"\n\n") && body.len() > 100);
}

/// CPU time of every live thread of this process, in nanoseconds (schedstat's first field).
fn cpu_ns() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path().join("schedstat");
        if let Ok(s) = std::fs::read_to_string(path) {
            total += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

/// The SQLite file's size once its WAL is checkpointed into it.
async fn stored_bytes(db: &Path) -> u64 {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    std::fs::metadata(db).unwrap().len()
}
