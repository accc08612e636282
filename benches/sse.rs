//! Stream endpoint benchmark: the kit's `StreamService` proxying a 10,000-event SSE stream, vs
//! minimal hand-written hyper forwarders, all in front of the same upstream (which writes its
//! events as fast as it can, so the proxies see bursts). Each server runs in its own process,
//! so its CPU time is its own; the load generator runs here. Rounds rotate the order of the
//! peers so machine noise hits all of them.
//!
//! Peers:
//! - `kit`: `StreamService` + `StreamBackend` with its default `StreamClient` (a connection per
//!   stream, driven from the response body);
//! - `kit-pooled`: the same with the pooled `HttpClient` (hyper-util's legacy client);
//! - `passthrough`: hyper server + hyper-util legacy client, the upstream body handed to hyper
//!   frame by frame;
//! - `coalescing`: the same, with a body wrapper that joins the frames that are ready;
//! - `coalescing-yield`: the same, giving the client connection's task one scheduler turn before
//!   each write;
//! - `single-task`: hyper server + `hyper::client::conn::http1`, the connection driven from the
//!   response body (what `StreamClient` does), frames joined as in `coalescing`.
//!
//! ```text
//! cargo bench --bench sse                  # full run
//! BENCH_QUICK=1 cargo bench --bench sse    # a short one
//! BENCH_STRACE=1 cargo bench --bench sse   # also count syscalls per event with strace -f -c
//! ```
//!
//! Prints events/s and CPU per event (process CPU from /proc/PID/task/*/schedstat, in
//! nanoseconds; utime+stime from /proc/PID/stat as a cross-check) for one stream and for 64
//! concurrent streams, and ratios to the two minimal coalescing forwarders.

#[path = "common/mod.rs"]
mod common;
use common::serve;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::{Child, Command};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use chatkit_tower::client::HttpClient;
use chatkit_tower::sse::{StreamBackend, StreamService};
use chatkit_tower::token::{SessionClaims, SessionKeys};
use futures_util::stream;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;

const SECRET: &str = "bench-stream-secret-0123456789abcdef0123";
const BACKEND_KEY: &str = "bench-backend-key";
const EVENTS: usize = 10_000;

fn main() {
    if common::run_as_role(|role, upstream| async move { run_role(&role, upstream).await }) {
        return;
    }
    // `cargo bench` passes `--bench`; any other argument is ignored.
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let strace = std::env::var_os("BENCH_STRACE").is_some();
    orchestrate(quick, strace);
}

/// Event `i` of every stream: fixed length, so the client can check it got every byte.
fn event(i: usize) -> Bytes {
    Bytes::from(format!(
        "data: {{\"type\":\"delta\",\"text\":\"w{:05} \"}}\n\n",
        i % 100_000
    ))
}

// ---------------------------------------------------------------- roles (child processes)

const PEERS: [&str; 6] = [
    "kit",
    "kit-pooled",
    "passthrough",
    "coalescing",
    "coalescing-yield",
    "single-task",
];

/// Tell the orchestrator where this role listens, and its process id (under strace, the
/// orchestrator's child is strace itself).
fn ready(addr: SocketAddr) {
    println!("READY {addr} {}", std::process::id());
}

