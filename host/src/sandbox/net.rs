//! The network policy: where a guest may connect, and where it may listen. Deny by default.
//!
//! A [`NetPolicy`] is a list of `HOST:PORT` rules (`--allow-outbound`, repeatable, for `host
//! run`, `serve` and `php`; `LAMP_ALLOW_OUTBOUND`, comma-separated, for the bootstrap). HOST
//! is a name (`db.internal`), a wildcard of names (`*.amazonaws.com`), an IP (`10.0.0.5`,
//! `[fd00::5]`), a network (`10.0.0.0/16`) or `*` (anywhere); PORT is a number or `*`.
//!
//! What a guest can do with it ([`Outbound`], one per invocation):
//! - TCP connections to an address a rule allows. A name rule allows the addresses the guest
//!   got by looking that name up; an IP or network rule allows the address itself.
//! - Name lookups of allowed names only. Another name is never sent to a resolver (a lookup
//!   is a way out too: DNS carries data); the guest gets "unknown host".
//! - No UDP (a UDP socket may be made, never bound, sent from or received on). No listening
//!   sockets, but where a listen rule allows (`--allow-listen`, `host php` only: Lambda
//!   functions and `host serve`'s handlers answer invocations and take no connections): HOST is an IP (`127.0.0.1`, `[::1]`, `0.0.0.0` for every interface) or
//!   `localhost` (the loopback addresses, and the guest may look the name up); PORT a number,
//!   `0` for a port the system picks, or `*`. A listening socket accepts whoever reaches it.
//! - Never, whatever the rules say: the instance metadata service (169.254.0.0/16, the
//!   link-local range it lives in, and `fd00:ec2::254`) and the Runtime API's address. A guest
//!   with those could read the function's credentials or answer other invocations.
//!
//! A refused connection or lookup is an ordinary error for the guest and one WARN line of the
//! host that names the destination and the setting that would allow it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use anyhow::{Result, anyhow, bail};
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::SocketError;
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{self, HostResolveAddressStream};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddress, Network};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsCtxView};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder};

use super::State;

/// The environment variable that carries the bootstrap's rules.
pub const ENV_VAR: &str = "LAMP_ALLOW_OUTBOUND";

/// Where guests may connect: the rules, and the addresses no rule can open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetPolicy {
    rules: Vec<Rule>,
    /// Where the guest may listen (`--allow-listen`); empty: nowhere.
    listen: Vec<Rule>,
    /// Exact addresses that are never reachable (the Runtime API's).
    never: Vec<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// A name, lowercase, without a trailing dot.
    Name(String),
    /// `*.suffix`: names ending in `.suffix` (not `suffix` itself), lowercase.
    Suffix(String),
    /// An address or a network.
    Net(IpAddr, u8),
}

