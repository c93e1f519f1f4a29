//! A deployed function: its configuration, the resolved handler, the sandbox template and the
//! guest-environment policy, built in one place ([`Function::load`]) and invoked in one way
//! ([`Function::invoke`]) by `host run`, the bootstrap's poll loop and the tests.
//!
//! A [`FunctionSpec`] says what to deploy: a handler name resolved as Lambda would (the
//! bootstrap) or a file given on the command line (`host run`). Loading does everything slow:
//! resolve, build the engine, load (compile at most once) and link, prepare the sandbox; each
//! step is timed for the cold-start breakdown. An invocation then costs a fresh instance.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::component::cache::Cache;
use crate::component::loader::{self, LoadPath};
use crate::component::{Context, HandlerComponent, Outcome};
use crate::engine::{self, EngineOptions};
use crate::error::{InitError, LambdaError, types};
use crate::lambda::api::NextEvent;
use crate::lambda::deadline::{epoch_ms, timeout_for};
use crate::php::snapshot::{self, Deployment, Validate};
use crate::php::watch::CodeWatch;
use crate::resolve::{self, GUEST_LAYERS_ROOT, GUEST_TASK_ROOT, Resolved};
use crate::sandbox::env::{self, Mode};
use crate::sandbox::{DirMapping, NetPolicy, SandboxConfig};
use crate::web::event::{HttpEvent, to_event_response};
use crate::web::route::{DocumentRoot, Route};
use crate::web::{self, Client};
use bytes::Bytes;

/// Lambda's default memory size, used when neither `--memory` nor the environment says.
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Lambda's default timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// What Lambda tells the runtime about the function through its environment (or what a local
/// run makes up in its place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionConfig {
    pub function_name: String,
    pub function_version: String,
    pub memory_mb: u32,
    pub log_group_name: String,
    pub log_stream_name: String,
    pub region: String,
    /// The `_HANDLER` value (for a local run, the file's stem).
    pub handler: String,
    /// How long an invocation may run when its event carries no usable deadline.
    pub timeout: Duration,
}

impl FunctionConfig {
    /// Reads the configuration Lambda sets, falling back to local defaults for what is
    /// missing (`handler` also names the function when `AWS_LAMBDA_FUNCTION_NAME` is unset).
    pub fn from_env(handler: &str) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let function_name = var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| handler.to_string());
        Self {
            log_group_name: var("AWS_LAMBDA_LOG_GROUP_NAME")
                .unwrap_or_else(|| format!("/aws/lambda/{function_name}")),
            log_stream_name: var("AWS_LAMBDA_LOG_STREAM_NAME").unwrap_or_else(|| "local".into()),
            function_version: var("AWS_LAMBDA_FUNCTION_VERSION")
                .unwrap_or_else(|| "$LATEST".into()),
            memory_mb: var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_MEMORY_MB),
            region: var("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
            function_name,
            handler: handler.to_string(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The ARN a local invocation pretends to come from.
    pub fn local_arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:000000000000:function:{}",
            self.region, self.function_name
        )
    }

    /// Lambda's documented runtime variables, as every guest sees them.
    pub fn standard_env(&self) -> Vec<(String, String)> {
        let pairs = [
            ("AWS_LAMBDA_FUNCTION_NAME", self.function_name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", self.function_version.clone()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                self.memory_mb.to_string(),
            ),
            ("AWS_LAMBDA_LOG_GROUP_NAME", self.log_group_name.clone()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", self.log_stream_name.clone()),
            ("AWS_REGION", self.region.clone()),
            ("AWS_DEFAULT_REGION", self.region.clone()),
            ("LAMBDA_TASK_ROOT", GUEST_TASK_ROOT.into()),
            ("_HANDLER", self.handler.clone()),
            ("TMPDIR", "/tmp".into()),
            ("TZ", ":UTC".into()),
        ];
        pairs.map(|(k, v)| (k.to_string(), v)).into()
    }
}

/// Which code a function runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// A `_HANDLER` value, resolved in the task root, then the layers (the bootstrap, or a
    /// function of a SAM template under `host serve`, which may name the PHP runtime).
    Handler {
        name: String,
        task_root: PathBuf,
        php_runtime: Option<PathBuf>,
    },
    /// A file given by path (`host run`): a component, or a PHP script with the function to
    /// call and the runtime to run it (default: found as [`crate::php`] says).
    File {
        path: PathBuf,
        php_function: Option<String>,
        php_runtime: Option<PathBuf>,
    },
    /// A PHP web app's document root (`host serve DIR`), run by the PHP runtime (default:
    /// found as [`crate::php`] says).
    WebRoot {
        dir: PathBuf,
        php_runtime: Option<PathBuf>,
    },
}

