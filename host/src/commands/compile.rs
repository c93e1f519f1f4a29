//! `host compile`: ahead-of-time compilation of a handler component to a `.cwasm`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};
use wasmtime::Engine;

use crate::component::slim;
use crate::engine::{self, CodeTarget, CompiledFor};
use crate::php::{self, snapshot};

/// Compiles a handler component ahead of time, so that loading it takes milliseconds.
///
/// The output only loads into a host with the same wasmtime version and engine settings, on a
/// CPU with the features it was compiled for; `host run` and the bootstrap refuse (with a
/// message) one that does not fit and compile the `.wasm` instead. By default the code is
/// compiled for the CPU baseline of Lambda hosts of this architecture, so it loads on every
/// one of them and the bytes do not depend on the machine that built them.
///
/// A module with more than 64 KiB of function names (PHP: 543 KB) loses them in the output:
/// they would be read at every load, 0.3 ms of PHP's cold start; a trap's stack trace then
/// shows its frames as `<func N>`, and `host run` of the `.wasm` shows the names.
#[derive(Debug, Args)]
///
/// Given a PHP function's folder (its task root) instead, it compiles every `.php` file in it
/// into a snapshot of the PHP runtime, `DIR/.lamp/php-snapshot.cwasm`, which the bootstrap and
/// `host run` then start each invocation from (if the code is still what was compiled): for
/// `examples/lamp-app`, `examples/lamp-app/.lamp/php-snapshot.cwasm`.
#[command(after_help = "Examples:
  host compile hello.wasm -o hello.cwasm
  host compile examples/lamp-app
  host compile hello.wasm -o hello.cwasm --target native
  host compile php.wasm -o php-arm64.cwasm --target aarch64
  host run hello.cwasm --event '{}'")]
pub struct CompileCommand {
    /// The component to compile (.wasm), or a PHP function's folder.
    pub module: PathBuf,
    /// Where to write the precompiled component (not for a folder: its snapshot goes in it).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The PHP runtime a folder's snapshot is made from [default: as `host run` finds it].
    #[arg(long, value_name = "PATH")]
    pub php_runtime: Option<PathBuf>,
    /// The CPU the code is for [default: the Lambda baseline of this machine's architecture].
    #[arg(long, value_enum)]
    pub target: Option<Target>,
}

/// The CPUs `host compile` compiles for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// Every Lambda x86_64 host: x86-64-v3 (AVX2, BMI1/2, FMA, LZCNT; no AVX-512).
    #[value(name = "x86_64", alias = "x86-64", alias = "amd64")]
    X86_64,
    /// Every Lambda arm64 host (Graviton2, Armv8.2): LSE atomics.
    #[value(name = "aarch64", alias = "arm64")]
    Aarch64,
    /// This machine's CPU with all its features: fastest here, may be refused elsewhere.
    Native,
}

impl From<Target> for CodeTarget {
    fn from(target: Target) -> Self {
        match target {
            Target::X86_64 => CodeTarget::X86_64,
            Target::Aarch64 => CodeTarget::Aarch64,
            Target::Native => CodeTarget::Native,
        }
    }
}

impl CompileCommand {
    pub fn execute(self) -> Result<ExitCode> {
        let target = self
            .target
            .map_or_else(CodeTarget::lambda_baseline, CodeTarget::from);
        let engine = engine::build_engine_for(engine::EngineOptions::default(), target)
            .with_context(|| format!("cannot compile for {target:?}{}", cross_hint(target)))?;
        if self.module.is_dir() {
            return self.php_snapshot(&engine);
        }
        let Some(output) = self.output.as_ref() else {
            bail!(
                "give the output file: `host compile {} -o FILE.cwasm`",
                self.module.display()
            );
        };
        let wasm = std::fs::read(&self.module)
            .with_context(|| format!("failed to read `{}`", self.module.display()))?;
        if Engine::detect_precompiled(&wasm).is_some() {
            bail!(
                "`{}` is already precompiled; give the .wasm it was made from",
                self.module.display()
            );
        }
        // Big name sections cost every cold start their deserialization, empty passive data
        // segments every instance its set-up (component/slim.rs).
        let wasm = slim::slim(&wasm)
            .with_context(|| format!("failed to read `{}`", self.module.display()))?;
        let compiled = engine.precompile_component(&wasm);
        crate::engine::compiled();
        let bytes = compiled.map_err(|err| {
            anyhow::Error::from(err).context(format!(
                "failed to compile `{}` for {target:?}{}",
                self.module.display(),
                cross_hint(target)
            ))
        })?;
        std::fs::write(output, &bytes)
            .with_context(|| format!("failed to write `{}`", output.display()))?;
        let compiled = CompiledFor::read(&bytes)?;
        eprintln!(
            "wrote {} ({} bytes) for {} with {}",
            output.display(),
            bytes.len(),
            compiled.triple,
            if compiled.features.is_empty() {
                "no optional CPU features".to_string()
            } else {
                compiled.features.join(" ")
            }
        );
        Ok(ExitCode::SUCCESS)
    }
}

impl CompileCommand {
    /// A PHP function's folder: its code compiled into a snapshot of the PHP runtime.
    fn php_snapshot(&self, engine: &Engine) -> Result<ExitCode> {
        if let Some(output) = &self.output {
            bail!(
                "`{}` is a folder: its snapshot is written in it (`{}/{}/{}`), not to `{}`; \
                 leave out -o",
                self.module.display(),
                self.module.display(),
                snapshot::PREBUILT_DIR,
                snapshot::PREBUILT_FILE,
                output.display()
            );
        }
        let layers = std::path::Path::new(crate::resolve::GUEST_LAYERS_ROOT);
        let runtime = php::find_runtime(self.php_runtime.as_deref(), layers).map_err(|tried| {
            anyhow::anyhow!(
                "no PHP runtime found (tried {}); build it with `make php` or give --php-runtime",
                php::list(&tried)
            )
        })?;
        let (file, report) = snapshot::write_prebuilt(
            engine,
            &runtime,
            &self.module,
            crate::resolve::GUEST_TASK_ROOT,
        )
        .with_context(|| {
            format!(
                "failed to compile the PHP code in `{}`",
                self.module.display()
            )
        })?;
        for line in &report.skipped {
            eprintln!("{line}: it is compiled on each request that includes it");
        }
        eprintln!(
            "wrote {} ({} .php files compiled into {}, in {:.1} s)",
            file.display(),
            report.compiled,
            runtime.display(),
            report.took.as_secs_f64()
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// The layers' bootstrap links Cranelift's backend for its own architecture only (each one is
/// ~1 MB of it); the full host (the `cross` feature) has both.
fn cross_hint(target: CodeTarget) -> &'static str {
    let other_arch = match target {
        CodeTarget::X86_64 => !cfg!(target_arch = "x86_64"),
        CodeTarget::Aarch64 => !cfg!(target_arch = "aarch64"),
        CodeTarget::Native => false,
    };
    if other_arch && !cfg!(feature = "cross") {
        " (this host compiles only for its own architecture: compile with the full host, \
         `cargo build -p host`, which compiles for both, as `make layers` does)"
    } else {
        ""
    }
}
