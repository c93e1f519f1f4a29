/*
 * The runtime half of clang's wasm setjmp/longjmp lowering (-mllvm -wasm-enable-sjlj with
 * exnref, -mllvm -wasm-use-legacy-eh=false). Debian's 2022 wasi-libc has no libsetjmp.
 *
 * How the lowering uses it: a function that calls setjmp gets an invocation id (the address
 * of a stack slot) and numbers its setjmp call sites from 1. setjmp(env) becomes
 * __wasm_setjmp(env, site, id); longjmp(env, v) becomes __wasm_longjmp(env, v), which
 * throws the __c_longjmp tag carrying a pointer to {env, v}. Every function that called
 * setjmp catches that tag, asks __wasm_setjmp_test(env, id) whether env was filled by this
 * very invocation, and either resumes at that call site with v or rethrows.
 *
 * The layout below is ours except for `thrown`, whose {pointer, int} shape the generated
 * catch code reads. It must fit the 16-byte jmp_buf of include/setjmp.h.
 */
#include <setjmp.h>
#include <stdint.h>

struct lamp_jmp {
	void *owner;          /* invocation id of the frame that called setjmp */
	uint32_t site;        /* which setjmp call inside that frame, never 0 */
	struct {
		void *env;
		int value;
	} thrown;             /* the exception payload, kept in the buffer so it outlives the throw */
};

_Static_assert(sizeof(struct lamp_jmp) <= sizeof(jmp_buf), "jmp_buf too small");

void __wasm_setjmp(void *env, uint32_t site, void *owner)
{
	struct lamp_jmp *jb = env;
	jb->owner = owner;
	jb->site = site;
}

uint32_t __wasm_setjmp_test(void *env, void *owner)
{
	struct lamp_jmp *jb = env;
	return jb->owner == owner ? jb->site : 0;
}

_Noreturn void __wasm_longjmp(void *env, int value)
{
	struct lamp_jmp *jb = env;
	jb->thrown.env = env;
	/* C says longjmp(env, 0) makes setjmp return 1. */
	jb->thrown.value = value != 0 ? value : 1;
	/* Tag 1 is clang's C longjmp tag, the symbol __c_longjmp of sjlj_tag.S. */
	__builtin_wasm_throw(1, &jb->thrown);
}
