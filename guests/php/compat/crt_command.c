/*
 * The entry point of php-cli.wasm, instead of wasi-libc's crt1-command.o: the same steps
 * (once-only guard, thread pointer, constructors, main, destructors), but a non-zero status
 * from main leaves through _Exit (exit.c: wasi:cli/exit.exit-with-code), so PHP's 255 after a
 * fatal error reaches the host. wasi-libc's own returns `err` from wasi:cli/run, which the
 * host can only report as 1. It also starts in the host's initial-cwd (wasi:cli/environment),
 * which wasi-libc never reads (its cwd starts as "/"): `host php` gives the directory it was
 * started in, so getcwd(), open_basedir=. and relative paths mean what they do natively.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wasi/wasip2.h>

extern void __wasi_init_tp(void);
extern void __wasm_call_ctors(void);
extern void __wasm_call_dtors(void);
extern int __main_void(void);

__attribute__((export_name("wasi:cli/run@0.2.0#run")))
int _start(void)
{
	static volatile int started = 0;
	if (started != 0) {
		__builtin_trap();
	}
	started = 1;
	__wasi_init_tp();
	__wasm_call_ctors();
	wasip2_string_t cwd;
	if (environment_initial_cwd(&cwd)) {
		char *path = strndup((const char *)cwd.ptr, cwd.len);
		if (path) {
			(void)chdir(path); /* a cwd the preopens do not reach stays "/" */
			free(path);
		}
		wasip2_string_free(&cwd);
	}
	int status = __main_void();
	__wasm_call_dtors();
	if (status != 0) {
		_Exit(status);
	}
	return 0; /* ok */
}
