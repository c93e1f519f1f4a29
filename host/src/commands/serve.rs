//! `host serve`: the local API Gateway, in front of a PHP web app or a handler.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Args;

use super::{GuestFlags, LimitFlags};
use crate::function::{Code, Function, FunctionSpec};
use crate::php::snapshot::Validate;
use crate::sandbox::NetPolicy;
use crate::sandbox::net;
use crate::web::server::{self, Mounted, Options};
use crate::web::template::{self, RouteKey};

/// API Gateway's integration timeout (HTTP API: 30 s), the default of each request.
const API_GATEWAY_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves HTTP on a local address the way API Gateway and Lambda would: each request in a
/// fresh instance, several at once.
///
/// TARGET is a PHP web app's document root (a folder with index.php: files that exist are
/// served, `.php` files run, everything else goes to index.php, as nginx's `try_files`); a SAM
/// template (each function with `HttpApi`/`Api` events is served on its routes, with the
/// template's memory, timeout and environment), also given as the folder that holds it when
/// that folder has no index.php; or a handler (a component or a PHP script with
/// a handler function). A handler that is not a web app gets each request as an HTTP API
/// (2.0) event. Files under the assets prefix are served from the folder
/// without running PHP, like the seed's S3/CloudFront split.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  host serve examples/lamp-app/public
  host serve examples/lamp-app/template.yaml
  host serve examples/lamp-app                (the same: its folder, which has no index.php)
  host serve public --listen 127.0.0.1:9000 --concurrency 8 --timeout 30
  host serve hello.wasm --listen 127.0.0.1:8080")]
pub struct ServeCommand {
    /// A web app's document root (a folder), a SAM template (.yaml) or the folder holding it,
    /// or a handler file (.wasm, .cwasm, .php).
    #[arg(default_value = ".")]
    pub target: PathBuf,
    /// The address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Requests run at once [default: the number of cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: Option<u32>,
    /// URL prefix of static files served without the function, from the document root (or,
    /// for a handler, the folder given by --static).
    #[arg(long, default_value = "/assets", value_name = "PREFIX")]
    pub assets: String,
    /// The folder the assets prefix is served from [default: the document root].
    #[arg(long = "static", value_name = "DIR")]
    pub static_dir: Option<PathBuf>,
    #[command(flatten)]
    pub limits: LimitFlags,
    #[command(flatten)]
    pub env: GuestFlags,
    /// The PHP runtime component [default: $LAMP_PHP_RUNTIME, the layers, the build output].
    #[arg(long, value_name = "PATH")]
    pub php_runtime: Option<PathBuf>,
    /// Run PHP without the snapshot of the app's compiled code (by default every `.php` file
    /// under the app's folder is compiled once, at start, and each request starts with it;
    /// files changed since are compiled again when included).
    #[arg(long)]
    pub no_snapshot: bool,
}