async fn run_role(role: &str, upstream: Option<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    match role {
        "upstream" => {
            let events: Arc<[Bytes]> = (0..EVENTS).map(event).collect();
            ready(addr);
            serve(listener, move |req: Request<Incoming>| {
                let events = events.clone();
                async move {
                    let n: usize = req
                        .uri()
                        .query()
                        .and_then(|q| q.strip_prefix("events="))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(EVENTS)
                        .min(EVENTS);
                    let _ = req.into_body().collect().await;
                    // Every event its own frame, all ready at once: the upstream is faster than
                    // the proxy, so the proxy sees bursts.
                    let frames = stream::iter(
                        (0..n).map(move |i| Ok::<_, Infallible>(Frame::data(events[i].clone()))),
                    );
                    let mut res = Response::new(StreamBody::new(frames));
                    res.headers_mut()
                        .insert("content-type", "text/event-stream".parse().unwrap());
                    Ok::<_, Infallible>(res)
                }
            })
            .await;
        }
        "kit" | "kit-pooled" => {
            let upstream = upstream.expect("upstream address");
            let backend = StreamBackend::builder(format!("http://{upstream}"), BACKEND_KEY);
            let builder = StreamService::builder(SessionKeys::new([SECRET]).unwrap());
            let svc = if role == "kit" {
                builder.proxy(backend.build().unwrap())
            } else {
                builder.proxy(backend.build_with_client(HttpClient::new()).unwrap())
            }
            .build()
            .unwrap();
            ready(addr);
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                tcp.set_nodelay(true).unwrap();
                let svc = TowerToHyperService::new(svc.clone());
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        }
        "passthrough" | "coalescing" | "coalescing-yield" => {
            let upstream = upstream.expect("upstream address");
            let coalesce = role != "passthrough";
            let yield_once = role == "coalescing-yield";
            let mut http = HttpConnector::new();
            http.set_nodelay(true);
            let client: Client<HttpConnector, Full<Bytes>> =
                Client::builder(TokioExecutor::new()).build(http);
            ready(addr);
            serve(listener, move |req: Request<Incoming>| {
                let client = client.clone();
                let upstream = upstream.clone();
                async move {
                    let res = forward(req, &client, &upstream).await;
                    let (parts, body) = res.into_parts();
                    let body = if coalesce {
                        Coalesce::new(body, yield_once).boxed_unsync()
                    } else {
                        body.boxed_unsync()
                    };
                    Ok::<_, Infallible>(Response::from_parts(parts, body))
                }
            })
            .await;
        }
        "single-task" => {
            let upstream = upstream.expect("upstream address");
            ready(addr);
            serve(listener, move |req: Request<Incoming>| {
                let upstream = upstream.clone();
                async move { Ok::<_, Infallible>(forward_single_task(req, &upstream).await) }
            })
            .await;
        }
        other => panic!("unknown role {other}"),
    }
}

type Http1Conn =
    hyper::client::conn::http1::Connection<TokioIo<tokio::net::TcpStream>, Full<Bytes>>;

/// A forwarder whose upstream connection is driven by the response body itself, in the
/// server connection's task (one connection per stream, no pool): every chunk that has
/// arrived is decoded and joined within one poll, with no task switch per chunk.
async fn forward_single_task(req: Request<Incoming>, upstream: &str) -> Response<SingleTask> {
    let query = req.uri().query().unwrap_or("").to_owned();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let tcp = tokio::net::TcpStream::connect(upstream).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    let up = Request::post(format!("/api/stream?{query}"))
        .header("host", upstream)
        .header("authorization", format!("Bearer {BACKEND_KEY}"))
        .header("x-chatkit-session", "sess_bench")
        .body(Full::new(body))
        .unwrap();
    let mut conn: Option<Http1Conn> = Some(conn);
    let mut send = std::pin::pin!(sender.send_request(up));
    let res = std::future::poll_fn(|cx| {
        if let Some(c) = conn.as_mut() {
            if Pin::new(c).poll(cx).is_ready() {
                conn = None;
            }
        }
        send.as_mut().poll(cx)
    })
    .await
    .unwrap();
    let (mut parts, body) = res.into_parts();
    stream_headers(&mut parts.headers);
    Response::from_parts(
        parts,
        SingleTask {
            conn,
            body,
            done: false,
        },
    )
}

struct SingleTask {
    conn: Option<Http1Conn>,
    body: Incoming,
    done: bool,
}