/// Everything that decides how a function is deployed; [`Function::load`] makes it real.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub code: Code,
    pub config: FunctionConfig,
    /// Where the layers are on the host (mapped read-only at `/opt` in Lambda mode).
    pub layers_root: PathBuf,
    /// Which guest-environment policy applies (see [`crate::sandbox::env`]).
    pub env_mode: Mode,
    /// Variables given on purpose (`--env`).
    pub env: Vec<(String, String)>,
    /// More directories for the guest (`--dir`).
    pub dirs: Vec<DirMapping>,
    pub cache: Option<Cache>,
    /// Concurrent invocations to have instance slots for.
    pub max_instances: u32,
    /// Where the guests may connect (`--allow-outbound`, `LAMP_ALLOW_OUTBOUND`).
    pub outbound: NetPolicy,
    /// For PHP: run from a snapshot with the function's code compiled in
    /// ([`crate::php::snapshot`]), checking files on include as this says; `None`: the plain
    /// runtime.
    pub php_snapshot: Option<Validate>,
}

impl FunctionSpec {
    /// `host run FILE`: nothing of the host's environment, the file's folder as the task root,
    /// compiled code cached in the user's cache.
    pub fn local(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self {
            code: Code::File {
                path,
                php_function: None,
                php_runtime: None,
            },
            config: FunctionConfig::from_env(&name),
            layers_root: GUEST_LAYERS_ROOT.into(),
            env_mode: Mode::Local,
            env: Vec::new(),
            dirs: Vec::new(),
            cache: Cache::default_for(false),
            max_instances: 1,
            outbound: NetPolicy::default(),
            php_snapshot: None,
        }
    }

    /// The bootstrap: `_HANDLER` resolved in `task_root` then `layers_root`, the runtime's
    /// environment as the policy says, compiled code cached in `/tmp`.
    pub fn lambda(handler: &str, task_root: PathBuf, layers_root: PathBuf) -> Self {
        Self {
            code: Code::Handler {
                name: handler.to_string(),
                task_root,
                php_runtime: None,
            },
            config: FunctionConfig::from_env(handler),
            layers_root,
            env_mode: Mode::Lambda,
            env: Vec::new(),
            dirs: Vec::new(),
            cache: Cache::default_for(true),
            max_instances: 1,
            outbound: NetPolicy::default(),
            php_snapshot: None,
        }
    }
}

/// Where init's time went, step by step (the bootstrap's `cold start` line).
#[derive(Debug, Default, Clone, Copy)]
pub struct InitTimings {
    /// Finding the handler file.
    pub resolve: Duration,
    /// Creating the wasmtime engine (and reserving the pooling allocator's slots).
    pub engine: Duration,
    /// Mapping a `.cwasm` (or compiling a `.wasm`).
    pub load: Duration,
    /// Building the `InstancePre` (after `load`; WASI's linker is built on another thread
    /// meanwhile, and this includes any wait for it).
    pub link: Duration,
    /// Finding (or building) the PHP snapshot with the function's code, when asked for.
    pub snapshot: Duration,
    /// Preparing the sandbox template (the guests' /tmp, environment, directories): beside
    /// `load` on the linker's thread, unless a PHP snapshot is built (which runs in it).
    pub sandbox: Duration,
}

/// A function ready to be invoked: compiled, linked, its sandbox prepared.
pub struct Function {
    pub config: FunctionConfig,
    /// What the code resolved to.
    pub resolved: Resolved,
    pub handler: HandlerComponent,
    /// The sandbox every invocation starts from.
    pub sandbox: SandboxConfig,
    /// How the code was obtained.
    pub load_path: LoadPath,
    pub timings: InitTimings,
    /// The guests' private /tmp, shared by the invocations, removed with the function.
    guest_tmp: tempfile::TempDir,
    /// Whether the code in the PHP snapshot changed since (`host serve`, php/watch.rs).
    code_watch: Option<CodeWatch>,
    /// Whether the PHP snapshot was made to check each include ([`Validate::OnInclude`]).
    validate_includes: bool,
}