impl ServeCommand {
    pub fn execute(mut self) -> Result<ExitCode> {
        let concurrency = self.concurrency.map_or_else(
            || std::thread::available_parallelism().map_or(2, |n| n.get()),
            |n| n as usize,
        );
        if !self.target.exists() {
            bail!(
                "`{}` does not exist; give a web app's document root (the folder with index.php), \
                 a SAM template, or a handler file",
                self.target.display()
            );
        }
        self.target = app_target(&self.target);
        let mut mounted = Vec::new();
        for (name, spec, routes) in self.specs(concurrency)? {
            let function = Function::load(spec)
                .map_err(|e| anyhow::anyhow!("{name}: {}", e.to_lambda_error()))?;
            mounted.push(Mounted {
                name,
                function,
                routes,
            });
        }
        let static_root = self.static_dir.clone().or_else(|| {
            mounted
                .iter()
                .find_map(|m| m.function.web_root().map(|root| root.host.clone()))
        });
        let options = Options {
            listen: self.listen,
            concurrency,
            assets_prefix: self.assets,
            static_root,
            grace: Duration::from_secs(30),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("failed to start the async runtime")?;
        runtime.block_on(server::serve(mounted, options, shutdown_signal()))?;
        Ok(ExitCode::SUCCESS)
    }

    fn php_snapshot(&self) -> Option<Validate> {
        (!self.no_snapshot).then_some(Validate::OnInclude)
    }

    /// What to serve: the template's functions with their routes, or the one target on every
    /// route.
    fn specs(&self, concurrency: usize) -> Result<Vec<(String, FunctionSpec, Vec<RouteKey>)>> {
        let is_template = self
            .target
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        let instances = u32::try_from(concurrency).unwrap_or(u32::MAX);
        if is_template {
            let mut specs = Vec::new();
            for function in template::read(&self.target)? {
                let mut spec = FunctionSpec::local(&function.code_dir);
                spec.code = Code::Handler {
                    name: function.handler.clone(),
                    task_root: function.code_dir.clone(),
                    php_runtime: self.php_runtime.clone(),
                };
                spec.config.function_name.clone_from(&function.name);
                spec.config.handler.clone_from(&function.handler);
                spec.config.timeout = function
                    .timeout_seconds
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map_or(API_GATEWAY_TIMEOUT, Duration::from_secs_f64);
                if let Some(memory) = function.memory_mb {
                    spec.config.memory_mb = memory;
                }
                self.limits.apply(&mut spec.config)?;
                spec.env = function.env.clone();
                spec.env.extend(self.env.pairs()?);
                // The function's own allow-list, as the bootstrap reads it on Lambda.
                let listed = spec.env.iter().rev().find(|(k, _)| k == net::ENV_VAR);
                let listed = NetPolicy::parse_list(
                    listed.map_or("", |(_, v)| v.as_str()),
                    &format!("{} of function {}", net::ENV_VAR, function.name),
                )?;
                spec.outbound = self.env.outbound()?.with(listed);
                spec.max_instances = instances;
                spec.php_snapshot = self.php_snapshot();
                specs.push((function.name, spec, function.routes));
            }
            return Ok(specs);
        }
        let mut spec = FunctionSpec::local(&self.target);
        spec.code = if self.target.is_dir() {
            Code::WebRoot {
                dir: self.target.clone(),
                php_runtime: self.php_runtime.clone(),
            }
        } else {
            Code::File {
                path: self.target.clone(),
                php_function: None,
                php_runtime: self.php_runtime.clone(),
            }
        };
        spec.config.timeout = API_GATEWAY_TIMEOUT;
        self.limits.apply(&mut spec.config)?;
        spec.env = self.env.pairs()?;
        spec.outbound = self.env.outbound()?;
        spec.max_instances = instances;
        spec.php_snapshot = self.php_snapshot();
        let name = self
            .target
            .file_name()
            .map_or_else(|| "app".into(), |n| n.to_string_lossy().into_owned());
        Ok(vec![(name, spec, vec![RouteKey::catch_all()])])
    }
}

/// What `target` serves: itself, but for a folder without an index.php that holds a SAM
/// template (an app's folder, like `examples/lamp-app`): that template, as `sam local
/// start-api` serves the template of the folder it runs in. A folder with neither is served as
/// a document root, with a warning: only its files and `.php` scripts answer.
fn app_target(target: &std::path::Path) -> PathBuf {
    if !target.is_dir() || target.join("index.php").is_file() {
        return target.to_path_buf();
    }
    for name in ["template.yaml", "template.yml"] {
        let template = target.join(name);
        if template.is_file() {
            tracing::info!(
                "`{}` has no index.php: serving its SAM template `{}`",
                target.display(),
                template.display()
            );
            return template;
        }
    }
    tracing::warn!(
        "`{}` has no index.php (nor a SAM template): a path that names no file or script gets \
         PHP's error; give the app's document root (the folder with its front controller, such \
         as `public/`) or its template",
        target.display()
    );
    target.to_path_buf()
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
