//! Finding the handler named by `_HANDLER` (or given to `host run`) on disk.
//!
//! Rules, in order (the README shows examples):
//! 1. a name ending in `.wasm` or `.cwasm` is a component file, relative to the task root;
//! 2. `NAME` or `NAME.FUNCTION`: a component `NAME.cwasm` or `NAME.wasm`, first in the task
//!    root, then in the layers' handler folder (`/opt/lamp/handlers`);
//! 3. a name ending in `.php` (Bref's `public/index.php`) is a PHP web app: the script is its
//!    front controller and its folder the document root; it takes HTTP events;
//! 4. else a PHP script `NAME.php` or `src/NAME.php` in the task root, run by the PHP runtime
//!    component from the layers (`/opt/lamp/php.cwasm`, `php.wasm` or the `php.wasm.xz` the
//!    php layer ships for when its `.cwasm` does not fit the engine); the function called
//!    is `FUNCTION` if given, else `NAME` (the seed's `_HANDLER=index` calls `index()`).
//!
//! A `.cwasm` is preferred to a `.wasm` of the same name when both exist.

use std::path::{Path, PathBuf};

use crate::error::{InitError, types};
use crate::php::{self, PHP_RUNTIME_ENV};
use crate::web::route::DocumentRoot;

/// Where the function's code appears inside the sandbox, as on Lambda.
pub const GUEST_TASK_ROOT: &str = "/var/task";
/// Where the layers appear inside the sandbox, as on Lambda.
pub const GUEST_LAYERS_ROOT: &str = "/opt";
/// Our folder inside the layers root.
pub const LAYER_DIR: &str = "lamp";
/// Folder of handler components shipped in a layer, inside [`LAYER_DIR`].
pub const LAYER_HANDLERS_DIR: &str = "handlers";

/// What a handler name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A handler component, run as it is.
    Component { path: PathBuf },
    /// A PHP script, run by the PHP runtime component.
    Php(PhpHandler),
}

impl Resolved {
    /// The component to load: the handler itself, or the PHP runtime that runs the script.
    pub fn component_path(&self) -> &Path {
        match self {
            Resolved::Component { path } => path,
            Resolved::Php(php) => &php.runtime,
        }
    }
}

/// A PHP handler: the script, the function to call, and the runtime that runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhpHandler {
    /// The runtime component (`php.cwasm` or `php.wasm`).
    pub runtime: PathBuf,
    /// The task root on the host, mapped read-only to [`GUEST_TASK_ROOT`].
    pub task_root: PathBuf,
    /// The script's path inside the sandbox, e.g. `/var/task/src/index.php`.
    pub guest_script: String,
    /// The function to call; `None` for a script that returns its handler (Bref style).
    pub function: Option<String>,
    /// Set for a web app: its document root, whose front controller is the script.
    pub web: Option<DocumentRoot>,
}

impl PhpHandler {
    /// The environment variables through which the PHP runtime learns what to run.
    pub fn guest_env(&self) -> Vec<(String, String)> {
        let mut env = vec![("LAMP_PHP_SCRIPT".to_string(), self.guest_script.clone())];
        if let Some(function) = &self.function {
            env.push(("LAMP_PHP_FUNCTION".to_string(), function.clone()));
        }
        env
    }
}

/// Resolves `_HANDLER` in the task root, then the layers root.
pub fn resolve_handler(
    handler: &str,
    task_root: &Path,
    layers_root: &Path,
    php_runtime: Option<&Path>,
) -> Result<Resolved, InitError> {
    let mut tried = Vec::new();
    let handler = handler.trim();
    if handler.is_empty() {
        return Err(InitError {
            error_type: types::NO_SUCH_HANDLER,
            message: "_HANDLER is empty; set the function's handler, e.g. `index` for src/index.php or `hello` for hello.wasm".into(),
        });
    }
    if handler.ends_with(".wasm") || handler.ends_with(".cwasm") {
        let path = task_root.join(handler);
        if path.is_file() {
            return Ok(Resolved::Component { path });
        }
        tried.push(path);
        return Err(not_found(handler, &tried));
    }
    if handler.ends_with(".php") {
        return web_app(handler, task_root, layers_root, php_runtime);
    }
    let (name, function) = match handler.split_once('.') {
        Some((name, function)) => (name, Some(function)),
        None => (handler, None),
    };
    let handlers_dir = layers_root.join(LAYER_DIR).join(LAYER_HANDLERS_DIR);
    for dir in [task_root, handlers_dir.as_path()] {
        for ext in ["cwasm", "wasm"] {
            let path = dir.join(format!("{name}.{ext}"));
            if path.is_file() {
                return Ok(Resolved::Component { path });
            }
            tried.push(path);
        }
    }
    for relative in [format!("{name}.php"), format!("src/{name}.php")] {
        let path = task_root.join(&relative);
        if path.is_file() {
            let function = function.unwrap_or(name);
            return php_handler(
                &path,
                &relative,
                function,
                task_root,
                layers_root,
                php_runtime,
            );
        }
        tried.push(path);
    }
    Err(not_found(handler, &tried))
}

