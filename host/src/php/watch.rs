//! Whether a deployment's code changed since its snapshot was made, for `host serve`, where
//! files are edited while it runs.
//!
//! The guest can check each preloaded file's size and mtime when a request includes it
//! (`Validate::OnInclude`): a stat per include, most of a framework page's system calls. With a
//! [`CodeWatch`] the host answers for all of them at once: inotify watches the folders of the
//! deployment's files from before the snapshot is made, and a request is told the code is
//! unchanged while no event has arrived. The kernel queues an event before the write (or
//! rename, delete, touch) that caused it returns, and each request reads the queue (one
//! non-blocking `read`) before it starts, so an edit saved before a request was sent is always
//! seen by it, unlike opcache's `revalidate_freq`. After the first event (any, even of a file
//! that is not code: the watch does not sort them) every request checks its includes as before.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result};
use rustix::fd::OwnedFd;
use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use rustix::io::Errno;

/// An inotify watch on a deployment's folders.
#[derive(Debug)]
pub struct CodeWatch {
    events: Mutex<OwnedFd>,
    changed: AtomicBool,
}

impl CodeWatch {
    /// Watches `dirs` for anything that could change a file in them: writes, attribute
    /// changes (a `touch`), files made, deleted or renamed, the folder itself deleted or
    /// moved. Fails when inotify cannot (e.g. `fs.inotify.max_user_watches` reached); the
    /// guest then checks every include.
    pub fn new<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> Result<Self> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .context("failed to start inotify")?;
        let mask = WatchFlags::MODIFY
            | WatchFlags::ATTRIB
            | WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF;
        for dir in dirs {
            inotify::add_watch(&fd, dir, mask)
                .with_context(|| format!("failed to watch `{}` with inotify", dir.display()))?;
        }
        Ok(Self {
            events: Mutex::new(fd),
            changed: AtomicBool::new(false),
        })
    }

    /// Whether nothing has changed in the watched folders since [`Self::new`].
    pub fn unchanged(&self) -> bool {
        if self.changed.load(Ordering::Acquire) {
            return false;
        }
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let mut buf = [0u8; 256];
        match rustix::io::read(&*events, &mut buf) {
            Err(Errno::AGAIN) => true,
            Err(Errno::INTR) => false,
            // An event (the buffer is too small for some: EINVAL), or anything else.
            _ => {
                self.changed.store(true, Ordering::Release);
                tracing::debug!("the code changed since its snapshot: PHP checks each include");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder with one file, `a.php`, and a watch on it.
    fn watched() -> (tempfile::TempDir, std::path::PathBuf, CodeWatch) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.php");
        std::fs::write(&file, "<?php 1;").unwrap();
        let watch = CodeWatch::new([dir.path()]).unwrap();
        (dir, file, watch)
    }

    #[test]
    fn an_edit_is_seen_by_the_next_question_and_for_good() {
        let (_dir, file, watch) = watched();
        assert!(watch.unchanged());
        assert!(watch.unchanged());
        std::fs::write(&file, "<?php 2;").unwrap();
        assert!(!watch.unchanged());
        assert!(!watch.unchanged());
    }

    #[test]
    fn a_touch_a_rename_and_a_new_file_are_changes() {
        for change in [
            |f: &Path| {
                std::fs::File::options()
                    .write(true)
                    .open(f)
                    .unwrap()
                    .set_modified(std::time::SystemTime::UNIX_EPOCH)
                    .unwrap()
            },
            |f: &Path| std::fs::rename(f, f.with_extension("old")).unwrap(),
            |f: &Path| std::fs::write(f.with_file_name("b.php"), "").unwrap(),
        ] {
            let (_dir, file, watch) = watched();
            assert!(watch.unchanged());
            change(&file);
            assert!(!watch.unchanged());
        }
    }

    #[test]
    fn reading_files_is_no_change() {
        let (_dir, file, watch) = watched();
        std::fs::read(&file).unwrap();
        std::fs::metadata(&file).unwrap();
        assert!(watch.unchanged());
    }

    #[test]
    fn a_folder_that_is_not_there_is_an_error_naming_it() {
        let err = CodeWatch::new([Path::new("/nonexistent/code")]).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/code"), "{err:#}");
    }
}
