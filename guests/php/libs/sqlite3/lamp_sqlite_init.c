/*
 * SQLite's file locking on WASI (compiled into libsqlite3.a by guests/php/libs.sh, run by
 * sqlite3_initialize through SQLITE_EXTRA_INIT).
 *
 * WASI has no fcntl() locks, so the default VFS is SQLite's "unix-dotfile" (libs.sh sets
 * SQLITE_DEFAULT_UNIX_VFS): a connection locks DB by creating the directory DB.lock, which is
 * atomic on the host's file system, so instances running side by side (host serve, Lambda's
 * concurrency) take turns, and a busy database waits out the busy timeout as usual.
 *
 * Unlike an fcntl() lock, a lock directory outlives its owner: an invocation stopped at its
 * deadline inside a transaction leaves it behind, and every later connection would find the
 * database busy for ever. So a lock directory older than LAMP_SQLITE_STALE_LOCK_SECONDS
 * (environment; default 60, twice API Gateway's integration timeout) is taken as left by a
 * stopped invocation and removed; the hot journal it leaves is rolled back by the next
 * connection, as after a crash. A function whose transactions hold a lock longer must raise it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sqlite3.h"

typedef int (*mkdir_fn)(const char *, mode_t);
static mkdir_fn real_mkdir;

static long stale_after_seconds(void) {
  const char *v = getenv("LAMP_SQLITE_STALE_LOCK_SECONDS");
  char *end;
  long s = v ? strtol(v, &end, 10) : 0;
  return (v && *v && *end == '\0' && s > 0) ? s : 60;
}

static int is_lock_dir(const char *path) {
  size_t n = strlen(path);
  return n > 5 && strcmp(path + n - 5, ".lock") == 0;
}

/* SQLite's mkdir (its only use in the unix VFS is taking a dot-file lock). Whatever happens
 * after a lock directory is found to exist, a failure says EEXIST (SQLite's "busy, try again"):
 * the lock may vanish between mkdir and stat when its owner lets go, and any other errno would
 * be an I/O error to SQLite. */
static int lamp_mkdir(const char *path, mode_t mode) {
  int rc = real_mkdir(path, mode);
  if (rc == 0 || errno != EEXIST || !is_lock_dir(path)) return rc;
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
      time(NULL) - st.st_mtime > stale_after_seconds() &&
      (rmdir(path) == 0 || errno == ENOENT)) {
    return real_mkdir(path, mode);
  }
  errno = EEXIST;
  return -1;
}

int lamp_sqlite_init(const char *unused) {
  (void)unused;
  sqlite3_vfs *vfs = sqlite3_vfs_find("unix-dotfile");
  if (!vfs || !vfs->xGetSystemCall || !vfs->xSetSystemCall) return SQLITE_ERROR;
  if (!real_mkdir) real_mkdir = (mkdir_fn)vfs->xGetSystemCall(vfs, "mkdir");
  if (!real_mkdir) return SQLITE_ERROR;
  return vfs->xSetSystemCall(vfs, "mkdir", (sqlite3_syscall_ptr)lamp_mkdir);
}