impl NetPolicy {
    /// The policy of `--allow-outbound` values (`flag` names the setting in errors).
    pub fn parse<'a>(specs: impl IntoIterator<Item = &'a str>, flag: &str) -> Result<Self> {
        Ok(Self {
            rules: Rule::parse_all(specs, flag, Use::Connect)?,
            ..Self::default()
        })
    }

    /// This policy with the listen rules of `--allow-listen` values (`flag` names the setting).
    pub fn with_listen<'a>(
        mut self,
        specs: impl IntoIterator<Item = &'a str>,
        flag: &str,
    ) -> Result<Self> {
        self.listen
            .extend(Rule::parse_all(specs, flag, Use::Listen)?);
        Ok(self)
    }

    /// The policy of a comma-separated list (`LAMP_ALLOW_OUTBOUND`); empty entries are skipped.
    pub fn parse_list(list: &str, setting: &str) -> Result<Self> {
        Self::parse(
            list.split(',').map(str::trim).filter(|s| !s.is_empty()),
            setting,
        )
    }

    /// This policy with `other`'s rules too (and what either never reaches).
    pub fn with(mut self, other: NetPolicy) -> Self {
        self.rules.extend(other.rules);
        self.listen.extend(other.listen);
        self.never.extend(other.never);
        self
    }

    /// Also refuses `addr` whatever the rules say (the Runtime API's address).
    pub fn never_reach(mut self, addr: SocketAddr) -> Self {
        self.never.push(addr);
        self
    }

    /// Whether the guest may look `name` up.
    fn allows_name(&self, name: &str) -> bool {
        let name = normal_name(name);
        self.rules.iter().any(|rule| rule.host.matches_name(&name))
            || self.listen.iter().any(|rule| rule.host.matches_name(&name))
    }

    /// Whether the guest may bind (`bind`) or put in listening mode a socket on `addr`. A
    /// listen check gets the bound address, so a port-0 rule allows the port the system
    /// picked at the bind it allowed.
    fn allows_listen(&self, addr: SocketAddr, bind: bool) -> bool {
        let ip = addr.ip().to_canonical();
        self.listen.iter().any(|rule| {
            let port = match rule.port {
                None => true,
                Some(0) => !bind || addr.port() == 0,
                Some(port) => port == addr.port(),
            };
            port && match &rule.host {
                HostPattern::Name(_) => ip.is_loopback(),
                host => host.matches_ip(ip),
            }
        })
    }

    /// Whether the guest may connect to `addr`; `looked_up` are the names the guest resolved
    /// to that address.
    fn allows(&self, addr: SocketAddr, looked_up: &[String]) -> Verdict {
        let ip = effective_ip(addr.ip());
        if let Some(why) = never_reachable(ip) {
            return Verdict::Never(why);
        }
        if self
            .never
            .iter()
            .any(|n| effective_ip(n.ip()) == ip && n.port() == addr.port())
        {
            return Verdict::Never("the Lambda Runtime API");
        }
        let allowed = self.rules.iter().any(|rule| {
            rule.port.is_none_or(|p| p == addr.port())
                && (rule.host.matches_ip(ip)
                    || looked_up.iter().any(|name| rule.host.matches_name(name)))
        });
        if allowed {
            Verdict::Allowed
        } else {
            Verdict::NotAllowed
        }
    }
}

impl fmt::Display for NetPolicy {
    /// The outbound rules (the listen rules: [`NetPolicy::listen_rules`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&list(&self.rules))
    }
}

impl NetPolicy {
    /// The listen rules, as `--allow-listen` takes them, or `none`.
    pub fn listen_rules(&self) -> String {
        list(&self.listen)
    }
}

fn list(rules: &[Rule]) -> String {
    if rules.is_empty() {
        return "none".to_string();
    }
    let rules: Vec<String> = rules.iter().map(Rule::to_string).collect();
    rules.join(",")
}

/// What a rule is for: the two take the same `HOST:PORT`, narrowed for listening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Connect,
    Listen,
}

impl Rule {
    fn parse_all<'a>(
        specs: impl IntoIterator<Item = &'a str>,
        flag: &str,
        usage: Use,
    ) -> Result<Vec<Self>> {
        specs
            .into_iter()
            .map(|spec| Rule::parse(spec, usage).map_err(|e| anyhow!("{flag} `{spec}`: {e}")))
            .collect()
    }

    fn parse(spec: &str, usage: Use) -> Result<Self> {
        let example = match usage {
            Use::Connect => {
                "db.internal:3306, 10.0.0.0/16:5432, [fd00::1]:443, *.amazonaws.com:443"
            }
            Use::Listen => "127.0.0.1:8080, [::1]:0, localhost:*",
        };
        let (host, port) = spec
            .rsplit_once(':')
            .filter(|(host, _)| !host.is_empty() && (!host.contains(':') || host.ends_with(']')))
            .ok_or_else(|| anyhow!("expected HOST:PORT (e.g. {example})"))?;
        // Port 0 asks the system for a free port: a listener's, never a destination.
        let (lowest, ports) = match usage {
            Use::Connect => (1, "1-65535, or *"),
            Use::Listen => (0, "0-65535 (0: any free one the system picks), or *"),
        };
        let port = match port {
            "*" => None,
            port => Some(
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p >= lowest)
                    .ok_or_else(|| anyhow!("`{port}` is not a port ({ports})"))?,
            ),
        };
        let host = match (usage, HostPattern::parse(host)?) {
            // A connection to the unspecified address reaches the local host.
            (Use::Connect, HostPattern::Net(ip, prefix)) => {
                HostPattern::Net(effective_ip(ip), prefix)
            }
            (Use::Connect, host) => host,
            (Use::Listen, HostPattern::Net(ip, prefix)) if prefix == max_prefix(ip) => {
                HostPattern::Net(ip, prefix)
            }
            (Use::Listen, HostPattern::Name(name)) if name == "localhost" => {
                HostPattern::Name(name)
            }
            (Use::Listen, _) => {
                bail!(
                    "`{host}` is not an IP address or `localhost`: a guest listens on its own addresses"
                )
            }
        };
        Ok(Self { host, port })
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Any => f.write_str("*")?,
            HostPattern::Name(name) => f.write_str(name)?,
            HostPattern::Suffix(suffix) => write!(f, "*.{suffix}")?,
            HostPattern::Net(IpAddr::V6(ip), 128) => write!(f, "[{ip}]")?,
            HostPattern::Net(IpAddr::V4(ip), 32) => write!(f, "{ip}")?,
            HostPattern::Net(ip, prefix) => write!(f, "{ip}/{prefix}")?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => f.write_str(":*"),
        }
    }
}

