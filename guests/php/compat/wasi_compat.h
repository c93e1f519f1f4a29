/*
 * Force-included (-include) into every PHP and glue translation unit, but not into autoconf's
 * conftest.c, whose `char f();` probes clash with real prototypes.
 *
 * wasi-libc (wasm32-wasip2, Debian's 0.0~git20260423) hides what WASI cannot do (processes,
 * users, permissions, dup). PHP's sources call those functions unconditionally in places, so
 * they are declared here and defined in stubs.c and stubs_names.c, mostly failing with ENOSYS.
 * Sockets and name lookups are the libc's own (wasi:sockets). Nothing here changes behaviour
 * that works on WASI.
 */
#ifndef LAMP_WASI_COMPAT_H
#define LAMP_WASI_COMPAT_H

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct _IO_FILE;

/* unistd.h: descriptors, users, processes */
int dup(int fd);
int dup2(int fd, int to);
int chown(const char *path, uid_t uid, gid_t gid);
int fchown(int fd, uid_t uid, gid_t gid);
int lchown(const char *path, uid_t uid, gid_t gid);
uid_t getuid(void);
uid_t geteuid(void);
gid_t getgid(void);
gid_t getegid(void);
int getgroups(int size, gid_t list[]);
int getdtablesize(void);
pid_t getppid(void);

/* sys/stat.h: WASI has no permission bits (chmod and fchmod are the libc's, which fail with
 * ENOSYS; build.sh links them to stubs.c's with -Wl,--wrap) */
int lchmod(const char *path, mode_t mode);
mode_t umask(mode_t mask);

/* stdio.h: no processes */
struct _IO_FILE *popen(const char *command, const char *mode);
int pclose(struct _IO_FILE *stream);

/* sys/mman.h: the emulation's madvise is missing (mprotect is wrapped like chmod) */
int madvise(void *addr, size_t len, int advice);

/* sys/socket.h declares socketpair only for upstream musl: WASI has no socket pairs */
int socketpair(int domain, int type, int protocol, int fds[2]);

/* stdlib.h */
char *mktemp(char *template_);
/* declared by stdlib.h only for some feature macros; defined in stubs.c */
int mkstemp(char *template_);

/* sys/file.h declares flock but wasi-libc does not define it; WASI has one process per file. */
int flock(int fd, int operation);

/* socket constants wasi-libc leaves out that PHP's network code names (xp_socket.c): musl's
 * values, which no other MSG_ flag of wasi-libc uses; recv/send with MSG_OOB then fail with
 * EOPNOTSUPP, as the libc answers any flag it does not know */
#ifndef MSG_OOB
# define MSG_OOB 0x0001
#endif
#ifndef PF_UNIX
# define PF_UNIX AF_UNIX
#endif

#ifdef __cplusplus
}
#endif

#endif
