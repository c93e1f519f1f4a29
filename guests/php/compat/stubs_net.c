/*
 * The other half of include/{netdb,pwd,grp,ucontext}.h: name services and context switching
 * that WASI preview 1 lacks. Every lookup fails the way "not found" does on a real system.
 */
#include <errno.h>
#include <netdb.h>
#include <pwd.h>
#include <grp.h>
#include <stdlib.h>
#include <ucontext.h>

int h_errno;

struct hostent *gethostbyname(const char *n) { (void)n; h_errno = HOST_NOT_FOUND; return NULL; }
struct hostent *gethostbyaddr(const void *a, socklen_t l, int t) { (void)a; (void)l; (void)t; h_errno = HOST_NOT_FOUND; return NULL; }
struct servent *getservbyname(const char *n, const char *p) { (void)n; (void)p; return NULL; }
struct servent *getservbyport(int port, const char *p) { (void)port; (void)p; return NULL; }
struct protoent *getprotobyname(const char *n) { (void)n; return NULL; }
struct protoent *getprotobynumber(int p) { (void)p; return NULL; }

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
	(void)node; (void)service; (void)hints;
	*res = NULL;
	return EAI_FAIL;
}

void freeaddrinfo(struct addrinfo *res) { (void)res; }
const char *gai_strerror(int code) { (void)code; return "name resolution is not available in WebAssembly (WASI)"; }
const char *hstrerror(int code) { (void)code; return "name resolution is not available in WebAssembly (WASI)"; }

int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen, char *serv, socklen_t servlen, int flags)
{
	(void)sa; (void)salen; (void)host; (void)hostlen; (void)serv; (void)servlen; (void)flags;
	return EAI_FAIL;
}

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
