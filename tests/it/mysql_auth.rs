//! `caching_sha2_password`, MySQL 8's default authentication and RDS Proxy's, from sandboxed
//! PHP. MariaDB has no such plugin, so the server here is a fake one that speaks just enough of
//! the protocol (the greeting, the exchanges of
//! <https://dev.mysql.com/doc/dev/mysql-server/latest/page_caching_sha2_authentication_exchanges.html>,
//! an OK to any command) and checks the client's proofs as MySQL does: the SHA-256 scramble on
//! the fast path, and on the full path, over a plain connection, the password encrypted with
//! the server's RSA key (RSA-OAEP; the key made and used with the `openssl` command). Like
//! MySQL, it takes the full path for a user until one full authentication succeeded, then the
//! fast path.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::mysql::{failure, result, run};
use crate::util::openssl;

const USER: &str = "rds_user";
const PASSWORD: &str = "s3cret-Passw0rd";
const VERSION: &str = "8.0.40-fake-caching-sha2";

/// The fake server: one thread, one connection at a time; what each authentication did.
struct FakeMysql {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
    _keys: tempfile::TempDir,
}

impl FakeMysql {
    fn start() -> Self {
        let keys = tempfile::tempdir().unwrap();
        let key = keys.path().join("key.pem");
        openssl(
            keys.path(),
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                key.to_str().unwrap(),
            ],
        );
        let public_pem = openssl(
            keys.path(),
            &["pkey", "-in", key.to_str().unwrap(), "-pubout"],
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let server = Server {
            key,
            public_pem,
            cached: false,
            log: log.clone(),
        };
        std::thread::spawn(move || server.serve(listener));
        Self {
            port,
            log,
            _keys: keys,
        }
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// An event for the handlers of tests/it/mysql.rs, with this server and `password`.
    fn event(&self, password: &str) -> serde_json::Value {
        json!({"db": {
            "host": "127.0.0.1", "port": self.port, "dbname": "app",
            "user": USER, "password": password,
        }})
    }

    fn allow(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

struct Server {
    key: PathBuf,
    public_pem: Vec<u8>,
    /// Whether a full authentication of USER succeeded (MySQL's cache of SHA-256 hashes).
    cached: bool,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn serve(mut self, listener: TcpListener) {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let outcome = self.connection(stream);
            self.log.lock().unwrap().push(outcome);
        }
    }

    /// One connection: the handshake, then OK to every command until COM_QUIT or EOF.
    fn connection(&mut self, stream: TcpStream) -> String {
        let mut conn = Packets { stream, seq: 0 };
        let nonce: [u8; 20] = std::array::from_fn(|i| b'A' + (rand_byte(i) % 26));
        conn.send(&greeting(&nonce));
        let response = conn.receive();
        let (user, scramble) = parse_handshake_response(&response);
        let outcome = if user != USER {
            conn.send(&access_denied(&user));
            "unknown user"
        } else if self.cached && scramble == sha2_scramble(PASSWORD.as_bytes(), &nonce) {
            conn.send(&[0x01, 0x03]); // fast_auth_success
            conn.send(&ok());
            "fast"
        } else {
            conn.send(&[0x01, 0x04]); // perform_full_authentication
            let mut request = conn.receive();
            if request == [0x02] {
                let mut key = vec![0x01];
                key.extend_from_slice(&self.public_pem);
                conn.send(&key);
                request = conn.receive();
            }
            let sent = self.decrypt(&request);
            let password: Vec<u8> = sent
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ nonce[i % nonce.len()])
                .collect();
            if password == [PASSWORD.as_bytes(), &[0]].concat() {
                self.cached = true;
                conn.send(&ok());
                "full (RSA)"
            } else {
                conn.send(&access_denied(&user));
                "full (RSA), wrong password"
            }
        };
        // Commands: OK to each (SET NAMES), until COM_QUIT (0x01) or the client goes away.
        loop {
            conn.seq = 0;
            match conn.try_receive() {
                Some(command) if command.first() != Some(&0x01) => conn.send(&ok()),
                _ => break,
            }
        }
        outcome.to_string()
    }

    fn decrypt(&self, encrypted: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        std::fs::write(&input, encrypted).unwrap();
        openssl(
            dir.path(),
            &[
                "pkeyutl",
                "-decrypt",
                "-inkey",
                self.key.to_str().unwrap(),
                "-pkeyopt",
                "rsa_padding_mode:oaep",
                "-in",
                input.to_str().unwrap(),
            ],
        )
    }
}

/// A byte of the nonce: a new one per connection (the time's nanoseconds) is enough here.
fn rand_byte(i: usize) -> u8 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    (nanos >> (i % 24)) as u8 ^ (i as u8).wrapping_mul(31)
}

/// MySQL's packets: a 3-byte little-endian length, a sequence number, the payload.
struct Packets {
    stream: TcpStream,
    seq: u8,
}