/// A handler ending in `.php`: the front controller of a web app in the task root.
fn web_app(
    handler: &str,
    task_root: &Path,
    layers_root: &Path,
    php_runtime: Option<&Path>,
) -> Result<Resolved, InitError> {
    let path = task_root.join(handler);
    if !path.is_file() {
        return Err(InitError {
            error_type: types::NO_SUCH_HANDLER,
            message: format!(
                "no web app front controller `{}`; a handler ending in .php names the script \
                 every request that is not a file goes to (e.g. public/index.php)",
                path.display()
            ),
        });
    }
    let mut resolved = php_handler(&path, handler, "", task_root, layers_root, php_runtime)?;
    if let Resolved::Php(php) = &mut resolved {
        php.function = None;
        php.web = Some(DocumentRoot::of_script(&path, &php.guest_script));
    }
    Ok(resolved)
}

/// The PHP script `relative` (at `path`) in the task root, run by the layers' PHP runtime.
fn php_handler(
    path: &Path,
    relative: &str,
    function: &str,
    task_root: &Path,
    layers_root: &Path,
    php_runtime: Option<&Path>,
) -> Result<Resolved, InitError> {
    let runtime = php::find_runtime(php_runtime, layers_root).map_err(|looked| InitError {
        error_type: types::NO_SUCH_HANDLER,
        message: format!(
            "`{}` is a PHP handler, but no PHP runtime was found (tried {}); add the php layer \
             (php.zip) to the function, or set {PHP_RUNTIME_ENV}",
            path.display(),
            php::list(&looked)
        ),
    })?;
    Ok(Resolved::Php(PhpHandler {
        runtime,
        task_root: task_root.to_path_buf(),
        guest_script: format!("{GUEST_TASK_ROOT}/{relative}"),
        function: Some(function.to_string()),
        web: None,
    }))
}

/// The PHP handler for a script given by path (`host run src/index.php`): the task root is
/// the folder above `src/` when the script is in one (the seed's layout), else its own folder.
pub fn php_script(
    script: &Path,
    function: Option<&str>,
    runtime: Option<&Path>,
    layers_root: &Path,
) -> Result<PhpHandler, InitError> {
    if !script.is_file() {
        return Err(InitError {
            error_type: types::NO_SUCH_HANDLER,
            message: format!(
                "PHP script `{}` does not exist; give the path of the handler's .php file",
                script.display()
            ),
        });
    }
    let script = script.canonicalize().map_err(|e| InitError {
        error_type: types::NO_SUCH_HANDLER,
        message: format!("failed to resolve `{}`: {e}", script.display()),
    })?;
    let dir = script.parent().expect("a canonical file path has a parent");
    let task_root = match dir.file_name() {
        Some(name) if name == "src" => dir.parent().unwrap_or(dir),
        _ => dir,
    };
    let relative = script
        .strip_prefix(task_root)
        .expect("the task root is an ancestor of the script");
    let stem = script.file_stem().map(|s| s.to_string_lossy().into_owned());
    let runtime = local_runtime(runtime, layers_root)?;
    Ok(PhpHandler {
        runtime,
        task_root: task_root.to_path_buf(),
        guest_script: format!("{GUEST_TASK_ROOT}/{}", relative.display()),
        function: function.map(str::to_string).or(stem),
        web: None,
    })
}

