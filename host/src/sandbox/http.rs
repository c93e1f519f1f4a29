//! `wasi:http` for guests: incoming requests need nothing of the host, outgoing requests
//! (`wasi:http/outgoing-handler`) go where the network policy ([`super::net`]) allows, over
//! plain HTTP/1.1. HTTPS needs a TLS stack in the bootstrap, which is not there yet: such a
//! request is refused with a WARN line that says so.

use std::net::SocketAddr;
use std::sync::Arc;

use http::uri::Scheme;
use http_body_util::BodyExt as _;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::net::Outbound;

/// Sends a guest's outgoing requests under its invocation's policy.
pub struct HttpHooks {
    pub outbound: Arc<Outbound>,
}

type Sending = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sending {
        let outbound = self.outbound.clone();
        Box::new(async move {
            let response = send(&outbound, request).await?;
            let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

async fn send(
    outbound: &Outbound,
    mut request: http::Request<WasiBody>,
) -> Result<http::Response<WasiBody>, Error> {
    let uri = request.uri().clone();
    let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
    if uri.scheme() == Some(&Scheme::HTTPS) {
        outbound.refuse_https(authority.as_str());
        return Err(Error::HttpRequestDenied);
    }
    let port = authority.port_u16().unwrap_or(80);
    let addrs = outbound
        .allowed_addresses(authority.host(), port)
        .await
        .ok_or(Error::HttpRequestDenied)?;
    let stream = connect(&addrs).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    // The request line carries the path only (the authority is in `Host`).
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(uri.path_and_query().map_or("/", |pq| pq.as_str()))
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let response = sender.send_request(request).await?;
    Ok(response.map(|body| body.map_err(Error::from).boxed_unsync()))
}

async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, Error> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or(Error::DestinationNotFound, Error::Connect))
}