impl Function {
    /// Resolves, loads, links and prepares the sandbox: everything slow, once.
    pub fn load(spec: FunctionSpec) -> Result<Self, InitError> {
        let mut timings = InitTimings::default();
        let mut lap = stopwatch();
        let (resolved, task_root) = resolve_code(&spec)?;
        timings.resolve = lap();
        let engine = engine::build_engine(EngineOptions {
            max_instances: spec.max_instances,
        })
        .map_err(|e| InitError::new(types::SANDBOX, format!("{e:#}")))?;
        timings.engine = lap();
        // What needs only the settings is made on a second thread while this one maps the
        // code (on 2 cores, it leaves the cold start): WASI's linker (~0.3 ms) and the sandbox
        // template (~0.1 ms), unless a PHP snapshot is built here, which runs PHP in it.
        let sandbox_here = spec.php_snapshot.is_some();
        let (prepared, beside) = std::thread::scope(|scope| {
            let beside = scope.spawn(|| {
                let sandbox =
                    (!sandbox_here).then(|| prepare_sandbox(&spec, &resolved, &task_root));
                (HandlerComponent::linker(&engine), sandbox)
            });
            let prepared = (|| {
                let here = sandbox_here
                    .then(|| prepare_sandbox(&spec, &resolved, &task_root))
                    .transpose()?;
                lap();
                let build = spec.php_snapshot.zip(here.as_ref().map(|s| &s.config));
                let snapshot = php_snapshot(&spec, &resolved, &engine, &task_root, build);
                timings.snapshot = lap();
                let (loaded, code_watch) = match snapshot {
                    Some((loaded, watch)) => (loaded, watch),
                    None => (
                        loader::load(&engine, resolved.component_path(), spec.cache.as_ref())?,
                        None,
                    ),
                };
                timings.load = lap();
                Ok::<_, InitError>((here, loaded, code_watch))
            })();
            let beside = beside
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (prepared, beside)
        });
        let (here, loaded, code_watch) = prepared?;
        let (linker, sandbox_beside) = beside;
        let linker = linker?;
        let PreparedSandbox {
            tmp: guest_tmp,
            config: sandbox,
            took,
        } = match here {
            Some(prepared) => prepared,
            None => sandbox_beside.expect("prepared beside when not here")?,
        };
        timings.sandbox = took;
        tracing::debug!(load_ms = timings.load.as_secs_f64() * 1e3, "{}", loaded.how);
        let handler = HandlerComponent::link(&linker, loaded.component, &loaded.path)?;
        timings.link = lap();
        Ok(Self {
            validate_includes: spec.php_snapshot == Some(Validate::OnInclude),
            config: spec.config,
            resolved,
            handler,
            sandbox,
            load_path: loaded.how,
            timings,
            guest_tmp,
            code_watch,
        })
    }

    /// Runs one invocation of `event` in a fresh instance, until the event's deadline (or the
    /// configured timeout when it has none), whatever the guest is blocked in. Runs in a
    /// tokio runtime (the guest's host calls are tokio's I/O and timers).
    pub async fn invoke(&self, event: &NextEvent) -> Outcome {
        if self.web_root().is_some() || self.handler.is_http() {
            return self.invoke_web(event).await;
        }
        let timeout = timeout_for(event, self.config.timeout);
        let context = self.context(event);
        let sandbox = self.sandbox_for(event);
        self.handler
            .invoke(&event.body, &context, &sandbox, timeout)
            .await
    }

    /// The document root, when the function is a PHP web app.
    pub fn web_root(&self) -> Option<&DocumentRoot> {
        match &self.resolved {
            Resolved::Php(php) => php.web.as_ref(),
            Resolved::Component { .. } => None,
        }
    }

    /// Answers one HTTP request (`host serve`, or an HTTP event) with the web app, as `route`
    /// (from [`Self::web_root`]'s `route`) says, a script in a fresh instance; `event` gives
    /// the deadline and the context.
    pub async fn respond(
        &self,
        route: Route,
        request: &http::Request<Bytes>,
        client: &Client,
        event: &NextEvent,
    ) -> Outcome<http::Response<Bytes>> {
        let Some(root) = self.web_root() else {
            return Outcome {
                result: Err(LambdaError::new(
                    types::INCOMPATIBLE_HANDLER,
                    "this function is not a web app (its handler does not end in .php)",
                )),
                duration: Duration::ZERO,
                instantiate: Duration::ZERO,
                peak_memory: 0,
            };
        };
        let timeout = timeout_for(event, self.config.timeout);
        let context = self.context(event);
        let mut sandbox = self.sandbox_for(event);
        // Without a watch, the code does not change while the function runs (the bootstrap's
        // snapshot: the host checked its hash, the task root is read-only), unless the watch
        // could not start: then the guest checks every include.
        let code_unchanged = match &self.code_watch {
            Some(watch) => watch.unchanged(),
            None => !self.validate_includes,
        };
        if !code_unchanged {
            // A folder may have been replaced: open them again, as the code is checked again.
            sandbox.opened_dirs = Arc::default();
        }
        web::respond(
            &self.handler,
            root,
            route,
            request,
            client,
            &context,
            &sandbox,
            timeout,
            code_unchanged,
        )
        .await
    }

