//! `host php`: PHP's CLI like a native `php` ([`crate::php::cli`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::Args;

use super::GuestFlags;
use crate::engine;
use crate::php;

/// Runs the PHP interpreter (compiled to WebAssembly) like `php`.
///
/// The guest sees the current directory read-write at its own absolute path (so absolute
/// paths work as on the host) and as `.`, plus `/tmp` and what `--allow-dir` grants. It gets
/// only the environment given with `--env`, and `TMPDIR=/tmp`. The exit status is PHP's.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  host php -r 'var_dump(PHP_INT_SIZE, PHP_VERSION);'
  host php script.php arg1 arg2
  host php --allow-listen 127.0.0.1:8080 --allow-outbound 127.0.0.1:8080 server.php
  cd app/public && host php --allow-dir .. index.php   # reads ../vendor
  echo '<?php echo 1 + 1;' | host php
  LAMP_PHP_CLI=guests/php/dist/php-cli.wasm host php -v")]
pub struct PhpCommand {
    /// php-cli.wasm to run. Default: `$LAMP_PHP_CLI`, then `php-cli.wasm` next to the host
    /// binary, then `guests/php/dist/php-cli.wasm` of the source tree the binary was built in.
    #[arg(long, value_name = "PATH", env = php::PHP_CLI_ENV)]
    pub php_cli: Option<PathBuf>,

    #[command(flatten)]
    pub env: GuestFlags,

    /// An address the guest may listen on, as HOST:PORT (repeatable): HOST an IP (127.0.0.1,
    /// [::1], 0.0.0.0 for every interface) or localhost (the loopback addresses); PORT a
    /// number, 0 for a free port the system picks, or *. Without it the guest cannot listen.
    /// `host php` only: Lambda functions and `host serve`'s handlers take no connections.
    #[arg(long = "allow-listen", value_name = "HOST:PORT")]
    pub allow_listen: Vec<String>,

    /// A directory the guest may read and write besides the current one, at its own absolute
    /// path (repeatable). One that holds the current directory also lets `..` climb out of it
    /// (`require __DIR__.'/../vendor/autoload.php'` from `public/`).
    #[arg(long = "allow-dir", value_name = "DIR")]
    pub allow_dir: Vec<PathBuf>,

    /// Arguments for php, as for php-cli.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

impl PhpCommand {
    pub fn execute(self) -> Result<ExitCode> {
        let wasm = php::find_cli(self.php_cli.as_deref()).map_err(|tried| {
            anyhow!(
                "php-cli.wasm not found (tried {}); build it with `make php` or pass --php-cli PATH (or set {})",
                php::list(&tried),
                php::PHP_CLI_ENV
            )
        })?;
        let env = self.env.pairs()?;
        let policy = self.env.outbound()?.with_listen(
            self.allow_listen.iter().map(String::as_str),
            "--allow-listen",
        )?;
        let policy = std::sync::Arc::new(policy);
        // Deep PHP recursion runs on the calling thread's stack: give it room.
        let dirs = self
            .allow_dir
            .iter()
            .map(|dir| {
                // Canonical, as the current directory is (getcwd): `..` resolved.
                std::fs::canonicalize(dir)
                    .ok()
                    .filter(|abs| abs.is_dir())
                    .ok_or_else(|| {
                        anyhow!(
                            "--allow-dir {}: not a directory; name one that exists",
                            dir.display()
                        )
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let status =
            engine::on_guest_stack(move || php::cli::run(&wasm, &self.args, env, &dirs, policy))?;
        Ok(ExitCode::from(status))
    }
}