impl HostPattern {
    fn parse(host: &str) -> Result<Self> {
        if host == "*" {
            return Ok(Self::Any);
        }
        if let Some(suffix) = host.strip_prefix("*.") {
            check_name(suffix)?;
            return Ok(Self::Suffix(normal_name(suffix)));
        }
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let (addr, prefix) = match bare.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (bare, None),
        };
        if let Ok(ip) = IpAddr::from_str(addr) {
            let ip = ip.to_canonical();
            let max = max_prefix(ip);
            let prefix = match prefix {
                None => max,
                Some(p) => p
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| anyhow!("`/{p}` is not a prefix length (0-{max})"))?,
            };
            return Ok(Self::Net(ip, prefix));
        }
        if prefix.is_some() {
            bail!("`{bare}` is not an IP network (e.g. 10.0.0.0/16)");
        }
        check_name(host)?;
        Ok(Self::Name(normal_name(host)))
    }

    fn matches_name(&self, name: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Name(allowed) => allowed == name,
            Self::Suffix(suffix) => name
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.ends_with('.') && head.len() > 1),
            Self::Net(..) => false,
        }
    }

    fn matches_ip(&self, ip: IpAddr) -> bool {
        match *self {
            Self::Any => true,
            Self::Net(net, prefix) => in_network(ip, net, prefix),
            Self::Name(_) | Self::Suffix(_) => false,
        }
    }
}

fn check_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(())
    } else {
        bail!("`{name}` is not a host name, IP address or network")
    }
}

fn normal_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The address a connection really reaches: IPv4-mapped IPv6 as IPv4, and the unspecified
/// address as loopback (Linux connects `0.0.0.0` to the local host).
fn effective_ip(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Why `ip` is never reachable from a guest, if it is not.
fn never_reachable(ip: IpAddr) -> Option<&'static str> {
    let metadata_v6 = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
    let never = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6 == metadata_v6 || v6.is_unicast_link_local(),
    };
    never.then_some("the instance metadata service (link-local addresses)")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allowed,
    NotAllowed,
    Never(&'static str),
}

/// One invocation's view of the policy: the names it looked up (so that a name rule allows
/// their addresses), and what was refused (each logged once).
pub struct Outbound {
    policy: Arc<NetPolicy>,
    request_id: String,
    /// Address → the allowed names the guest resolved to it.
    resolved: Mutex<HashMap<IpAddr, Vec<String>>>,
    /// Lookups in progress: stream resource → the name.
    lookups: Mutex<HashMap<u32, String>>,
    warned: Mutex<HashSet<String>>,
}

impl Outbound {
    pub fn new(policy: Arc<NetPolicy>, request_id: &str) -> Arc<Self> {
        Arc::new(Self {
            policy,
            request_id: request_id.to_string(),
            resolved: Mutex::default(),
            lookups: Mutex::default(),
            warned: Mutex::default(),
        })
    }