impl http_body::Body for SingleTask {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let mut first: Option<Bytes> = None;
        let mut joined: Option<BytesMut> = None;
        loop {
            // Drive the connection: it reads what has arrived and decodes the next chunk.
            if let Some(conn) = this.conn.as_mut() {
                if Pin::new(conn).poll(cx).is_ready() {
                    this.conn = None;
                }
            }
            let len = joined
                .as_ref()
                .map_or(first.as_ref().map_or(0, Bytes::len), BytesMut::len);
            if len >= 64 * 1024 {
                break;
            }
            match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    match (&mut joined, first.take()) {
                        (Some(j), _) => j.put_slice(&data),
                        (None, Some(f)) => {
                            let mut j = BytesMut::with_capacity((f.len() + data.len()).max(4096));
                            j.put_slice(&f);
                            j.put_slice(&data);
                            joined = Some(j);
                        }
                        (None, None) => first = Some(data),
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    this.done = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        match (joined, first) {
            (Some(j), _) => Poll::Ready(Some(Ok(Frame::data(j.freeze())))),
            (None, Some(f)) => Poll::Ready(Some(Ok(Frame::data(f)))),
            (None, None) if this.done => Poll::Ready(None),
            (None, None) => Poll::Pending,
        }
    }
}

/// The minimal forwarder: same request upstream, the answer's status, content type and body.
async fn forward(
    req: Request<Incoming>,
    client: &Client<HttpConnector, Full<Bytes>>,
    upstream: &str,
) -> Response<Incoming> {
    let query = req.uri().query().unwrap_or("").to_owned();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let up = Request::post(format!("http://{upstream}/api/stream?{query}"))
        .header("authorization", format!("Bearer {BACKEND_KEY}"))
        .header("x-chatkit-session", "sess_bench")
        .body(Full::new(body))
        .unwrap();
    let res = client.request(up).await.unwrap();
    let (mut parts, body) = res.into_parts();
    stream_headers(&mut parts.headers);
    Response::from_parts(parts, body)
}

/// The upstream's headers reduced to what a stream answer carries: its content type, no caching,
/// no proxy buffering.
fn stream_headers(headers: &mut http::HeaderMap) {
    let content_type = headers.remove("content-type");
    headers.clear();
    if let Some(ct) = content_type {
        headers.insert("content-type", ct);
    }
    headers.insert("cache-control", "no-cache".parse().unwrap());
    headers.insert("x-accel-buffering", "no".parse().unwrap());
}

/// A minimal coalescing body: after one ready frame, keep taking frames while they are ready
/// (up to 64 KiB), join them, pass them on; never wait for more. With `yield_once`, a pending
/// poll after a new frame first gives the upstream connection's task one scheduler turn (a
/// self-wake, no timer) and the batch goes out at the first turn that brings nothing new.
struct Coalesce<B> {
    inner: B,
    yield_once: bool,
    first: Option<Bytes>,
    joined: Option<BytesMut>,
    done: bool,
}

impl<B> Coalesce<B> {
    fn new(inner: B, yield_once: bool) -> Self {
        Self {
            inner,
            yield_once,
            first: None,
            joined: None,
            done: false,
        }
    }

    fn len(&self) -> usize {
        match (&self.joined, &self.first) {
            (Some(j), _) => j.len(),
            (None, Some(f)) => f.len(),
            (None, None) => 0,
        }
    }
}

impl<B> http_body::Body for Coalesce<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let mut took = false;
        while this.len() < 64 * 1024 {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    took = true;
                    match (&mut this.joined, this.first.take()) {
                        (Some(j), _) => j.put_slice(&data),
                        (None, Some(f)) => {
                            let mut j = BytesMut::with_capacity((f.len() + data.len()).max(4096));
                            j.put_slice(&f);
                            j.put_slice(&data);
                            this.joined = Some(j);
                        }
                        (None, None) => this.first = Some(data),
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    this.done = true;
                    break;
                }
                Poll::Pending => {
                    if this.yield_once && took {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    break;
                }
            }
        }
        match (this.joined.take(), this.first.take()) {
            (Some(j), _) => Poll::Ready(Some(Ok(Frame::data(j.freeze())))),
            (None, Some(f)) => Poll::Ready(Some(Ok(Frame::data(f)))),
            (None, None) if this.done => Poll::Ready(None),
            (None, None) => Poll::Pending,
        }
    }
}

// ---------------------------------------------------------------- orchestration (this process)

struct Peer {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    pid: u32,
}

