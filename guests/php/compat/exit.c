/*
 * Exit statuses for wasi:cli. wasi-libc (0.0~git20260423) ends a program with
 * `wasi:cli/exit.exit(result)`, which keeps only ok/err: the host sees 1 for any failure.
 * PHP exits 255 on fatal errors, and callers (run-tests.php, scripts, `host php`'s own tests)
 * tell a fatal error from exit(1) by that. wasi:cli 0.2.12 adds `exit-with-code(u8)`
 * (wasmtime-wasi 48 links it; newer wasi-libc uses it the same way), so _Exit calls that.
 *
 * The core module imports it from `wasi:cli/exit@0.2.12`; lamp-php-tool's `componentize`
 * adds that interface's WIT to the module's component type (wasi-libc's describes 0.2.0).
 */
#include <stdint.h>
#include <stdnoreturn.h>

__attribute__((import_module("wasi:cli/exit@0.2.12"), import_name("exit-with-code")))
noreturn void lamp_wasi_exit_with_code(int32_t status_code);

/* POSIX keeps the low 8 bits of the status, as exit-with-code's u8 does. */
noreturn void _Exit(int status)
{
	lamp_wasi_exit_with_code(status & 0xff);
}

noreturn void _exit(int status)
{
	lamp_wasi_exit_with_code(status & 0xff);
}
