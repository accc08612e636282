//! Session endpoint benchmark: the example server's full stack (CORS, auth, retry, sealing) vs
//! a minimal hand-written hyper forwarder doing the same mapping, both in front of the same
//! upstream. Each server runs in its own process so its CPU time and memory are its own; the
//! load generator runs here. Rounds alternate between the two peers so machine noise hits both.
//!
//! ```text
//! cargo bench --bench session            # full run
//! BENCH_QUICK=1 cargo bench --bench session
//! ```
//!
//! Prints one table: req/s at concurrency 1 and 64, p50/p99 latency, CPU per request (and the
//! kernel's share of it), context switches and page faults per request, RSS.
//!
//! A third peer, `kit services, forwarder's scope`, serves the kit's own services with exactly
//! the forwarder's scope and plumbing (the same minimal hyper server; `AuthLayer` →
//! `SessionService` → `CustomBackend` → `HttpClient`; no CORS, no retry, the backend's session
//! id handed out unsealed): the difference between it and the full stack is what CORS, retry,
//! sealing and `App`'s serving cost.

#[path = "common/mod.rs"]
mod common;
use common::serve;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const SECRET: &str = "bench-session-secret-0123456789abcdef";

fn main() {
    if common::run_as_role(|role, upstream| async move { run_role(&role, upstream).await }) {
        return;
    }
    // `cargo bench` passes `--bench`; any other argument is ignored.
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    orchestrate(quick);
}

// ---------------------------------------------------------------- roles (child processes)

async fn run_role(role: &str, upstream: Option<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    match role {
        "upstream" => {
            println!("READY {addr}");
            serve(listener, |_req: Request<Incoming>| async {
                Ok::<_, Infallible>(json(
                    StatusCode::OK,
                    br#"{"session_id":"sess_bench","expires_at":"2099-01-01T00:00:00Z"}"#,
                ))
            })
            .await;
        }
        "forwarder" => {
            let upstream = upstream.expect("upstream address");
            let client: Client<HttpConnector, Full<Bytes>> =
                Client::builder(TokioExecutor::new()).build(HttpConnector::new());
            let tokens: Arc<HashMap<&'static str, &'static str>> =
                Arc::new(HashMap::from([("test-token", "demo-user")]));
            println!("READY {addr}");
            serve(listener, move |req: Request<Incoming>| {
                let client = client.clone();
                let tokens = tokens.clone();
                let upstream = upstream.clone();
                async move { Ok::<_, Infallible>(forward(req, &client, &tokens, &upstream).await) }
            })
            .await;
        }
        "kit" => {
            let upstream = upstream.expect("upstream address");
            let vars = HashMap::from([
                ("CUSTOM_BACKEND_URL", format!("http://{upstream}")),
                ("CUSTOM_BACKEND_KEY", "bench-backend-key".to_owned()),
                ("CHATKIT_SESSION_SECRET", SECRET.to_owned()),
                (
                    "CHATKIT_ALLOWED_ORIGINS",
                    "https://app.example.com".to_owned(),
                ),
            ]);
            let config = chatkit_tower::Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
            let app = chatkit_tower::App::from_config(&config).unwrap();
            println!("READY {addr}");
            app.serve(listener, std::future::pending()).await.unwrap();
        }
        "services" => {
            // The kit's own services with the forwarder's scope and plumbing: the same minimal
            // hyper server, no CORS, no retry, the backend's session id handed out unsealed.
            use chatkit_tower::auth::{AuthLayer, StaticTokens};
            use chatkit_tower::client::HttpClient;
            use chatkit_tower::session::{CustomBackend, SessionService};
            use tower::{Layer, ServiceExt};
            let upstream = upstream.expect("upstream address");
            let backend = CustomBackend::builder(format!("http://{upstream}"), "bench-backend-key")
                .build_with_client(HttpClient::builder().no_response_timeout().build())
                .unwrap();
            let session = SessionService::builder(backend)
                .passthrough()
                .build()
                .unwrap();
            let service =
                AuthLayer::new(StaticTokens::parse("test-token=demo-user").unwrap()).layer(session);
            println!("READY {addr}");
            serve(listener, move |req: Request<Incoming>| {
                let service = service.clone();
                async move {
                    let Ok(res) = service.oneshot(req.map(chatkit_tower::Body::new)).await;
                    Ok::<_, Infallible>(res)
                }
            })
            .await;
        }
        other => panic!("unknown role {other}"),
    }
}

