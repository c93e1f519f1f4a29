/* Enough of ucontext for Zend/zend_fibers.c to compile. Fibers cannot work on WASI (no stack
 * switching): creating one fails earlier, in mprotect() (../stubs.c), with an exception. */
#ifndef LAMP_UCONTEXT_H
#define LAMP_UCONTEXT_H

#include <stddef.h>

typedef struct {
	void *ss_sp;
	int ss_flags;
	size_t ss_size;
} stack_t;

typedef struct ucontext_t {
	struct ucontext_t *uc_link;
	stack_t uc_stack;
} ucontext_t;

int getcontext(ucontext_t *ucp);
void makecontext(ucontext_t *ucp, void (*func)(void), int argc, ...);
int swapcontext(ucontext_t *oucp, const ucontext_t *ucp);

#endif