    /// Answers one HTTP request with a `wasi:http` handler ([`HandlerComponent::is_http`]) in
    /// a fresh instance; `event` gives the deadline and the context. The client's address goes
    /// in `X-Forwarded-For` when the request has none, as a proxy in front would put it.
    pub async fn handle_http(
        &self,
        request: &http::Request<Bytes>,
        client: &Client,
        event: &NextEvent,
    ) -> Outcome<http::Response<Bytes>> {
        let timeout = timeout_for(event, self.config.timeout);
        let context = self.context(event);
        let sandbox = self.sandbox_for(event);
        let mut request = request.clone();
        let headers = request.headers_mut();
        let https = headers
            .get("x-forwarded-proto")
            .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
        if let Some(ip) = &client.ip
            && !headers.contains_key("x-forwarded-for")
            && let Ok(value) = http::HeaderValue::from_str(ip)
        {
            headers.insert("x-forwarded-for", value);
        }
        self.handler
            .handle_http(request, https, &context, &sandbox, timeout)
            .await
    }

    /// An HTTP event's invocation (a web app, or a `wasi:http` handler): the event becomes a
    /// request, the response the result in the shape the event's integration expects.
    async fn invoke_web(&self, event: &NextEvent) -> Outcome {
        let refuse = |message: String| Outcome {
            result: Err(LambdaError::new(types::INVALID_EVENT, message)),
            duration: Duration::ZERO,
            instantiate: Duration::ZERO,
            peak_memory: 0,
        };
        let json: serde_json::Value = match serde_json::from_str(&event.body) {
            Ok(json) => json,
            Err(e) => return refuse(format!("the event is not JSON ({e})")),
        };
        let http_event = match HttpEvent::parse(&json) {
            Some(Ok(http_event)) => http_event,
            Some(Err(message)) => return refuse(message),
            None => {
                return refuse(match self.web_root() {
                    Some(root) => format!(
                        "`{}` is a web app (a handler ending in .php) and takes HTTP events (API \
                         Gateway, ALB, Function URL); this event is not one. For other events, \
                         name a function as the handler instead (`index` calls index() in \
                         index.php)",
                        root.index.trim_start_matches('/')
                    ),
                    None => format!(
                        "`{}` is a wasi:http handler and takes HTTP events (API Gateway, ALB, \
                         Function URL); this event is not one",
                        self.handler.path().display()
                    ),
                });
            }
        };
        let client = Client {
            ip: http_event.source_ip.clone(),
        };
        let outcome = match self.web_root() {
            Some(root) => {
                let route = root.route(http_event.request.uri().path());
                self.respond(route, &http_event.request, &client, event)
                    .await
            }
            None => self.handle_http(&http_event.request, &client, event).await,
        };
        Outcome {
            result: outcome
                .result
                .map(|response| to_event_response(http_event.kind, &response).to_string()),
            duration: outcome.duration,
            instantiate: outcome.instantiate,
            peak_memory: outcome.peak_memory,
        }
    }

    /// The sandbox of one invocation: the template plus its trace id.
    fn sandbox_for(&self, event: &NextEvent) -> SandboxConfig {
        // _X_AMZN_TRACE_ID is per invocation: it goes into this sandbox's environment only
        // (setting the process's would race between concurrent invocations).
        let mut sandbox = self.sandbox.clone();
        sandbox.env.retain(|(k, _)| k != "_X_AMZN_TRACE_ID");
        if let Some(trace) = &event.trace_id {
            sandbox.env.push(("_X_AMZN_TRACE_ID".into(), trace.clone()));
        }
        sandbox
    }

