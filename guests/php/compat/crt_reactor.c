/*
 * `_initialize` of the handler core module, instead of wasi-libc's crt1-reactor.o, which traps
 * when called a second time. wit-component calls `_initialize` whenever the component is
 * instantiated, and a component pre-initialised by wizer keeps that call: its snapshot has
 * already run the constructors (and `initialized` is set in it), so here it does nothing.
 */
extern void __wasi_init_tp(void);
extern void __wasm_call_ctors(void);

__attribute__((export_name("_initialize")))
void _initialize(void)
{
	static volatile int initialized = 0;
	if (initialized != 0) {
		return;
	}
	initialized = 1;
	__wasi_init_tp();
	__wasm_call_ctors();
}
