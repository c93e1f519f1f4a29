/* Shadows wasi-libc's sockaddr_un, which has no sun_path while AF_UNIX is defined: PHP's
 * network code then does not compile. With the field it compiles; Unix sockets still fail at
 * run time (wasi-libc's socket(AF_UNIX, ...) fails: WASI sockets are TCP and UDP only). */
#ifndef __wasilibc___struct_sockaddr_un_h
#define __wasilibc___struct_sockaddr_un_h

#define __need_STDDEF_H_misc
#include <stddef.h>

#include <__typedef_sa_family_t.h>

struct sockaddr_un {
    _Alignas(max_align_t) sa_family_t sun_family;
    char sun_path[108];
};

#endif
