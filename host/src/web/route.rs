//! Which file answers a path in a PHP web app: nginx's
//! `try_files $uri $uri/ /index.php?$args` with `fastcgi_split_path_info ^(.+\.php)(/.*)$`.
//!
//! - a path through an existing `.php` file runs it (`/wp-admin/install.php`,
//!   `/app.php/some/info` with `PATH_INFO=/some/info`);
//! - an existing file that is not PHP is served as it is (never a `.php` file's source);
//! - a directory with an `index.php` runs that (`/wp-admin/`);
//! - anything else goes to the front controller (the handler's script), with the request's
//!   path and query left as they were for the app's router.
//!
//! Paths are URL-decoded and normalised; one that climbs out of the document root (`..`)
//! goes to the front controller, never to a file outside.

use std::path::{Path, PathBuf};

/// A web app's document root, on the host and in the sandbox, and its front controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRoot {
    /// The folder on the host.
    pub host: PathBuf,
    /// The same folder inside the sandbox (`/var/task/public`).
    pub guest: String,
    /// The front controller's path under the root, with a leading `/` (`/index.php`).
    pub index: String,
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Run a PHP script.
    Script(Script),
    /// Serve this file (on the host) as it is.
    Static(PathBuf),
}

/// A script to run, with the CGI variables that describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// `SCRIPT_NAME`: its path under the document root (`/wp-admin/install.php`).
    pub name: String,
    /// `SCRIPT_FILENAME`: its path inside the sandbox.
    pub filename: String,
    /// `PATH_INFO`: what followed the script's name in the path, if anything.
    pub path_info: Option<String>,
}

impl DocumentRoot {
    /// Where `path` (the request's, without the query) goes.
    pub fn route(&self, path: &str) -> Route {
        let Some(segments) = normalise(path) else {
            return Route::Script(self.front_controller());
        };
        // A segment ending in .php that names a file: the script, the rest is PATH_INFO.
        for (i, segment) in segments.iter().enumerate() {
            if segment.ends_with(".php") {
                let name = format!("/{}", segments[..=i].join("/"));
                if self.host_path(&name).is_file() {
                    let rest = &segments[i + 1..];
                    let path_info = (!rest.is_empty()).then(|| format!("/{}", rest.join("/")));
                    return Route::Script(self.script(name, path_info));
                }
                break;
            }
        }
        let relative = format!("/{}", segments.join("/"));
        let file = self.host_path(&relative);
        // One stat for what the path is (most requests name no file: the front controller).
        let kind = std::fs::metadata(&file).map(|m| m.file_type());
        if kind.as_ref().is_ok_and(|k| k.is_file()) {
            return Route::Static(file);
        }
        if kind.is_ok_and(|k| k.is_dir()) {
            let index = format!("{}/index.php", relative.trim_end_matches('/'));
            if self.host_path(&index).is_file() {
                return Route::Script(self.script(index, None));
            }
            let html = file.join("index.html");
            if html.is_file() {
                return Route::Static(html);
            }
        }
        Route::Script(self.front_controller())
    }

    fn front_controller(&self) -> Script {
        self.script(self.index.clone(), None)
    }

    fn script(&self, name: String, path_info: Option<String>) -> Script {
        Script {
            filename: format!("{}{}", self.guest.trim_end_matches('/'), name),
            name,
            path_info,
        }
    }

    fn host_path(&self, relative: &str) -> PathBuf {
        self.host.join(relative.trim_start_matches('/'))
    }

    /// The document root whose front controller is `script` (its folder is the root).
    pub fn of_script(host_script: &Path, guest_script: &str) -> Self {
        let host = host_script.parent().unwrap_or(Path::new("/")).to_path_buf();
        let (guest, file) = guest_script.rsplit_once('/').unwrap_or(("", guest_script));
        Self {
            host,
            guest: if guest.is_empty() {
                "/".into()
            } else {
                guest.into()
            },
            index: format!("/{file}"),
        }
    }
}

/// The path's segments, URL-decoded, without `.` and empty ones, `..` applied; `None` when
/// it climbs out of the root or does not decode to UTF-8 without NUL.
fn normalise(path: &str) -> Option<Vec<String>> {
    let decoded = percent_decode(path)?;
    let mut segments: Vec<String> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop()?;
            }
            s => segments.push(s.to_string()),
        }
    }
    Some(segments)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    (!text.contains('\0')).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> (tempfile::TempDir, DocumentRoot) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("wp-admin")).unwrap();
        std::fs::create_dir_all(root.join("assets")).unwrap();
        std::fs::create_dir_all(root.join("docs")).unwrap();
        for file in [
            "index.php",
            "wp-admin/install.php",
            "wp-admin/index.php",
            "app.php",
        ] {
            std::fs::write(root.join(file), "<?php").unwrap();
        }
        std::fs::write(root.join("assets/site.css"), "body{}").unwrap();
        std::fs::write(root.join("docs/index.html"), "<p>").unwrap();
        let doc = DocumentRoot {
            host: root.to_path_buf(),
            guest: "/var/task/public".into(),
            index: "/index.php".into(),
        };
        (dir, doc)
    }

    fn script(name: &str, path_info: Option<&str>) -> Route {
        Route::Script(Script {
            name: name.into(),
            filename: format!("/var/task/public{name}"),
            path_info: path_info.map(Into::into),
        })
    }

    #[test]
    fn routes_like_nginx_try_files() {
        let (_dir, doc) = app();
        assert_eq!(doc.route("/"), script("/index.php", None));
        assert_eq!(doc.route("/blog/post/7"), script("/index.php", None));
        assert_eq!(
            doc.route("/wp-admin/install.php"),
            script("/wp-admin/install.php", None)
        );
        assert_eq!(doc.route("/wp-admin/"), script("/wp-admin/index.php", None));
        assert_eq!(doc.route("/app.php/a/b"), script("/app.php", Some("/a/b")));
        assert_eq!(doc.route("/missing.php"), script("/index.php", None));
        assert_eq!(
            doc.route("/assets/site.css"),
            Route::Static(doc.host.join("assets/site.css"))
        );
        assert_eq!(
            doc.route("/assets/%73ite.css"),
            Route::Static(doc.host.join("assets/site.css"))
        );
        assert_eq!(
            doc.route("/docs/"),
            Route::Static(doc.host.join("docs/index.html"))
        );
    }

    #[test]
    fn never_leaves_the_document_root() {
        let (_dir, doc) = app();
        assert_eq!(doc.route("/../../etc/passwd"), script("/index.php", None));
        assert_eq!(
            doc.route("/assets/%2e%2e/%2e%2e/x"),
            script("/index.php", None)
        );
        assert_eq!(doc.route("/a%00.css"), script("/index.php", None));
    }
}