    /// Sets up `wasi`'s sockets for the policy: TCP and name lookups go through the checks
    /// here (the lookups through [`add_lookup_to_linker`], which the linker must have), so
    /// that what is refused, everything when there are no rules, is refused with a WARN line
    /// that says how to allow it.
    pub fn configure(self: &Arc<Self>, wasi: &mut WasiCtxBuilder) {
        let outbound = self.clone();
        // A UDP socket may be made, not used (below): PHP makes one to probe for IPv6 and
        // takes a refusal there for "no IPv6 here", which then keeps it from `[::1]` and from
        // a name's IPv6 addresses even where the policy allows them.
        wasi.allow_udp(true)
            .allow_tcp(true)
            .allow_ip_name_lookup(true)
            .socket_addr_check(move |addr, usage| {
                let allowed = outbound.check(addr, usage);
                Box::pin(async move { allowed })
            });
    }

    fn check(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        match usage {
            // A connect binds the socket implicitly to the unspecified address first (and
            // so may an explicit bind there: listening on it is checked all the same).
            SocketAddrUse::TcpBind => {
                let implicit = addr.ip().is_unspecified() && addr.port() == 0;
                implicit || self.check_listen(addr, true)
            }
            SocketAddrUse::TcpListen => self.check_listen(addr, false),
            // The listener passed its checks: it takes whoever reaches its address.
            SocketAddrUse::TcpAccept => !self.policy.listen.is_empty(),
            SocketAddrUse::TcpConnect => {
                let names = self
                    .resolved
                    .lock()
                    .unwrap()
                    .get(&effective_ip(addr.ip()))
                    .cloned()
                    .unwrap_or_default();
                match self.policy.allows(addr, &names) {
                    Verdict::Allowed => true,
                    Verdict::NotAllowed => {
                        let target = match names.first() {
                            Some(name) => format!("{name}:{}", addr.port()),
                            None => addr.to_string(),
                        };
                        self.warn_once(
                            addr.to_string(),
                            format!(
                                "refused the guest's connection to {addr}: not allowed (allowed: {}); \
                                 to allow it, add `{target}` with --allow-outbound (host run/serve/php) \
                                 or to {ENV_VAR} (the bootstrap)",
                                self.policy
                            ),
                        );
                        false
                    }
                    Verdict::Never(what) => {
                        self.warn_once(
                            addr.to_string(),
                            format!(
                                "refused the guest's connection to {addr}: {what} is never reachable \
                                 from a guest, whatever the policy allows"
                            ),
                        );
                        false
                    }
                }
            }
            // No UDP: no bind (explicit, or the implicit one of a first send), no datagram in
            // or out.
            SocketAddrUse::UdpBind | SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
                self.warn_once(
                    format!("udp {addr}"),
                    format!(
                        "refused a UDP socket of the guest ({addr}): the sandbox has no UDP \
                         (TCP connections only, where --allow-outbound or {ENV_VAR} allows)"
                    ),
                );
                false
            }
        }
    }

    /// Whether the guest may bind (`bind`) or listen on `addr`; a WARN when not.
    fn check_listen(&self, addr: SocketAddr, bind: bool) -> bool {
        if self.policy.allows_listen(addr, bind) {
            return true;
        }
        let ip = addr.ip().to_canonical();
        let rule = SocketAddr::new(ip, addr.port());
        self.warn_once(
            format!("listen {rule}"),
            format!(
                "refused to let the guest listen on {rule}: not allowed (allowed: {}); to allow \
                 it, add `{rule}` with --allow-listen (host php only: Lambda functions and \
                 host serve's handlers take no connections)",
                self.policy.listen_rules()
            ),
        );
        false
    }

    /// The addresses of `host:port` the guest may connect to, for a connection the host makes
    /// on its behalf (an outgoing `wasi:http` request); `None` (and a WARN) when refused.
    pub async fn allowed_addresses(&self, host: &str, port: u16) -> Option<Vec<SocketAddr>> {
        let name = host.trim_start_matches('[').trim_end_matches(']');
        let (candidates, names) = match parse_ip_literal(name) {
            Some(ip) => (vec![SocketAddr::new(ip, port)], Vec::new()),
            None if self.policy.allows_name(name) => {
                let found = tokio::net::lookup_host((name, port)).await.ok()?;
                (found.collect(), vec![normal_name(name)])
            }
            None => {
                self.refuse_name(name, Some(port));
                return None;
            }
        };
        if let Some(name) = names.first() {
            for addr in &candidates {
                self.remember(addr.ip(), name);
            }
        }
        let allowed: Vec<SocketAddr> = candidates
            .into_iter()
            .filter(|addr| self.check(*addr, SocketAddrUse::TcpConnect))
            .collect();
        (!allowed.is_empty()).then_some(allowed)
    }

    /// Logs a refused `https://` request (no TLS for the host's own connections yet).
    pub fn refuse_https(&self, authority: &str) {
        self.warn_once(
            format!("https {authority}"),
            format!(
                "refused the guest's https request to {authority}: outgoing wasi:http requests \
                 are plain HTTP in this build (no TLS in the runtime yet); use http:// or open \
                 a socket (wasi:sockets) and bring TLS in the guest"
            ),
        );
    }

    /// Notes that the guest's lookup of the allowed `name` gave `ip`, so that the name's rules
    /// apply to connections to it.
    fn remember(&self, ip: IpAddr, name: &str) {
        let mut resolved = self.resolved.lock().unwrap();
        let names = resolved.entry(effective_ip(ip)).or_default();
        if !names.iter().any(|known| known == name) {
            names.push(name.to_string());
        }
    }

    /// Logs a lookup of a name no rule allows (`port`: the one the guest wanted, when known).
    fn refuse_name(&self, name: &str, port: Option<u16>) {
        let port = port.map_or_else(|| "PORT".to_string(), |p| p.to_string());
        self.warn_once(
            format!("lookup {name}"),
            format!(
                "refused the guest's lookup of `{name}`: not an allowed name (allowed: {}); to \
                 allow it, add `{name}:{port}` with --allow-outbound (host run/serve/php) or to \
                 {ENV_VAR} (the bootstrap)",
                self.policy
            ),
        );
    }

    fn warn_once(&self, key: String, message: String) {
        if self.warned.lock().unwrap().insert(key) {
            tracing::warn!(request_id = %self.request_id, "{message}");
        }
    }
}

