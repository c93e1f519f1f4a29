/* No user database on WASI: lookups find nobody (../stubs_names.c). */
#ifndef LAMP_PWD_H
#define LAMP_PWD_H

#include <stddef.h>
#include <sys/types.h>

struct passwd {
	char *pw_name;
	char *pw_passwd;
	uid_t pw_uid;
	gid_t pw_gid;
	char *pw_gecos;
	char *pw_dir;
	char *pw_shell;
};

struct passwd *getpwnam(const char *name);
struct passwd *getpwuid(uid_t uid);
int getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t len, struct passwd **res);
int getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t len, struct passwd **res);

#endif
