/* No group database on WASI: lookups find nothing (../stubs_names.c). */
#ifndef LAMP_GRP_H
#define LAMP_GRP_H

#include <stddef.h>
#include <sys/types.h>

struct group {
	char *gr_name;
	char *gr_passwd;
	gid_t gr_gid;
	char **gr_mem;
};

struct group *getgrnam(const char *name);
struct group *getgrgid(gid_t gid);
int getgrnam_r(const char *name, struct group *gr, char *buf, size_t len, struct group **res);
int getgrgid_r(gid_t gid, struct group *gr, char *buf, size_t len, struct group **res);

#endif
