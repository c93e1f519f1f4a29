/*
 * Force-included (-include) into every PHP and glue translation unit, but not into autoconf's
 * conftest.c, whose `char f();` probes clash with real prototypes.
 *
 * Debian's 2022 wasi-libc hides what WASI cannot do (processes, users, permissions, dup,
 * sockets beyond the basics). PHP's sources call those functions unconditionally in places,
 * so they are declared here and defined in stubs.c, mostly failing with ENOSYS. Nothing here
 * changes behaviour that works on WASI.
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
int gethostname(char *name, size_t len);
pid_t getppid(void);

/* sys/stat.h: WASI has no permission bits */
int chmod(const char *path, mode_t mode);
int fchmod(int fd, mode_t mode);
int lchmod(const char *path, mode_t mode);
mode_t umask(mode_t mask);

/* stdio.h: no processes */
struct _IO_FILE *popen(const char *command, const char *mode);
int pclose(struct _IO_FILE *stream);

/* sys/mman.h extras the emulation lacks */
int mprotect(void *addr, size_t len, int prot);
int madvise(void *addr, size_t len, int advice);

/* sys/socket.h: WASI preview 1 can use sockets it is given, not make them */
struct sockaddr;
int socket(int domain, int type, int protocol);
int socketpair(int domain, int type, int protocol, int fds[2]);
int bind(int fd, const struct sockaddr *addr, unsigned int len);
int connect(int fd, const struct sockaddr *addr, unsigned int len);
int listen(int fd, int backlog);
int setsockopt(int fd, int level, int name, const void *value, unsigned int len);
int getsockname(int fd, struct sockaddr *__restrict addr, unsigned int *__restrict len);
int getpeername(int fd, struct sockaddr *__restrict addr, unsigned int *__restrict len);
long sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr, unsigned int alen);
long recvfrom(int fd, void *__restrict buf, size_t len, int flags, struct sockaddr *__restrict addr,
              unsigned int *__restrict alen);

/* stdlib.h */
char *mktemp(char *template_);
/* declared by stdlib.h only for some feature macros; defined in stubs.c */
int mkstemp(char *template_);

/* sys/file.h declares flock but wasi-libc does not define it; WASI has one process per file. */
int flock(int fd, int operation);

/* socket constants PHP's network code names even when it cannot use them */
#ifndef SOMAXCONN
# define SOMAXCONN 128
#endif
#ifndef MSG_OOB
# define MSG_OOB 0x0001
#endif
#ifndef POLLPRI
# define POLLPRI 0x0002
#endif
#ifndef SO_ERROR
# define SO_ERROR 4
#endif
#ifndef PF_UNIX
# define PF_UNIX 3 /* = wasi-libc's AF_UNIX */
#endif
#ifndef SOL_IP
# define SOL_IP 0
#endif

#ifdef __cplusplus
}
#endif

#endif
