//! The bootstrap's settings, all from the environment Lambda sets (and a few of ours).

use std::net::ToSocketAddrs as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::api::RuntimeApi;
use crate::function::{DEFAULT_TIMEOUT, FunctionSpec};
use crate::resolve::{GUEST_LAYERS_ROOT, GUEST_TASK_ROOT};
use crate::sandbox::{NetPolicy, net};

/// How the bootstrap runs, and the function it serves.
pub struct Settings {
    pub api: RuntimeApi,
    /// Pollers, each with its own instance (`AWS_LAMBDA_MAX_CONCURRENCY`, default 1).
    pub concurrency: usize,
    /// How long `/next` may fail before the runtime gives up (`LAMP_NEXT_RETRY_SECONDS`).
    pub next_retry: Duration,
    pub spec: FunctionSpec,
}

/// A variable that is set and not blank.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A positive number of seconds from `name`, or `default`.
fn seconds(name: &str, default: Duration) -> Result<Duration> {
    let Some(v) = var(name) else {
        return Ok(default);
    };
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .with_context(|| format!("{name}={v} is not a positive number of seconds"))
}

impl Settings {
    pub fn from_env() -> Result<Self> {
        let api_address = var("AWS_LAMBDA_RUNTIME_API")
            .context("AWS_LAMBDA_RUNTIME_API is not set; `host bootstrap` runs under Lambda or a Runtime API emulator (use `host run` to invoke a handler locally)")?;
        let concurrency = match var("AWS_LAMBDA_MAX_CONCURRENCY") {
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1024).contains(n))
                .with_context(|| {
                    format!("AWS_LAMBDA_MAX_CONCURRENCY={v} is not a number from 1 to 1024")
                })?,
            None => 1,
        };
        let task_root = var("LAMBDA_TASK_ROOT").unwrap_or_else(|| GUEST_TASK_ROOT.into());
        let layers_root = var("LAMP_LAYERS_ROOT").unwrap_or_else(|| GUEST_LAYERS_ROOT.into());
        let handler = var("_HANDLER").unwrap_or_default();
        let mut spec = FunctionSpec::lambda(&handler, task_root.into(), PathBuf::from(layers_root));
        spec.config.timeout = seconds("LAMP_TIMEOUT", DEFAULT_TIMEOUT)?;
        spec.max_instances = concurrency as u32;
        spec.outbound = outbound_policy(&api_address)?;
        Ok(Self {
            api: RuntimeApi::new(&api_address)?,
            concurrency,
            next_retry: seconds("LAMP_NEXT_RETRY_SECONDS", Duration::from_secs(60))?,
            spec,
        })
    }
}

/// `LAMP_ALLOW_OUTBOUND`'s policy, which never reaches the Runtime API at `api_address`.
fn outbound_policy(api_address: &str) -> Result<NetPolicy> {
    let mut policy = NetPolicy::parse_list(&var(net::ENV_VAR).unwrap_or_default(), net::ENV_VAR)?;
    // The API is on loopback (127.0.0.1:9001 on Lambda); a name is resolved once, here.
    let resolved = api_address
        .to_socket_addrs()
        .with_context(|| format!("AWS_LAMBDA_RUNTIME_API={api_address} is not HOST:PORT"))?;
    for addr in resolved {
        policy = policy.never_reach(addr);
    }
    Ok(policy)
}