/// A store's data that has a policy ([`Outbound`]) beside its WASI context.
pub trait HasOutbound: Send {
    /// The sockets of the WASI context, and the policy.
    fn policed_lookup(&mut self) -> PolicedLookupView<'_>;
}

impl HasOutbound for State {
    fn policed_lookup(&mut self) -> PolicedLookupView<'_> {
        PolicedLookupView::new(&mut self.wasi, &mut self.table, &self.outbound)
    }
}

/// `wasi:sockets/ip-name-lookup` under the policy, in place of wasmtime-wasi's (which
/// resolves any name): a name the policy does not allow is refused before any resolver sees
/// it, and the addresses of allowed names are remembered for the connection check. Goes after
/// WASI in the linker.
pub fn add_lookup_to_linker<T: HasOutbound + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    ip_name_lookup::add_to_linker::<T, PolicedLookup>(linker, T::policed_lookup)?;
    linker.allow_shadowing(false);
    Ok(())
}

struct PolicedLookup;

impl HasData for PolicedLookup {
    type Data<'a> = PolicedLookupView<'a>;
}

/// WASI's sockets seen through a policy, for one host call.
pub struct PolicedLookupView<'a> {
    pub(super) sockets: WasiSocketsCtxView<'a>,
    outbound: &'a Outbound,
}

impl<'a> PolicedLookupView<'a> {
    pub fn new(
        wasi: &'a mut WasiCtx,
        table: &'a mut ResourceTable,
        outbound: &'a Outbound,
    ) -> Self {
        Self {
            sockets: WasiSocketsCtxView {
                ctx: wasi.sockets(),
                table,
            },
            outbound,
        }
    }
}

impl ip_name_lookup::Host for PolicedLookupView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<ip_name_lookup::ResolveAddressStream>, SocketError> {
        let literal = parse_ip_literal(&name).is_some();
        if !literal && !self.outbound.policy.allows_name(&name) {
            self.outbound.refuse_name(&name, None);
            return Err(ErrorCode::NameUnresolvable.into());
        }
        let stream =
            ip_name_lookup::Host::resolve_addresses(&mut self.sockets, network, name.clone())?;
        if !literal {
            self.outbound
                .lookups
                .lock()
                .unwrap()
                .insert(stream.rep(), normal_name(&name));
        }
        Ok(stream)
    }
}

