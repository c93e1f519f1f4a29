//! Guests' TCP connections send without Nagle's delay (`TCP_NODELAY`), as Go's and Node's
//! sockets do by default and as PHP's mysqlnd asks for on every connection.
//!
//! Why the host does it: `wasi:sockets` 0.2 has no no-delay option (it was removed before 0.2
//! was stabilised, WebAssembly/wasi-sockets#75), so a guest's `setsockopt(TCP_NODELAY)` fails
//! and the host's socket keeps Nagle on. A client that writes twice before it reads then waits
//! for the server's delayed ACK, ~40 ms on Linux: mysqlnd closing one prepared statement
//! (`COM_STMT_CLOSE`, which has no reply) and preparing the next one took 46 ms instead of 0.1.
//!
//! How: wasmtime-wasi keeps its sockets' descriptors private, so `finish-connect` is wrapped
//! (shadowed in the linker): once wasmtime-wasi's own has connected, the connection is found
//! among this process's descriptors by its two addresses, which only it has, and no-delay is
//! set on it. A connection that is not found keeps Nagle on and works as before.

use std::net::SocketAddr;

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode};
use wasmtime_wasi::p2::bindings::sockets::tcp::HostTcpSocket;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, TcpSocket};

use super::net::HasOutbound;

/// The `wasi:sockets/tcp` interface as wasmtime-wasi 48 defines it in the linker (guests
/// importing an older 0.2 version are linked to it too).
const TCP_INTERFACE: &str = "wasi:sockets/tcp@0.2.12";

type Streams = (Resource<DynInputStream>, Resource<DynOutputStream>);

/// Replaces wasmtime-wasi's `tcp-socket.finish-connect` with one that also sets no-delay on the
/// new connection. Goes after WASI in the linker.
pub fn add_to_linker<T: HasOutbound + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut tcp = linker.instance(TCP_INTERFACE)?;
    tcp.func_wrap(
        "[method]tcp-socket.finish-connect",
        |mut store, (socket,): (Resource<TcpSocket>,)| {
            let data: &mut T = store.data_mut();
            let mut sockets = data.policed_lookup().sockets;
            let rep = socket.rep();
            let result: Result<Streams, ErrorCode> =
                match HostTcpSocket::finish_connect(&mut sockets, socket) {
                    Ok(streams) => {
                        let addresses = (
                            HostTcpSocket::local_address(&mut sockets, Resource::new_borrow(rep)),
                            HostTcpSocket::remote_address(&mut sockets, Resource::new_borrow(rep)),
                        );
                        if let (Ok(local), Ok(peer)) = addresses {
                            set_on_connection(local.into(), peer.into());
                        }
                        Ok(streams)
                    }
                    Err(e) => Err(network::Host::convert_error_code(&mut sockets, e)?),
                };
            Ok((result,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Sets `TCP_NODELAY` on this process's TCP connection from `local` to `peer`; false if there
/// is none (or where descriptors cannot be listed: not Linux).
pub fn set_on_connection(local: SocketAddr, peer: SocketAddr) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
            return false;
        };
        for raw in entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
        {
            // SAFETY: the descriptor is only used for the three socket calls below, during which
            // another thread may close it or reuse its number: then they fail (EBADF,
            // ENOTSOCK) or see other addresses, and nothing is changed. The connection looked
            // for is alive (its store is borrowed by the caller), and no other socket has both
            // of its addresses.
            #[allow(unsafe_code)]
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) };
            let socket = socket2::SockRef::from(&fd);
            let is_it = |found: std::io::Result<socket2::SockAddr>, wanted: SocketAddr| {
                found.ok().and_then(|a| a.as_socket()) == Some(wanted)
            };
            if is_it(socket.local_addr(), local) && is_it(socket.peer_addr(), peer) {
                return socket.set_tcp_nodelay(true).is_ok();
            }
        }
        false
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (local, peer);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_connection_by_its_addresses_and_sets_no_delay_on_it_alone() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let other = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(!client.nodelay().unwrap() && !other.nodelay().unwrap());

        let (local, peer) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
        assert!(set_on_connection(local, peer));
        assert!(client.nodelay().unwrap());
        assert!(!other.nodelay().unwrap() && !accepted.nodelay().unwrap());

        let gone = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(!set_on_connection(local, gone));
    }
}