/// Start `role` (under `strace -c` writing to `strace_out`, if given); its process, address and
/// the role's own process id.
fn spawn(
    role: &str,
    upstream: Option<SocketAddr>,
    strace_out: Option<&str>,
) -> (Child, SocketAddr, u32) {
    let exe = std::env::current_exe().unwrap();
    let cmd = match strace_out {
        Some(out) => {
            let mut cmd = Command::new("strace");
            cmd.args([
                "-f",
                "-c",
                "-o",
                out,
                "-e",
                "trace=write,writev,sendto,sendmsg,read,readv,recvfrom,recvmsg,epoll_wait,futex",
                "--",
            ])
            .arg(exe);
            cmd
        }
        None => Command::new(exe),
    };
    let (child, ready) = common::spawn_role(cmd, role, upstream);
    let mut words = ready.split(' ');
    let addr = words.next().unwrap().parse().unwrap();
    let pid = words.next().unwrap().parse().unwrap();
    (child, addr, pid)
}

/// CPU time of every live thread of a process, in nanoseconds (schedstat's first field).
fn cpu_ns(pid: u32) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
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

/// utime + stime of a process (exited threads included), in nanoseconds: a cross-check of
/// [`cpu_ns`] with 10 ms resolution.
fn stat_ns(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks * 10_000_000
}

#[derive(Default, Clone, Copy)]
struct Sample {
    events: u64,
    reads: u64,
    seconds: f64,
    cpu_ns: u64,
    stat_ns: u64,
}

impl std::ops::AddAssign for Sample {
    fn add_assign(&mut self, o: Self) {
        self.events += o.events;
        self.reads += o.reads;
        self.seconds += o.seconds;
        self.cpu_ns += o.cpu_ns;
        self.stat_ns += o.stat_ns;
    }
}

/// A peer's rounds at one fan-out: events/s as the median round (robust to a stray slow
/// round), CPU and reads per event over all rounds.
struct Summary {
    events_per_s: f64,
    cpu_ns: f64,
    stat_ns: f64,
    events_per_read: f64,
}

fn summarize(rounds: &[Sample]) -> Summary {
    let mut rates: Vec<f64> = rounds.iter().map(|s| s.events as f64 / s.seconds).collect();
    rates.sort_by(f64::total_cmp);
    let mut total = Sample::default();
    for s in rounds {
        total += *s;
    }
    Summary {
        events_per_s: rates[rates.len() / 2],
        cpu_ns: total.cpu_ns as f64 / total.events as f64,
        stat_ns: total.stat_ns as f64 / total.events as f64,
        events_per_read: total.events as f64 / total.reads as f64,
    }
}

/// `streams` concurrent streams of `events` events each through the peer at `addr`.
async fn load(addr: SocketAddr, pid: u32, token: &str, streams: usize, events: usize) -> Sample {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(streams)
        .build(HttpConnector::new());
    let expected = events * event(0).len();
    let (cpu_before, stat_before) = (cpu_ns(pid), stat_ns(pid));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..streams {
        let client = client.clone();
        let req = Request::post(format!("http://{addr}/api/custom/stream?events={events}"))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::from_static(br#"{"message":"bench"}"#)))
            .unwrap();
        workers.push(tokio::spawn(async move {
            let res = client.request(req).await.unwrap();
            assert_eq!(res.status(), 200);
            let mut body = res.into_body();
            let (mut bytes, mut reads) = (0, 0u64);
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.unwrap().into_data() {
                    bytes += data.len();
                    reads += 1;
                }
            }
            assert_eq!(bytes, expected, "a stream lost bytes");
            reads
        }));
    }
    let mut reads = 0;
    for w in workers {
        reads += w.await.unwrap();
    }
    Sample {
        events: (streams * events) as u64,
        reads,
        seconds: started.elapsed().as_secs_f64(),
        cpu_ns: cpu_ns(pid) - cpu_before,
        stat_ns: stat_ns(pid) - stat_before,
    }
}