fn json(status: StatusCode, body: &'static [u8]) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from_static(body)));
    *res.status_mut() = status;
    res.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    res
}

/// What a careful hand-written forwarder does for the same endpoint: check the bearer token,
/// forward `{user_id}` with the backend key, map `session_id` to `client_secret`.
async fn forward(
    req: Request<Incoming>,
    client: &Client<HttpConnector, Full<Bytes>>,
    tokens: &HashMap<&'static str, &'static str>,
    upstream: &str,
) -> Response<Full<Bytes>> {
    let user = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| tokens.get(t).copied());
    let Some(user) = user else {
        return json(StatusCode::UNAUTHORIZED, br#"{"error":"Unauthorized"}"#);
    };
    let _ = req.into_body().collect().await;
    let body = serde_json::to_vec(&serde_json::json!({ "user_id": user })).unwrap();
    let up = Request::post(format!("http://{upstream}/api/sessions?user_id={user}"))
        .header("authorization", "Bearer bench-backend-key")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let Ok(res) = client.request(up).await else {
        return json(
            StatusCode::BAD_GATEWAY,
            br#"{"error":"Backend unreachable"}"#,
        );
    };
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let out = serde_json::json!({
        "client_secret": v["session_id"], "expires_at": v["expires_at"]
    });
    let mut res = Response::new(Full::new(Bytes::from(serde_json::to_vec(&out).unwrap())));
    res.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    res
}

// ---------------------------------------------------------------- orchestration (this process)

struct Peer {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
}

fn spawn(role: &str, upstream: Option<SocketAddr>) -> (Child, SocketAddr) {
    let exe = std::env::current_exe().unwrap();
    let (child, ready) = common::spawn_role(Command::new(exe), role, upstream);
    (child, ready.parse().unwrap())
}

/// What a process has used so far: CPU seconds in user space and in the kernel, context
/// switches (all its threads; most are preemptions while the load generator runs beside it)
/// and minor page faults.
#[derive(Default, Clone, Copy)]
struct Usage {
    user: f64,
    system: f64,
    switches: f64,
    faults: f64,
}

impl Usage {
    fn of(pid: u32) -> Usage {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<f64> = after
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0.0))
            .collect();
        let mut switches = 0.0;
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
            let status = std::fs::read_to_string(task.unwrap().path().join("status"));
            for line in status.iter().flat_map(|s| s.lines()) {
                if line.contains("ctxt_switches:") {
                    switches += line
                        .split_whitespace()
                        .nth(1)
                        .unwrap()
                        .parse::<f64>()
                        .unwrap();
                }
            }
        }
        Usage {
            user: fields[11] / 100.0,
            system: fields[12] / 100.0,
            switches,
            faults: fields[7],
        }
    }

    fn since(self, before: Usage) -> Usage {
        Usage {
            user: self.user - before.user,
            system: self.system - before.system,
            switches: self.switches - before.switches,
            faults: self.faults - before.faults,
        }
    }

    fn add(&mut self, other: Usage) {
        self.user += other.user;
        self.system += other.system;
        self.switches += other.switches;
        self.faults += other.faults;
    }
}

/// (current RSS, peak RSS) in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let get = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("VmRSS:"), get("VmHWM:"))
}

#[derive(Default, Clone)]
struct Sample {
    requests: u64,
    seconds: f64,
    usage: Usage,
    latencies: Vec<Duration>,
}

