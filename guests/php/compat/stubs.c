/*
 * Definitions for what wasi_compat.h declares. The rule: fail with ENOSYS where the caller
 * can report an error; succeed quietly where failing would only break portable code for no
 * gain (flock with one process, chmod on a filesystem without permission bits).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int dup(int fd) { (void)fd; errno = ENOSYS; return -1; }
int dup2(int fd, int to) { (void)fd; (void)to; errno = ENOSYS; return -1; }
int chown(const char *p, uid_t u, gid_t g) { (void)p; (void)u; (void)g; errno = ENOSYS; return -1; }
int fchown(int fd, uid_t u, gid_t g) { (void)fd; (void)u; (void)g; errno = ENOSYS; return -1; }
int lchown(const char *p, uid_t u, gid_t g) { (void)p; (void)u; (void)g; errno = ENOSYS; return -1; }

/* root, so that is_readable()/is_writable() look at the (absent) mode bits as the owner */
uid_t getuid(void) { return 0; }
uid_t geteuid(void) { return 0; }
gid_t getgid(void) { return 0; }
gid_t getegid(void) { return 0; }
int getgroups(int size, gid_t list[]) { (void)size; (void)list; return 0; }
int getdtablesize(void) { return 1024; }
pid_t getppid(void) { return 1; }

/* wasi-libc's chmod/fchmod fail with ENOSYS, so every PHP chmod() (Composer, cache
 * libraries, move_uploaded_file) would warn; build.sh links with -Wl,--wrap=chmod (and
 * fchmod, mprotect), which sends every call to these __wrap_ functions. */
int __wrap_chmod(const char *p, mode_t m) { (void)p; (void)m; return 0; }
int __wrap_fchmod(int fd, mode_t m) { (void)fd; (void)m; return 0; }
int lchmod(const char *p, mode_t m) { (void)p; (void)m; return 0; }

mode_t umask(mode_t mask)
{
	static mode_t current = 022;
	mode_t old = current;
	current = mask & 0777;
	return old;
}

FILE *popen(const char *c, const char *m) { (void)c; (void)m; errno = ENOSYS; return NULL; }
int pclose(FILE *f) { (void)f; errno = ENOSYS; return -1; }

/* Only fiber stacks ask for guard pages: failing here makes `new Fiber` fail with a clear
 * exception instead of crashing on the first switch (there is no ucontext on WASI).
 * wasi-libc's emulated mprotect succeeds, so calls are wrapped to this (see chmod). */
int __wrap_mprotect(void *a, size_t l, int p) { (void)a; (void)l; (void)p; errno = ENOTSUP; return -1; }
int madvise(void *a, size_t l, int adv) { (void)a; (void)l; (void)adv; return 0; }

int flock(int fd, int op) { (void)fd; (void)op; return 0; }

/* stream_socket_pair() and proc_open() pipes: WASI has no socket pairs. */
int socketpair(int d, int t, int p, int fds[2]) { (void)d; (void)t; (void)p; (void)fds; errno = ENOSYS; return -1; }

/* Only a fallback of PHP's (mkstemp is used first); refuse rather than race. */
char *mktemp(char *t) { if (t && *t) { *t = '\0'; } return t; }

/* wasi-libc declares mkstemp but does not define it; PHP's tempnam(), tmpfile() and
 * php://temp spill files need it. Random names from getentropy, created with O_EXCL. */
int mkstemp(char *t)
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	size_t len = t ? strlen(t) : 0;
	if (len < 6 || strcmp(t + len - 6, "XXXXXX") != 0) {
		errno = EINVAL;
		return -1;
	}
	for (int attempt = 0; attempt < 100; attempt++) {
		unsigned char r[6];
		if (getentropy(r, sizeof r) != 0) {
			return -1;
		}
		for (int i = 0; i < 6; i++) {
			t[len - 6 + i] = chars[r[i] % (sizeof chars - 1)];
		}
		int fd = open(t, O_RDWR | O_CREAT | O_EXCL, 0600);
		if (fd >= 0 || errno != EEXIST) {
			return fd;
		}
	}
	errno = EEXIST;
	return -1;
}

/* wasi-libc declares tmpfile (deprecated: "WASI has no temp directories") but does not define
 * it; PHP's bundled libgd writes compressed BMPs through one. A file in $TMPDIR (the host gives
 * every guest a /tmp), unlinked at once as on POSIX, so that it goes when it is closed. */
FILE *tmpfile(void)
{
	const char *dir = getenv("TMPDIR");
	char path[PATH_MAX];
	if (!dir || !*dir) {
		dir = "/tmp";
	}
	if (snprintf(path, sizeof path, "%s/tmpfileXXXXXX", dir) >= (int)sizeof path) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	int fd = mkstemp(path);
	if (fd < 0) {
		return NULL;
	}
	unlink(path);
	FILE *f = fdopen(fd, "w+");
	if (!f) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return f;
}

/* rmdir("dir/") fails with EINVAL under wasmtime (its remove-directory-at refuses a trailing
 * slash) where POSIX removes dir, and PHP code passes one often enough (ext/zip's tests, cache
 * clean-ups): build.sh links with -Wl,--wrap=rmdir, which sends calls here without it. */
int __real_rmdir(const char *path);
int __wrap_rmdir(const char *path)
{
	size_t len = path ? strlen(path) : 0;
	if (len < 2 || path[len - 1] != '/') {
		return __real_rmdir(path);
	}
	char copy[PATH_MAX];
	if (len >= sizeof copy) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(copy, path, len + 1);
	while (len > 1 && copy[len - 1] == '/') {
		copy[--len] = '\0';
	}
	return __real_rmdir(copy);
}

/* syslog: to stderr, one line per message. */
#include <stdarg.h>
#include <syslog.h>

static const char *syslog_ident;

void openlog(const char *ident, int option, int facility) { (void)option; (void)facility; syslog_ident = ident; }
void closelog(void) { syslog_ident = NULL; }
int setlogmask(int mask) { (void)mask; return 0xff; }

void syslog(int priority, const char *format, ...)
{
	va_list ap;
	(void)priority;
	if (syslog_ident) {
		fprintf(stderr, "%s: ", syslog_ident);
	}
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
	fputc('\n', stderr);
}
