//! Plumbing the benchmarks share: running as one of the peer processes a benchmark spawns, and
//! a minimal hyper HTTP/1.1 server, the shape every hand-written peer and test upstream uses.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

/// Started as `--role NAME [UPSTREAM]` (a peer process the benchmark spawned): run `role(NAME,
/// UPSTREAM)` on its own 2-worker runtime, and say so; otherwise `false`.
pub fn run_as_role<F, Fut>(role: F) -> bool
where
    F: FnOnce(String, Option<String>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let args: Vec<String> = std::env::args().collect();
    let Some(i) = args.iter().position(|a| a == "--role") else {
        return false;
    };
    let name = args.get(i + 1).cloned().expect("--role needs a name");
    let upstream = args.get(i + 2).cloned();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(role(name, upstream));
    true
}

/// Start `cmd` (this benchmark's own binary, or a wrapper running it) as peer `role`, in front
/// of `upstream` if given; its process and what follows `READY ` on its first line.
pub fn spawn_role(
    mut cmd: std::process::Command,
    role: &str,
    upstream: Option<std::net::SocketAddr>,
) -> (std::process::Child, String) {
    use std::io::BufRead;
    cmd.arg("--role").arg(role);
    if let Some(up) = upstream {
        cmd.arg(up.to_string());
    }
    let mut child = cmd
        .env("RUST_LOG", "off")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready = line.trim().strip_prefix("READY ").unwrap().to_owned();
    (child, ready)
}

/// Serve `f` on every connection `listener` accepts (HTTP/1.1, `TCP_NODELAY`), forever.
pub async fn serve<F, Fut, B>(listener: tokio::net::TcpListener, f: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let (tcp, _) = listener.accept().await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let f = f.clone();
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), hyper::service::service_fn(f))
                .await;
        });
    }
}