fn orchestrate(quick: bool, strace: bool) {
    let (mut upstream, up_addr, _) = spawn("upstream", None, None);
    let mut peers: Vec<Peer> = PEERS
        .iter()
        .map(|&name| {
            let (child, addr, pid) = spawn(name, Some(up_addr), None);
            Peer {
                name,
                child,
                addr,
                pid,
            }
        })
        .collect();
    let token = SessionKeys::new([SECRET])
        .unwrap()
        .seal(&SessionClaims::new(
            "sess_bench",
            "bench-user",
            u64::MAX / 2,
        ));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (rounds, fan_out) = if quick { (3, 16) } else { (10, 64) };
    let mut results: HashMap<(&str, usize), Vec<Sample>> = HashMap::new();
    rt.block_on(async {
        for p in &peers {
            load(p.addr, p.pid, &token, 4, EVENTS).await;
        }
        for round in 0..rounds {
            // Rotate which peer goes first.
            for k in 0..peers.len() {
                let p = &peers[(round + k) % peers.len()];
                for streams in [1, fan_out] {
                    let s = load(p.addr, p.pid, &token, streams, EVENTS).await;
                    results.entry((p.name, streams)).or_default().push(s);
                }
            }
        }
    });

    let date = Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\nstream endpoint, {EVENTS} events per stream, {rounds} interleaved rounds, loopback, \
         {cores} cores, 2 worker threads per process, {date}\n"
    );
    println!("| peer | streams | events/s (median round) | CPU ns/event | CPU ns/event (stat) | events per client read |");
    println!("|---|---|---|---|---|---|");
    let summary: HashMap<(&str, usize), Summary> = results
        .iter()
        .map(|(k, rounds)| (*k, summarize(rounds)))
        .collect();
    for p in &peers {
        for streams in [1, fan_out] {
            let s = &summary[&(p.name, streams)];
            println!(
                "| {} | {streams} | {:.0} | {:.0} | {:.0} | {:.1} |",
                p.name, s.events_per_s, s.cpu_ns, s.stat_ns, s.events_per_read,
            );
        }
    }
    for base in ["coalescing", "single-task"] {
        println!("\nratios to `{base}` (CPU/event: lower is better; events/s: higher is better):");
        for p in &peers {
            for streams in [1, fan_out] {
                let s = &summary[&(p.name, streams)];
                let c = &summary[&(base, streams)];
                println!(
                    "  {:<16} streams={streams:<3} CPU/event {:.2}×   events/s {:.2}×",
                    p.name,
                    s.cpu_ns / c.cpu_ns,
                    s.events_per_s / c.events_per_s,
                );
            }
        }
    }

    for p in &mut peers {
        let _ = p.child.kill();
        let _ = p.child.wait();
    }

    if strace {
        println!("\nsyscalls per event under strace -f -c (one {EVENTS}-event stream per peer):");
        println!("| peer | writes/event | reads/event | futex/event | epoll_wait/event |");
        println!("|---|---|---|---|---|");
        for name in PEERS {
            let out = format!("/tmp/chatkit-sse-bench-strace-{name}.txt");
            let (mut child, addr, pid) = spawn(name, Some(up_addr), Some(&out));
            rt.block_on(async {
                load(addr, pid, &token, 1, 100).await;
                load(addr, pid, &token, 1, EVENTS).await;
            });
            // strace prints its summary once the traced role exits.
            let _ = Command::new("kill").arg(pid.to_string()).status();
            let _ = child.wait();
            let calls = strace_calls(&out);
            let per = |names: &[&str]| {
                names
                    .iter()
                    .map(|n| calls.get(*n).copied().unwrap_or(0))
                    .sum::<u64>() as f64
                    / (EVENTS + 100) as f64
            };
            println!(
                "| {name} | {:.3} | {:.3} | {:.3} | {:.3} |",
                per(&["write", "writev", "sendto", "sendmsg"]),
                per(&["read", "readv", "recvfrom", "recvmsg"]),
                per(&["futex"]),
                per(&["epoll_wait"]),
            );
        }
    }
    let _ = upstream.kill();
    let _ = upstream.wait();
}

/// Calls per syscall from an `strace -c` summary.
fn strace_calls(path: &str) -> HashMap<String, u64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut calls = HashMap::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // % time, seconds, usecs/call, calls, [errors], syscall
        if cols.len() >= 5 && cols[0].parse::<f64>().is_ok() {
            if let Ok(n) = cols[3].parse::<u64>() {
                calls.insert(cols[cols.len() - 1].to_owned(), n);
            }
        }
    }
    calls
}
