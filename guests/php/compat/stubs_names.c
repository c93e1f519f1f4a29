/*
 * The other half of include/{pwd,grp,ucontext}.h: name services and context switching that
 * WASI lacks. Every user or group lookup fails the way "not found" does on a real system.
 * And what wasi-libc's netdb.c leaves as TODOs, which PHP's getprotobyname(),
 * getprotobynumber(), gethostbyname() and gethostbynamel() use: protocols from a built-in
 * table, host names through getaddrinfo (wasi:sockets, under the host's network policy).
 * The libc defines getprotobyname and gethostbyname in the object that also holds
 * getaddrinfo, so ours are __wrap_* (build.sh links with -Wl,--wrap=getprotobyname,gethostbyname).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <ucontext.h>

/* Debian's /etc/protocols (netbase): name, number, alias. */
static const struct { const char *name; int number; const char *alias; } protocols[] = {
	{"ip", 0, "IP"}, {"hopopt", 0, "HOPOPT"}, {"icmp", 1, "ICMP"}, {"igmp", 2, "IGMP"},
	{"ggp", 3, "GGP"}, {"ipencap", 4, "IP-ENCAP"}, {"st", 5, "ST"}, {"tcp", 6, "TCP"},
	{"egp", 8, "EGP"}, {"igp", 9, "IGP"}, {"pup", 12, "PUP"}, {"udp", 17, "UDP"},
	{"hmp", 20, "HMP"}, {"xns-idp", 22, "XNS-IDP"}, {"rdp", 27, "RDP"},
	{"iso-tp4", 29, "ISO-TP4"}, {"dccp", 33, "DCCP"}, {"xtp", 36, "XTP"}, {"ddp", 37, "DDP"},
	{"idpr-cmtp", 38, "IDPR-CMTP"}, {"ipv6", 41, "IPv6"}, {"ipv6-route", 43, "IPv6-Route"},
	{"ipv6-frag", 44, "IPv6-Frag"}, {"idrp", 45, "IDRP"}, {"rsvp", 46, "RSVP"},
	{"gre", 47, "GRE"}, {"esp", 50, "IPSEC-ESP"}, {"ah", 51, "IPSEC-AH"}, {"skip", 57, "SKIP"},
	{"ipv6-icmp", 58, "IPv6-ICMP"}, {"ipv6-nonxt", 59, "IPv6-NoNxt"},
	{"ipv6-opts", 60, "IPv6-Opts"}, {"rspf", 73, "RSPF"}, {"vmtp", 81, "VMTP"},
	{"eigrp", 88, "EIGRP"}, {"ospf", 89, "OSPFIGP"}, {"ax.25", 93, "AX.25"},
	{"ipip", 94, "IPIP"}, {"etherip", 97, "ETHERIP"}, {"encap", 98, "ENCAP"},
	{"pim", 103, "PIM"}, {"ipcomp", 108, "IPCOMP"}, {"vrrp", 112, "VRRP"},
	{"l2tp", 115, "L2TP"}, {"isis", 124, "ISIS"}, {"sctp", 132, "SCTP"}, {"fc", 133, "FC"},
	{"mobility-header", 135, "Mobility-Header"}, {"udplite", 136, "UDPLite"},
	{"mpls-in-ip", 137, "MPLS-in-IP"}, {"hip", 139, "HIP"}, {"shim6", 140, "Shim6"},
	{"wesp", 141, "WESP"}, {"rohc", 142, "ROHC"}, {"ethernet", 143, "Ethernet"},
	{"mptcp", 262, "MPTCP"},
};

static struct protoent *protocol_entry(size_t i)
{
	static struct protoent entry;
	static char *aliases[2];
	aliases[0] = (char *)protocols[i].alias;
	aliases[1] = NULL;
	entry.p_name = (char *)protocols[i].name;
	entry.p_aliases = aliases;
	entry.p_proto = protocols[i].number;
	return &entry;
}

/* As glibc matches /etc/protocols: the name or an alias, exactly. */
struct protoent *__wrap_getprotobyname(const char *name)
{
	for (size_t i = 0; name && i < sizeof protocols / sizeof protocols[0]; i++) {
		if (strcmp(name, protocols[i].name) == 0 || strcmp(name, protocols[i].alias) == 0) {
			return protocol_entry(i);
		}
	}
	return NULL;
}

struct protoent *getprotobynumber(int number)
{
	for (size_t i = 0; i < sizeof protocols / sizeof protocols[0]; i++) {
		if (protocols[i].number == number) {
			return protocol_entry(i);
		}
	}
	return NULL;
}

/* IPv4 addresses of `name` (at most 16, without repeats), in getaddrinfo's order. */
struct hostent *__wrap_gethostbyname(const char *name)
{
	static struct hostent host;
	static char host_name[256];
	static char *no_aliases[1];
	static struct in_addr addresses[16];
	static char *address_list[17];
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
	struct addrinfo *found, *ai;
	size_t n = 0;

	if (!name || getaddrinfo(name, NULL, &hints, &found) != 0) {
		h_errno = HOST_NOT_FOUND;
		return NULL;
	}
	for (ai = found; ai && n < 16; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET) {
			continue;
		}
		struct in_addr a = ((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
		size_t k = 0;
		while (k < n && addresses[k].s_addr != a.s_addr) {
			k++;
		}
		if (k == n) {
			addresses[n] = a;
			address_list[n] = (char *)&addresses[n];
			n++;
		}
	}
	freeaddrinfo(found);
	if (n == 0) {
		h_errno = NO_ADDRESS;
		return NULL;
	}
	address_list[n] = NULL;
	snprintf(host_name, sizeof host_name, "%s", name);
	no_aliases[0] = NULL;
	host.h_name = host_name;
	host.h_aliases = no_aliases;
	host.h_addrtype = AF_INET;
	host.h_length = sizeof(struct in_addr);
	host.h_addr_list = address_list;
	return &host;
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