/// What `ip-name-lookup` needs of `wasi:sockets/network`: its error conversions, as WASI's.
impl network::Host for PolicedLookupView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        network::Host::convert_error_code(&mut self.sockets, error)
    }

    fn network_error_code(
        &mut self,
        err: Resource<wasmtime_wasi::p2::bindings::sockets::network::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        network::Host::network_error_code(&mut self.sockets, err)
    }
}

impl network::HostNetwork for PolicedLookupView<'_> {
    fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.sockets, this)
    }
}

impl HostResolveAddressStream for PolicedLookupView<'_> {
    fn resolve_next_address(
        &mut self,
        stream: Resource<ip_name_lookup::ResolveAddressStream>,
    ) -> Result<Option<IpAddress>, SocketError> {
        let rep = stream.rep();
        let next = self.sockets.resolve_next_address(stream)?;
        if let Some(address) = next
            && let Some(name) = self.outbound.lookups.lock().unwrap().get(&rep)
        {
            self.outbound.remember(to_ip(address), name);
        }
        Ok(next)
    }

    fn subscribe(
        &mut self,
        stream: Resource<ip_name_lookup::ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<wasmtime_wasi::p2::DynPollable>> {
        self.sockets.subscribe(stream)
    }

    fn drop(
        &mut self,
        stream: Resource<ip_name_lookup::ResolveAddressStream>,
    ) -> wasmtime::Result<()> {
        self.outbound.lookups.lock().unwrap().remove(&stream.rep());
        HostResolveAddressStream::drop(&mut self.sockets, stream)
    }
}

fn to_ip(address: IpAddress) -> IpAddr {
    match address {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
        }
    }
}

