/*
 * setjmp/longjmp for wasm32 with clang's exnref lowering (see ../sjlj.c). The compiler
 * recognises the calls by name and rewrites them; only the jmp_buf layout is ours.
 * No sigsetjmp: there are no signal masks to save on WASI, so PHP uses plain setjmp.
 */
#ifndef LAMP_SETJMP_H
#define LAMP_SETJMP_H

typedef struct {
	void *lamp_private[4];
} jmp_buf[1];

int setjmp(jmp_buf env) __attribute__((returns_twice));
_Noreturn void longjmp(jmp_buf env, int value);
#define _setjmp setjmp
#define _longjmp longjmp

#endif