    /// The context the guest gets for `event`: its headers, and this function's configuration.
    pub fn context(&self, event: &NextEvent) -> Context {
        let config = &self.config;
        let deadline_ms = event
            .deadline_ms
            .unwrap_or_else(|| epoch_ms(SystemTime::now() + config.timeout));
        Context {
            request_id: event.request_id.clone(),
            deadline_ms,
            invoked_function_arn: match event.invoked_function_arn.as_str() {
                "" => config.local_arn(),
                arn => arn.to_string(),
            },
            trace_id: event.trace_id.clone(),
            client_context: event.client_context.clone(),
            cognito_identity: event.cognito_identity.clone(),
            function_name: config.function_name.clone(),
            function_version: config.function_version.clone(),
            memory_limit_mb: config.memory_mb,
            log_group_name: config.log_group_name.clone(),
            log_stream_name: config.log_stream_name.clone(),
        }
    }

    /// The host directory the guests see as `/tmp`.
    pub fn tmp_dir(&self) -> &Path {
        self.guest_tmp.path()
    }
}

/// A closure that returns the time since it was last called (or made).
fn stopwatch() -> impl FnMut() -> Duration {
    let mut phase = Instant::now();
    move || {
        let now = Instant::now();
        std::mem::replace(&mut phase, now).elapsed()
    }
}

/// What the spec's code resolves to, and the task root on the host.
fn resolve_code(spec: &FunctionSpec) -> Result<(Resolved, PathBuf), InitError> {
    match &spec.code {
        Code::WebRoot { dir, php_runtime } => {
            let php = resolve::web_root(dir, php_runtime.as_deref(), &spec.layers_root)?;
            let task_root = php.task_root.clone();
            Ok((Resolved::Php(php), task_root))
        }
        Code::Handler {
            name,
            task_root,
            php_runtime,
        } => {
            let resolved = resolve::resolve_handler(
                name,
                task_root,
                &spec.layers_root,
                php_runtime.as_deref(),
            )?;
            Ok((resolved, task_root.clone()))
        }
        Code::File {
            path,
            php_function,
            php_runtime,
        } if path.extension().is_some_and(|ext| ext == "php") => {
            let php = resolve::php_script(
                path,
                php_function.as_deref(),
                php_runtime.as_deref(),
                &spec.layers_root,
            )?;
            let task_root = php.task_root.clone();
            Ok((Resolved::Php(php), task_root))
        }
        Code::File { path, .. } => {
            loader::check_handler_file(path)?;
            let task_root = path
                .canonicalize()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or_default();
            Ok((Resolved::Component { path: path.clone() }, task_root))
        }
    }
}

/// The PHP runtime with the function's code compiled in: built (or taken from the cache) when
/// the spec asks for it, else the one `host compile` left in the task root if it holds this
/// code; `None` (logged when one was wanted or found) to load the plain runtime.
fn php_snapshot(
    spec: &FunctionSpec,
    resolved: &Resolved,
    engine: &wasmtime::Engine,
    task_root: &Path,
    build: Option<(Validate, &SandboxConfig)>,
) -> Option<(loader::Loaded, Option<CodeWatch>)> {
    let Resolved::Php(php) = resolved else {
        return None;
    };
    let found = match build {
        // The one `host compile` made at deploy time, if any (the bootstrap, `host run`).
        None => snapshot::prebuilt(engine, task_root, GUEST_TASK_ROOT)?
            .map(|(component, path)| (component, path, None)),
        Some((validate, sandbox)) => build_php_snapshot(spec, php, engine, sandbox, validate)?,
    };
    match found {
        Ok((component, path, watch)) => Some((
            loader::Loaded {
                component,
                how: LoadPath::Snapshot(path.clone()),
                path,
            },
            watch,
        )),
        Err(e) => {
            tracing::warn!("running PHP without the snapshot of this function's code: {e:#}");
            None
        }
    }
}