/// The address a name is, when it is an address (`10.0.0.5`, `::1`, `[::1]`): looking it up
/// asks no resolver, so it needs no name rule (the connection is checked all the same).
fn parse_ip_literal(name: &str) -> Option<IpAddr> {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    IpAddr::from_str(bare).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules: &[&str]) -> NetPolicy {
        NetPolicy::parse(rules.iter().copied(), "--allow-outbound").unwrap()
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rules_parse_and_print_back() {
        let p = policy(&[
            "db.internal:3306",
            "*.amazonaws.com:443",
            "10.0.0.0/16:*",
            "[fd00::5]:80",
            "*:8080",
        ]);
        assert_eq!(
            p.to_string(),
            "db.internal:3306,*.amazonaws.com:443,10.0.0.0/16:*,[fd00::5]:80,*:8080"
        );
        for bad in [
            "db",
            ":80",
            "db:0",
            "db:x",
            "10.0.0.0/33:1",
            "a b:1",
            "::1:80",
        ] {
            assert!(NetPolicy::parse([bad], "f").is_err(), "{bad}");
        }
    }

    #[test]
    fn names_match_exactly_or_by_suffix() {
        let p = policy(&["db.internal:3306", "*.amazonaws.com:443"]);
        assert!(p.allows_name("DB.internal."));
        assert!(p.allows_name("s3.eu-west-1.amazonaws.com"));
        assert!(!p.allows_name("amazonaws.com"));
        assert!(!p.allows_name("evilamazonaws.com"));
        assert!(!p.allows_name("other.internal"));
    }

    #[test]
    fn addresses_match_networks_ports_and_looked_up_names() {
        let p = policy(&["10.0.0.0/16:5432", "db.internal:3306"]);
        assert_eq!(p.allows(addr("10.0.3.4:5432"), &[]), Verdict::Allowed);
        assert_eq!(p.allows(addr("10.1.0.1:5432"), &[]), Verdict::NotAllowed);
        assert_eq!(p.allows(addr("10.0.3.4:5433"), &[]), Verdict::NotAllowed);
        let db = ["db.internal".to_string()];
        assert_eq!(p.allows(addr("192.0.2.7:3306"), &db), Verdict::Allowed);
        assert_eq!(p.allows(addr("192.0.2.7:3307"), &db), Verdict::NotAllowed);
        assert_eq!(p.allows(addr("192.0.2.7:3306"), &[]), Verdict::NotAllowed);
        // An IPv4-mapped IPv6 address is its IPv4 address.
        assert_eq!(
            p.allows(addr("[::ffff:10.0.0.1]:5432"), &[]),
            Verdict::Allowed
        );
    }

    fn listen(rules: &[&str]) -> NetPolicy {
        NetPolicy::default()
            .with_listen(rules.iter().copied(), "--allow-listen")
            .unwrap()
    }

    #[test]
    fn listen_rules_parse_and_print_back() {
        let p = listen(&["127.0.0.1:0", "[::1]:8080", "localhost:*", "0.0.0.0:80"]);
        assert_eq!(
            p.listen_rules(),
            "127.0.0.1:0,[::1]:8080,localhost:*,0.0.0.0:80"
        );
        assert_eq!(p.to_string(), "none", "no outbound rule comes with them");
        assert_eq!(NetPolicy::default().listen_rules(), "none");
        for bad in [
            "127.0.0.1",
            "*:80",
            "db.internal:80",
            "*.example.com:80",
            "10.0.0.0/8:80",
            "127.0.0.1:x",
            "127.0.0.1:65536",
        ] {
            let err = NetPolicy::default()
                .with_listen([bad], "--allow-listen")
                .unwrap_err();
            assert!(
                err.to_string().starts_with("--allow-listen"),
                "{bad}: {err}"
            );
        }
        // Port 0 is a listener's only.
        assert!(NetPolicy::parse(["127.0.0.1:0"], "f").is_err());
    }

    #[test]
    fn listening_is_allowed_on_the_granted_address_and_port_only() {
        let p = listen(&["127.0.0.1:8080", "[::1]:0"]);
        assert!(p.allows_listen(addr("127.0.0.1:8080"), true));
        assert!(p.allows_listen(addr("127.0.0.1:8080"), false));
        assert!(!p.allows_listen(addr("127.0.0.1:8081"), true));
        assert!(!p.allows_listen(addr("127.0.0.1:0"), true));
        assert!(
            !p.allows_listen(addr("0.0.0.0:8080"), true),
            "not every interface"
        );
        assert!(!p.allows_listen(addr("10.0.0.1:8080"), true));
        // Port 0: binds to 0 only, then listens on whatever the system picked.
        assert!(p.allows_listen(addr("[::1]:0"), true));
        assert!(!p.allows_listen(addr("[::1]:4000"), true));
        assert!(p.allows_listen(addr("[::1]:4000"), false));
        assert!(!p.allows_listen(addr("127.0.0.1:4000"), false));
        // An IPv4-mapped IPv6 address is its IPv4 address.
        assert!(p.allows_listen(addr("[::ffff:127.0.0.1]:8080"), true));
        assert!(!NetPolicy::default().allows_listen(addr("127.0.0.1:8080"), true));
    }

    #[test]
    fn localhost_means_the_loopback_addresses_and_may_be_looked_up() {
        let p = listen(&["localhost:*"]);
        for ok in ["127.0.0.1:1", "127.0.0.2:31337", "[::1]:0"] {
            assert!(p.allows_listen(addr(ok), true), "{ok}");
        }
        assert!(!p.allows_listen(addr("0.0.0.0:1"), true));
        assert!(p.allows_name("localhost"));
        assert!(!p.allows_name("example.com"));
        assert!(!listen(&["127.0.0.1:*"]).allows_name("localhost"));
    }

    #[test]
    fn metadata_and_the_runtime_api_are_never_allowed() {
        let p = policy(&["*:*"]).never_reach(addr("127.0.0.1:9001"));
        for never in [
            "169.254.169.254:80",
            "[::ffff:169.254.169.254]:80",
            "[fd00:ec2::254]:80",
            "127.0.0.1:9001",
            "0.0.0.0:9001",
        ] {
            assert!(
                matches!(p.allows(addr(never), &[]), Verdict::Never(_)),
                "{never}"
            );
        }
        assert_eq!(p.allows(addr("127.0.0.1:9002"), &[]), Verdict::Allowed);
    }
}