async fn load(addr: SocketAddr, pid: u32, concurrency: usize, requests: usize) -> Sample {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(concurrency)
        .build(HttpConnector::new());
    let per_worker = requests / concurrency;
    let before = Usage::of(pid);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                let req = Request::post(format!("http://{addr}/api/custom/session"))
                    .header("authorization", "Bearer test-token")
                    .header("origin", "https://app.example.com")
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                let t = Instant::now();
                let res = client.request(req).await.unwrap();
                assert_eq!(res.status(), 200);
                let _ = res.into_body().collect().await.unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    for w in workers {
        latencies.extend(w.await.unwrap());
    }
    Sample {
        requests: latencies.len() as u64,
        seconds: started.elapsed().as_secs_f64(),
        usage: Usage::of(pid).since(before),
        latencies,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn orchestrate(quick: bool) {
    let (mut upstream, up_addr) = spawn("upstream", None);
    let (kit, kit_addr) = spawn("kit", Some(up_addr));
    let (fwd, fwd_addr) = spawn("forwarder", Some(up_addr));
    let (services, services_addr) = spawn("services", Some(up_addr));
    let mut peers = [
        Peer {
            name: "kit (full stack)",
            child: kit,
            addr: kit_addr,
        },
        Peer {
            name: "hyper forwarder",
            child: fwd,
            addr: fwd_addr,
        },
        Peer {
            name: "kit services, forwarder's scope",
            child: services,
            addr: services_addr,
        },
    ];
    std::thread::sleep(Duration::from_millis(200));
    let idle: Vec<u64> = peers.iter().map(|p| rss_kib(p.child.id()).0).collect();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (rounds, n1, n64) = if quick {
        (2, 500, 4_000)
    } else {
        (5, 2_000, 20_000)
    };
    let mut results: HashMap<(&str, usize), Sample> = HashMap::new();
    rt.block_on(async {
        // Warm up both (connections, allocator).
        for p in &peers {
            load(p.addr, p.child.id(), 8, 800).await;
        }
        for round in 0..rounds {
            // Rotate which peer goes first.
            let order: Vec<usize> = (0..peers.len())
                .map(|k| (k + round) % peers.len())
                .collect();
            for &i in &order {
                for (c, n) in [(1usize, n1), (64usize, n64)] {
                    let s = load(peers[i].addr, peers[i].child.id(), c, n).await;
                    let e = results.entry((peers[i].name, c)).or_default();
                    e.requests += s.requests;
                    e.seconds += s.seconds;
                    e.usage.add(s.usage);
                    e.latencies.extend(s.latencies);
                }
            }
        }
    });
    let peak: Vec<u64> = peers.iter().map(|p| rss_kib(p.child.id()).1).collect();

    println!(
        "\nsession endpoint, {rounds} interleaved rounds, loopback, 2 worker threads per server\n"
    );
    println!(
        "| peer | c | req/s | p50 | p99 | CPU µs/req | of it in the kernel | context switches/req \
         | page faults/req | idle RSS | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut table = HashMap::new();
    for (i, p) in peers.iter().enumerate() {
        for c in [1usize, 64] {
            let s = results.get_mut(&(p.name, c)).unwrap();
            s.latencies.sort();
            let n = s.requests as f64;
            let rps = n / s.seconds;
            let u = s.usage;
            let cpu_us = (u.user + u.system) * 1e6 / n;
            println!(
                "| {} | {c} | {rps:.0} | {:?} | {:?} | {cpu_us:.1} | {:.1} | {:.2} | {:.3} | {} KiB | {} KiB |",
                p.name,
                percentile(&s.latencies, 0.50),
                percentile(&s.latencies, 0.99),
                u.system * 1e6 / n,
                u.switches / n,
                u.faults / n,
                idle[i],
                peak[i],
            );
            table.insert((i, c), (rps, cpu_us, percentile(&s.latencies, 0.99)));
        }
    }
    for (i, what) in [(0, "kit"), (2, "kit services")] {
        println!("\nratios, {what} / forwarder:");
        for c in [1usize, 64] {
            let (kr, kc, kp) = table[&(i, c)];
            let (fr, fc, fp) = table[&(1, c)];
            println!(
                "  c={c:<3} req/s {:.2}×   CPU/req {:.2}×   p99 {:.2}×",
                kr / fr,
                kc / fc,
                kp.as_secs_f64() / fp.as_secs_f64()
            );
        }
    }
    println!("  idle RSS: kit {} KiB, forwarder {} KiB", idle[0], idle[1]);

    for p in &mut peers {
        let _ = p.child.kill();
        let _ = p.child.wait();
    }
    let _ = upstream.kill();
    let _ = upstream.wait();
}
