/*
 * select() with an exceptfds set. wasi-libc's fails with ENOSYS as soon as exceptfds holds a
 * descriptor (wasi:io can wait for readable and writable, nothing else), which broke
 * mysqli_poll(): mysqlnd passes every connection in it to learn of errors. Exceptional
 * conditions are out-of-band data, which sockets over wasi:sockets do not have, so none is
 * ever pending: wait for the other two sets and report exceptfds empty. build.sh links with
 * -Wl,--wrap=select, which sends every call here.
 */
#include <stddef.h>
#include <sys/select.h>

int __real_select(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds,
                  struct timeval *timeout);

int __wrap_select(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds,
                  struct timeval *timeout)
{
    int ready = __real_select(nfds, readfds, writefds, NULL, timeout);
    if (ready >= 0 && exceptfds != NULL) {
        FD_ZERO(exceptfds);
    }
    return ready;
}