/// A web app served from `dir` (`host serve DIR`): `dir` is the document root and its
/// `index.php` the front controller; the task root is the folder above a `public/` (the
/// layout of Bref, Symfony and Laravel, whose code sits beside `public/`), else `dir`.
pub fn web_root(
    dir: &Path,
    runtime: Option<&Path>,
    layers_root: &Path,
) -> Result<PhpHandler, InitError> {
    let dir = dir.canonicalize().map_err(|e| InitError {
        error_type: types::NO_SUCH_HANDLER,
        message: format!(
            "document root `{}` is not a folder ({e}); give the folder with the app's index.php",
            dir.display()
        ),
    })?;
    if !dir.is_dir() {
        return Err(InitError {
            error_type: types::NO_SUCH_HANDLER,
            message: format!(
                "`{}` is not a folder; give the folder with the app's index.php (its document root)",
                dir.display()
            ),
        });
    }
    let task_root = match dir.file_name() {
        Some(name) if name == "public" => dir.parent().unwrap_or(&dir).to_path_buf(),
        _ => dir.clone(),
    };
    let relative = dir
        .strip_prefix(&task_root)
        .expect("the task root is the folder or its parent");
    let guest_root = if relative.as_os_str().is_empty() {
        GUEST_TASK_ROOT.to_string()
    } else {
        format!("{GUEST_TASK_ROOT}/{}", relative.display())
    };
    let runtime = local_runtime(runtime, layers_root)?;
    Ok(PhpHandler {
        runtime,
        guest_script: format!("{guest_root}/index.php"),
        function: None,
        web: Some(DocumentRoot {
            host: dir.clone(),
            guest: guest_root,
            index: "/index.php".into(),
        }),
        task_root,
    })
}

/// The PHP runtime for a local command: `explicit`, else found as [`crate::php`] says.
fn local_runtime(explicit: Option<&Path>, layers_root: &Path) -> Result<PathBuf, InitError> {
    php::find_runtime(explicit, layers_root).map_err(|looked| InitError {
        error_type: types::NO_SUCH_HANDLER,
        message: format!(
            "no PHP runtime component found (tried {}); build it with `make php`, or pass --php-runtime",
            php::list(&looked)
        ),
    })
}

fn not_found(handler: &str, tried: &[PathBuf]) -> InitError {
    let list = tried
        .iter()
        .map(|p| format!("  {}", p.display()))
        .collect::<Vec<_>>()
        .join("\n");
    InitError {
        error_type: types::NO_SUCH_HANDLER,
        message: format!(
            "no handler `{handler}` found; tried:\n{list}\nput NAME.wasm (a component) or src/NAME.php in the function's code, \
             or set _HANDLER to one that exists"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_in_task_root_wins_over_layer_and_php() {
        let task = tempfile::tempdir().unwrap();
        let layers = tempfile::tempdir().unwrap();
        std::fs::write(task.path().join("hello.wasm"), b"").unwrap();
        std::fs::create_dir_all(layers.path().join("lamp/handlers")).unwrap();
        std::fs::write(layers.path().join("lamp/handlers/hello.wasm"), b"").unwrap();
        let resolved = resolve_handler("hello.handle", task.path(), layers.path(), None).unwrap();
        assert_eq!(
            resolved,
            Resolved::Component {
                path: task.path().join("hello.wasm")
            }
        );
    }

    #[test]
    fn missing_handler_lists_every_path_tried() {
        let task = tempfile::tempdir().unwrap();
        let layers = tempfile::tempdir().unwrap();
        let err = resolve_handler("nope", task.path(), layers.path(), None).unwrap_err();
        assert_eq!(err.error_type, types::NO_SUCH_HANDLER);
        for tried in [
            "nope.cwasm",
            "nope.wasm",
            "lamp/handlers/nope.wasm",
            "nope.php",
            "src/nope.php",
        ] {
            assert!(
                err.message.contains(tried),
                "{tried} missing from {}",
                err.message
            );
        }
    }

    #[test]
    fn php_script_in_src_gets_the_seed_layout() {
        let task = tempfile::tempdir().unwrap();
        let layers = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(task.path().join("src")).unwrap();
        std::fs::write(task.path().join("src/index.php"), b"<?php").unwrap();
        std::fs::create_dir_all(layers.path().join("lamp")).unwrap();
        std::fs::write(layers.path().join("lamp/php.wasm"), b"").unwrap();
        let Resolved::Php(php) =
            resolve_handler("index", task.path(), layers.path(), None).unwrap()
        else {
            panic!("expected a PHP handler")
        };
        assert_eq!(php.guest_script, "/var/task/src/index.php");
        assert_eq!(php.function.as_deref(), Some("index"));
        assert_eq!(php.runtime, layers.path().join("lamp/php.wasm"));
    }
}