/// The snapshot of the function's code in the task root and the layers, from the cache or
/// built now (logged); `None` when there is no PHP file to put in one. With
/// [`Validate::OnInclude`], also a watch on the code, started before the snapshot is looked up.
#[allow(clippy::type_complexity)]
fn build_php_snapshot(
    spec: &FunctionSpec,
    php: &resolve::PhpHandler,
    engine: &wasmtime::Engine,
    sandbox: &SandboxConfig,
    validate: Validate,
) -> Option<anyhow::Result<(wasmtime::component::Component, PathBuf, Option<CodeWatch>)>> {
    let Some(cache) = spec.cache.as_ref() else {
        return Some(Err(anyhow::anyhow!(
            "there is no cache folder to keep it in (set LAMP_CACHE)"
        )));
    };
    let roots: Vec<DirMapping> = sandbox
        .dirs
        .iter()
        .filter(|d| d.guest == GUEST_TASK_ROOT || d.guest == GUEST_LAYERS_ROOT)
        .cloned()
        .collect();
    let deployment = match Deployment::scan(&roots) {
        Ok(d) if d.is_empty() => return None,
        Ok(d) => d,
        Err(e) => return Some(Err(e)),
    };
    // From before the snapshot reads the files: an edit from here on is one the watch sees.
    let watch = (validate == Validate::OnInclude)
        .then(|| CodeWatch::new(deployment.dirs()))
        .and_then(|watch| {
            watch
                .map_err(|e| {
                    tracing::warn!("{e:#}: PHP checks each file it includes from the snapshot")
                })
                .ok()
        });
    let loaded = snapshot::load(
        engine,
        &php.runtime,
        &deployment,
        &sandbox.dirs,
        validate,
        cache,
    );
    Some(loaded.map(|(component, path, source)| {
        match &source {
            snapshot::Source::Cached(file) => tracing::debug!(
                files = deployment.len(),
                "PHP snapshot of the function's code from the cache: `{}`",
                file.display()
            ),
            snapshot::Source::Built(report) => {
                tracing::info!(
                    files = report.compiled,
                    skipped = report.skipped.len(),
                    ms = report.took.as_millis() as u64,
                    "compiled the function's PHP code into a snapshot"
                );
                for line in &report.skipped {
                    tracing::warn!(
                        "snapshot: {line}; it is compiled on each request that includes it"
                    );
                }
            }
        }
        (component, path, watch)
    }))
}

/// The guests' /tmp and the sandbox template, and how long they took.
struct PreparedSandbox {
    tmp: tempfile::TempDir,
    config: SandboxConfig,
    took: Duration,
}

fn prepare_sandbox(
    spec: &FunctionSpec,
    resolved: &Resolved,
    task_root: &Path,
) -> Result<PreparedSandbox, InitError> {
    let started = Instant::now();
    let tmp = guest_tmp()?;
    let config = sandbox_template(spec, resolved, task_root, tmp.path());
    Ok(PreparedSandbox {
        tmp,
        config,
        took: started.elapsed(),
    })
}

/// The guests' private /tmp: a fresh folder under `$TMPDIR/lamp`, removed with the function.
fn guest_tmp() -> Result<tempfile::TempDir, InitError> {
    let root = std::env::temp_dir().join("lamp");
    std::fs::create_dir_all(&root)
        .and_then(|()| tempfile::Builder::new().prefix("tmp-").tempdir_in(&root))
        .map_err(|e| {
            InitError::new(
                types::SANDBOX,
                format!(
                    "failed to create the guests' /tmp in `{}`: {e}; set TMPDIR to a writable directory",
                    root.display()
                ),
            )
        })
}

/// The sandbox every invocation starts from: /tmp, the task root (and in Lambda mode the
/// layers) read-only, `--dir`s, and the environment the policy gives.
fn sandbox_template(
    spec: &FunctionSpec,
    resolved: &Resolved,
    task_root: &Path,
    tmp: &Path,
) -> SandboxConfig {
    let mut dirs = vec![DirMapping {
        host: tmp.into(),
        guest: "/tmp".into(),
        writable: true,
    }];
    if task_root.is_dir() {
        dirs.push(DirMapping::read_only(task_root, GUEST_TASK_ROOT));
    }
    if spec.env_mode == Mode::Lambda && spec.layers_root.is_dir() {
        dirs.push(DirMapping::read_only(&spec.layers_root, GUEST_LAYERS_ROOT));
    }
    let mut standard = spec.config.standard_env();
    if let Resolved::Php(php) = resolved {
        standard.extend(php.guest_env());
        if let Some(ssl) = crate::php::find_ssl_dir(&php.runtime, &spec.layers_root) {
            dirs.push(DirMapping::read_only(&ssl, crate::php::GUEST_SSL_DIR));
        }
    }
    dirs.extend(spec.dirs.iter().cloned());
    let host_env = std::env::vars().filter(|_| spec.env_mode == Mode::Lambda);
    SandboxConfig {
        env: env::guest_env(spec.env_mode, host_env, standard, spec.env.clone()),
        dirs,
        memory_limit: (spec.config.memory_mb as usize) << 20,
        outbound: Arc::new(spec.outbound.clone()),
        opened_dirs: Arc::default(),
    }
}
