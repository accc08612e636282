//! Plumbing the benchmarks share: a minimal hyper HTTP/1.1 server, the shape every
//! hand-written peer and test upstream uses.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

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