impl Packets {
    fn send(&mut self, payload: &[u8]) {
        let mut packet = (payload.len() as u32).to_le_bytes()[..3].to_vec();
        packet.push(self.seq);
        packet.extend_from_slice(payload);
        self.stream.write_all(&packet).unwrap();
        self.seq = self.seq.wrapping_add(1);
    }

    fn receive(&mut self) -> Vec<u8> {
        self.try_receive()
            .expect("the client closed the connection")
    }

    fn try_receive(&mut self) -> Option<Vec<u8>> {
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).ok()?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        assert_eq!(header[3], self.seq, "packet out of sequence");
        self.seq = header[3].wrapping_add(1);
        let mut payload = vec![0; len];
        self.stream.read_exact(&mut payload).ok()?;
        Some(payload)
    }
}

// Capabilities: LONG_PASSWORD, FOUND_ROWS, LONG_FLAG, CONNECT_WITH_DB, PROTOCOL_41,
// TRANSACTIONS, SECURE_CONNECTION, MULTI_RESULTS, PLUGIN_AUTH, PLUGIN_AUTH_LENENC_CLIENT_DATA.
// No SSL: the full path has to use the RSA key.
const CAPABILITIES: u32 =
    0x1 | 0x2 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x2_0000 | 0x8_0000 | 0x20_0000;

/// Protocol::HandshakeV10 offering caching_sha2_password with `nonce`.
fn greeting(nonce: &[u8; 20]) -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(VERSION.as_bytes());
    p.push(0);
    p.extend_from_slice(&7u32.to_le_bytes()); // connection id
    p.extend_from_slice(&nonce[..8]);
    p.push(0);
    p.extend_from_slice(&(CAPABILITIES as u16).to_le_bytes());
    p.push(45); // utf8mb4_general_ci
    p.extend_from_slice(&2u16.to_le_bytes()); // SERVER_STATUS_AUTOCOMMIT
    p.extend_from_slice(&((CAPABILITIES >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(&nonce[8..]);
    p.push(0);
    p.extend_from_slice(b"caching_sha2_password\0");
    p
}

/// The user and the auth response of Protocol::HandshakeResponse41.
fn parse_handshake_response(p: &[u8]) -> (String, Vec<u8>) {
    let rest = &p[32..]; // capabilities, max packet, charset, 23 reserved bytes
    let end = rest.iter().position(|&b| b == 0).unwrap();
    let user = String::from_utf8_lossy(&rest[..end]).into_owned();
    let rest = &rest[end + 1..];
    let len = rest[0] as usize; // a length-encoded integer: short here (< 251)
    (user, rest[1..1 + len].to_vec())
}

/// SHA256(password) XOR SHA256(SHA256(SHA256(password)) || nonce), what the client sends.
fn sha2_scramble(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    let stage1 = Sha256::digest(password);
    let stage2 = Sha256::digest(stage1);
    let salted = Sha256::new()
        .chain_update(stage2)
        .chain_update(nonce)
        .finalize();
    stage1.iter().zip(salted).map(|(a, b)| a ^ b).collect()
}

fn ok() -> Vec<u8> {
    vec![0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00]
}

fn access_denied(user: &str) -> Vec<u8> {
    let mut p = vec![0xff];
    p.extend_from_slice(&1045u16.to_le_bytes());
    p.extend_from_slice(b"#28000");
    p.extend_from_slice(
        format!("Access denied for user '{user}'@'127.0.0.1' (using password: YES)").as_bytes(),
    );
    p
}

/// PDO's connection authenticates the full way (the key fetched from the server, the password
/// RSA-encrypted by OpenSSL in the sandbox), mysqli's next one the fast way (the SHA-256
/// scramble); a wrong password is the server's access denied, as a PDOException.
#[test]
fn caching_sha2_password_full_then_fast_and_a_wrong_password_refused() {
    let server = FakeMysql::start();
    let (out, _) = run(
        "server_info",
        &server.event(PASSWORD),
        &["--allow-outbound", &server.allow()],
    );
    assert_eq!(
        result(&out),
        json!({"pdo": VERSION, "mysqli": VERSION}),
        "server: {:?}",
        server.log()
    );
    assert_eq!(server.log(), ["full (RSA)", "fast"]);

    let (out, _) = run(
        "server_info",
        &server.event("wrong"),
        &["--allow-outbound", &server.allow()],
    );
    let error = failure(&out, "PDOException");
    assert_eq!(
        error["errorMessage"],
        format!(
            "SQLSTATE[HY000] [1045] Access denied for user '{USER}'@'127.0.0.1' (using password: YES)"
        )
    );
    assert_eq!(
        server.log(),
        ["full (RSA)", "fast", "full (RSA), wrong password"]
    );
}
