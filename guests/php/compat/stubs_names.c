/*
 * The other half of include/{pwd,grp,ucontext}.h, and getprotobynumber (netdb.h declares it,
 * wasi-libc does not define it): name services and context switching that WASI lacks. Every
 * lookup fails the way "not found" does on a real system.
 */
#include <errno.h>
#include <netdb.h>
#include <pwd.h>
#include <grp.h>
#include <stdlib.h>
#include <ucontext.h>

struct protoent *getprotobynumber(int p) { (void)p; return NULL; }

struct passwd *getpwnam(const char *n) { (void)n; return NULL; }
struct passwd *getpwuid(uid_t u) { (void)u; return NULL; }
int getpwnam_r(const char *n, struct passwd *pw, char *b, size_t l, struct passwd **r) { (void)n; (void)pw; (void)b; (void)l; *r = NULL; return 0; }
int getpwuid_r(uid_t u, struct passwd *pw, char *b, size_t l, struct passwd **r) { (void)u; (void)pw; (void)b; (void)l; *r = NULL; return 0; }
struct group *getgrnam(const char *n) { (void)n; return NULL; }
struct group *getgrgid(gid_t g) { (void)g; return NULL; }
int getgrnam_r(const char *n, struct group *gr, char *b, size_t l, struct group **r) { (void)n; (void)gr; (void)b; (void)l; *r = NULL; return 0; }
int getgrgid_r(gid_t g, struct group *gr, char *b, size_t l, struct group **r) { (void)g; (void)gr; (void)b; (void)l; *r = NULL; return 0; }

int getcontext(ucontext_t *u) { (void)u; errno = ENOSYS; return -1; }
void makecontext(ucontext_t *u, void (*f)(void), int argc, ...) { (void)u; (void)f; (void)argc; }
int swapcontext(ucontext_t *o, const ucontext_t *u) { (void)o; (void)u; abort(); }
