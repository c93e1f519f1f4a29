/*
 * The deployment's compiled code in the snapshot (host/src/php/snapshot.rs builds it).
 *
 * `lamp-preload`, a second init export, is run by the host with wizer on php.wasm (already
 * past lamp-init: PHP started, the instance's request begun), with the function's code mapped
 * where its instances see it. It compiles every file named in LAMP_PRELOAD (one guest path per
 * line) and keeps what it compiled; the snapshot of that instance then holds the compiled
 * files, and every instance made from it starts with them, as PHP-FPM's workers start with
 * opcache's.
 *
 * It also wraps zend_compile_file: a file the preload compiled is served from the snapshot
 * when it is unchanged, and compiled as usual otherwise. "Unchanged" is the host's call, made
 * at preload (LAMP_PRELOAD_VALIDATE): 1 (`host serve`, `host run`: code being edited) checks each
 * file's size and mtime against the preload's on every include, as opcache's
 * validate_timestamps does, unless the request says the host vouches for the code
 * (lamp_preload_trust: `host serve` watches it, host/src/php/watch.rs); 0 (the bootstrap,
 * `host compile`: the host checked the code's hash against the snapshot's at start-up, and the
 * task root is read-only) checks nothing.
 *
 * A preloaded file declares nothing before it runs, so a request sees the same declarations in
 * the same order as without the snapshot. What the compiler declares while compiling a file
 * (its top-level functions, and the top-level classes it binds early: those without interfaces
 * or traits whose parent, if any, is already known) is taken out of the function and class
 * tables after the file's compile, kept with it, and declared when the file is included,
 * before its code runs, as a compile would (with PHP's own errors if a name is taken: a second
 * include of the file, or a clash). Other classes are declared by the file's DECLARE_CLASS
 * opcodes when it runs, as always. No other file's declarations are used by a compile
 * (ZEND_COMPILE_IGNORE_OTHER_FILES), and no user constant is folded into the code
 * (ZEND_COMPILE_NO_CONSTANT_SUBSTITUTION). The just-in-time superglobals ($_SERVER, $_ENV,
 * $_REQUEST), which PHP fills when a compile first meets their names, are filled when a file
 * that names them is included, as opcache does.
 *
 * A preloaded file is also found without the file system: PHP's path resolution (realpath, an
 * lstat per component the realpath cache misses, and every `DIR/..` of `__DIR__ . '/../x.php'`
 * is a miss in a fresh instance) and the open of include_once/require_once are skipped for a
 * path that names a preloaded file once `.`, `..` and doubled slashes are taken out, as opcache
 * does with revalidate_path=0. Taking out `DIR/..` is only what the kernel would do when DIR is
 * no symlink, so it is done only for directories on a preloaded file's real path (which has no
 * symlinks); anything else is resolved by PHP as usual.
 *
 * While the host vouches for the code (LAMP_PRELOAD_VALIDATE=0, or this request's
 * lamp_preload_trust), the file system is not asked about what the preload already saw either:
 * stat(), lstat() and access(F_OK/R_OK) of a preloaded file or of a directory on one's real path
 * (`is_file()` and `file_exists()` in an autoloader, `filemtime()`, `is_dir(__DIR__)`) give what
 * they gave at preload, and the SAPI's chdir() to the script's directory skips its check that
 * the directory is one (build.sh links php.wasm with --wrap for these; __wrap_* below). Each of
 * those is 3-6 host system calls otherwise. As with opcache's validate_timestamps=0, a file the
 * request itself rewrites still stats as it was until the next request (which `host serve`'s
 * watch then does not vouch for; on Lambda the code is read-only).
 *
 * Each instance serves one request from its own copy of the snapshot, so a compiled file can
 * only be shared between the includes of one request: an include gets a copy of the file's
 * op_array with its own run-time cache and a reference on the shared opcodes, which the end of
 * the include gives back (destroy_op_array frees nothing while references remain).
 *
 * The compiled code is the request's memory (it counts in memory_get_usage and memory_limit),
 * like everything else in the snapshot's request: a deployment whose compiled code is larger
 * than the function's memory_limit leaves PHP without a limit (PHP refuses one below what is
 * in use); the host's cap on the instance's memory still holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <limits.h>

#include "php.h"
#include "zend_compile.h"
#include "zend_exceptions.h"
#include "zend_stream.h"

#include <wasi/libc.h>
#include <wasi/libc-environ.h>

#include "lamp_php.h"

/* One preloaded file. */
typedef struct {
	/* Its real path: the key it is found under. */
	zend_string *path;
	zend_op_array *op_array;
	/* What compiling it declared (lowercased name → zend_function, zend_class_entry), declared
	 * when it is included. */
	HashTable functions;
	HashTable classes;
	/* stat() of its path at preload: checked against the file's (validate), or given as the
	 * file's while the host vouches for the code. */
	struct stat st;
	/* The just-in-time superglobals ($_SERVER, $_ENV, $_REQUEST) its code names: PHP fills one
	 * when a compile first meets its name, so an include that skips the compile must ask. */
	zend_string *jit_globals[4];
	int jit_global_count;
} lamp_script;

/* Guest path (as realpath gives it) → lamp_script. NULL without a preload. */
static HashTable *scripts;
/* The directories on the preloaded files' real paths (none is a symlink), as keys; each one's
 * stat() at preload, or NULL where that failed. */
static HashTable *real_dirs;
static zend_op_array *(*plain_compile_file)(zend_file_handle *file_handle, int type);
static zend_string *(*plain_resolve_path)(zend_string *filename);
static zend_result (*plain_stream_open)(zend_file_handle *handle);
/* Set while a changed file is compiled as usual: its open must really happen. */
static bool opening_for_real;
static bool validate = true;
/* This request's: the host vouches that nothing changed (lamp_preload_trust). */
static bool trusted;
/* The preload succeeded and its hooks are in place. */
static bool serving;
static struct {
	zend_long hits, stale, misses;
} counts;

static bool unchanged(const lamp_script *s, const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && st.st_size == s->st.st_size
	       && st.st_mtim.tv_sec == s->st.st_mtim.tv_sec && st.st_mtim.tv_nsec == s->st.st_mtim.tv_nsec;
}

/* An absolute path with `.`, `..` and doubled slashes taken out (`DIR/..` only for a DIR in
 * real_dirs) into `path` (PATH_MAX bytes), its length in `*out`; false when that cannot be
 * said without the file system (PHP resolves it then). */
static bool normalize(const char *name, size_t len, char *path, size_t *out)
{
	size_t n = 0;
	if (scripts == NULL || len == 0 || len >= PATH_MAX || name[0] != '/' || name[len - 1] == '/') {
		return false;
	}
	/* The result is never longer than the name, so it fits. */
	for (size_t i = 0; i < len;) {
		while (i < len && name[i] == '/') {
			i++;
		}
		size_t start = i;
		while (i < len && name[i] != '/') {
			i++;
		}
		size_t part = i - start;
		if (part == 0 || (part == 1 && name[start] == '.')) {
			continue;
		}
		if (part == 2 && name[start] == '.' && name[start + 1] == '.') {
			if (n == 0) {
				continue; /* "/.." is "/" */
			}
			if (!zend_hash_str_exists(real_dirs, path, n)) {
				return false;
			}
			while (path[n - 1] != '/') {
				n--;
			}
			n--;
			continue;
		}
		path[n++] = '/';
		memcpy(path + n, name + start, part);
		n += part;
	}
	*out = n;
	return true;
}

/* The preloaded file an absolute path names (see normalize), or NULL. */
static lamp_script *preloaded(const char *name, size_t len)
{
	char path[PATH_MAX];
	size_t n;
	return normalize(name, len, path, &n) ? zend_hash_str_find_ptr(scripts, path, n) : NULL;
}

/* What stat() gave at preload for a preloaded file or a directory on one's real path, while
 * the host vouches for the code; NULL when the file system must be asked. */
static const struct stat *vouched_stat(const char *name)
{
	char path[PATH_MAX];
	size_t n;
	if (!serving || (validate && !trusted) || name == NULL
	    || !normalize(name, strlen(name), path, &n)) {
		return NULL;
	}
	lamp_script *s = zend_hash_str_find_ptr(scripts, path, n);
	return s ? &s->st : zend_hash_str_find_ptr(real_dirs, path, n);
}

/* The wrapped libc functions (build.sh: -Wl,--wrap=...). A real path has no symlinks, so
 * lstat() of one is its stat(). */
int __real_stat(const char *restrict path, struct stat *restrict st);
int __real_lstat(const char *restrict path, struct stat *restrict st);
int __real_access(const char *path, int mode);
int __real_chdir(const char *path);
int __real_fstatat(int fd, const char *restrict path, struct stat *restrict st, int flag);

/* Copies what the preload saw of `path` into `st` (see vouched_stat); false when the system
 * must be asked. */
static bool vouched_copy(const char *path, struct stat *st)
{
	const struct stat *known = vouched_stat(path);
	if (known) {
		*st = *known;
	}
	return known != NULL;
}

int __wrap_stat(const char *restrict path, struct stat *restrict st)
{
	return vouched_copy(path, st) ? 0 : __real_stat(path, st);
}

int __wrap_lstat(const char *restrict path, struct stat *restrict st)
{
	return vouched_copy(path, st) ? 0 : __real_lstat(path, st);
}

/* Exists and is readable (the preload read it, or went through it); writing and running are
 * the system's to say. */
int __wrap_access(const char *path, int mode)
{
	if ((mode & ~R_OK) == 0 && vouched_stat(path)) {
		return 0;
	}
	return __real_access(path, mode);
}

/* wasi-libc's chdir() checks with one fstatat() that the path is a directory; for a directory
 * the preload saw, that one call is answered from what it saw. */
static const struct stat *chdir_to;

int __wrap_chdir(const char *path)
{
	const struct stat *known = vouched_stat(path);
	chdir_to = known && S_ISDIR(known->st_mode) ? known : NULL;
	int r = __real_chdir(path);
	chdir_to = NULL;
	return r;
}

int __wrap_fstatat(int fd, const char *restrict path, struct stat *restrict st, int flag)
{
	if (chdir_to) {
		*st = *chdir_to;
		chdir_to = NULL;
		return 0;
	}
	return __real_fstatat(fd, path, st, flag);
}

static zend_string *lamp_resolve_path(zend_string *filename)
{
	lamp_script *s = preloaded(ZSTR_VAL(filename), ZSTR_LEN(filename));
	return s ? zend_string_copy(s->path) : plain_resolve_path(filename);
}

/* include_once and require_once open the file before they compile it; a preloaded one is not
 * opened (the compile below opens it if it changed), as opcache does. Other opens (the
 * highlighter's, a compile's of a changed file) really open. */
static zend_result lamp_stream_open(zend_file_handle *handle)
{
	const zend_execute_data *ex = EG(current_execute_data);
	if (!opening_for_real && ex && ex->func && ZEND_USER_CODE(ex->func->common.type)
	    && ex->opline->opcode == ZEND_INCLUDE_OR_EVAL
	    && (ex->opline->extended_value == ZEND_INCLUDE_ONCE || ex->opline->extended_value == ZEND_REQUIRE_ONCE)) {
		lamp_script *s = preloaded(ZSTR_VAL(handle->filename), ZSTR_LEN(handle->filename));
		if (s) {
			if (handle->opened_path == NULL) {
				handle->opened_path = zend_string_copy(s->path);
			}
			return SUCCESS;
		}
	}
	return plain_stream_open(handle);
}

/* Notes the directories of a real path (each one's parents are noted with it), with their
 * stat(). */
static void note_real_dirs(const zend_string *path)
{
	char dir[PATH_MAX];
	for (size_t i = ZSTR_LEN(path) - 1; i > 0; i--) {
		if (ZSTR_VAL(path)[i] != '/') {
			continue;
		}
		if (zend_hash_str_exists(real_dirs, ZSTR_VAL(path), i)) {
			break;
		}
		memcpy(dir, ZSTR_VAL(path), i);
		dir[i] = '\0';
		struct stat st, *kept = NULL;
		if (stat(dir, &st) == 0) {
			kept = emalloc(sizeof *kept);
			*kept = st;
		}
		zend_hash_str_add_ptr(real_dirs, ZSTR_VAL(path), i, kept);
	}
}

/* Declares what compiling the file would have: its top-level functions and early-bound
 * classes, with the compiler's errors when a name is taken. */
static void declare(lamp_script *s)
{
	zend_string *lcname;
	zend_function *func;
	zend_class_entry *ce;
	ZEND_HASH_MAP_FOREACH_STR_KEY_PTR(&s->functions, lcname, func) {
		if (zend_hash_add_ptr(EG(function_table), lcname, func) == NULL) {
			zend_function *old = zend_hash_find_ptr(EG(function_table), lcname);
			if (old->type == ZEND_USER_FUNCTION) {
				zend_error_noreturn(E_COMPILE_ERROR,
				                    "Cannot redeclare %s() (previously declared in %s:%d)",
				                    ZSTR_VAL(func->common.function_name),
				                    ZSTR_VAL(old->op_array.filename), old->op_array.line_start);
			}
			zend_error_noreturn(E_COMPILE_ERROR, "Cannot redeclare %s()",
			                    ZSTR_VAL(func->common.function_name));
		}
		if (func->op_array.refcount) {
			++*func->op_array.refcount;
		}
	} ZEND_HASH_FOREACH_END();
	ZEND_HASH_MAP_FOREACH_STR_KEY_PTR(&s->classes, lcname, ce) {
		if (zend_hash_add_ptr(EG(class_table), lcname, ce) == NULL) {
			zend_error_noreturn(E_COMPILE_ERROR, "Cannot declare %s %s, because the name is already in use",
			                    zend_get_object_type(ce), ZSTR_VAL(ce->name));
		}
	} ZEND_HASH_FOREACH_END();
}

static zend_op_array *lamp_compile_file(zend_file_handle *file_handle, int type)
{
	zend_string *path = file_handle->opened_path ? zend_string_copy(file_handle->opened_path)
	                                             : zend_resolve_path(file_handle->filename);
	lamp_script *s = path ? zend_hash_find_ptr(scripts, path) : NULL;
	if (s == NULL) {
		counts.misses++;
	} else if (validate && !trusted && !unchanged(s, ZSTR_VAL(path))) {
		counts.stale++;
		s = NULL;
	}
	if (s == NULL) {
		if (path) {
			zend_string_release(path);
		}
		opening_for_real = true;
		zend_op_array *op_array = plain_compile_file(file_handle, type);
		opening_for_real = false;
		return op_array;
	}
	counts.hits++;
	for (int i = 0; i < s->jit_global_count; i++) {
		zend_is_auto_global(s->jit_globals[i]);
	}
	declare(s);
	/* include and require (not _once) add the file when they opened it; this did not. */
	zend_hash_add_empty_element(&EG(included_files), path);
	zend_string_release(path);
	zend_op_array *op_array = emalloc(sizeof *op_array);
	memcpy(op_array, s->op_array, sizeof *op_array);
	ZEND_MAP_PTR_INIT(op_array->run_time_cache, NULL);
	++*op_array->refcount;
	return op_array;
}

/* A table's size before a compile: compacted first, so that growing during the compile cannot
 * move what was there (zend_hash_rehash squeezes out holes) and everything from this index on
 * is what the compile added. */
static uint32_t mark(HashTable *table)
{
	if (table->nNumUsed != table->nNumOfElements) {
		zend_hash_rehash(table);
	}
	return table->nNumUsed;
}

/* Moves what a compile added to `table` (from `first` on) into `aside`, so nothing is declared
 * before the file runs; keys that start with NUL (run-time definition keys of classes that
 * DECLARE_CLASS binds) stay where DECLARE_CLASS looks for them. */
static void set_aside(HashTable *table, uint32_t first, HashTable *aside)
{
	dtor_func_t dtor = table->pDestructor;
	table->pDestructor = NULL;
	for (uint32_t i = first; i < table->nNumUsed; i++) {
		Bucket *b = table->arData + i;
		if (Z_TYPE(b->val) == IS_UNDEF || (b->key && ZSTR_LEN(b->key) && ZSTR_VAL(b->key)[0] == '\0')) {
			continue;
		}
		zend_hash_add_new_ptr(aside, b->key, Z_PTR(b->val));
		zend_hash_del_bucket(table, b);
	}
	table->pDestructor = dtor;
}

/* The file being preloaded, for record_jit_global. */
static lamp_script *compiling;

/* Stands in for a just-in-time superglobal's callback while a file is preloaded: notes that the
 * file names it, fills nothing, and stays armed. */
static bool record_jit_global(zend_string *name)
{
	lamp_script *s = compiling;
	for (int i = 0; i < s->jit_global_count; i++) {
		if (zend_string_equals(s->jit_globals[i], name)) {
			return true;
		}
	}
	if (s->jit_global_count < (int)(sizeof s->jit_globals / sizeof s->jit_globals[0])) {
		s->jit_globals[s->jit_global_count++] = zend_string_copy(name);
	}
	return true;
}

/* Swaps the just-in-time superglobals' callbacks for record_jit_global (on) and back (off). */
static void recording_jit_globals(bool on)
{
	static zend_auto_global_callback saved[8];
	static bool saved_armed[8];
	zend_auto_global *g;
	int i = 0;
	ZEND_HASH_MAP_FOREACH_PTR(CG(auto_globals), g) {
		if (!g->jit || i == 8) {
			continue;
		}
		if (on) {
			saved[i] = g->auto_global_callback;
			saved_armed[i] = g->armed;
			g->auto_global_callback = record_jit_global;
			g->armed = true;
		} else {
			g->auto_global_callback = saved[i];
			g->armed = saved_armed[i];
		}
		i++;
	} ZEND_HASH_FOREACH_END();
}

enum preload_result { PRELOADED, SKIPPED, FAILED };

/* Compiles one file for the snapshot. A file that cannot be read or parsed is skipped (and
 * compiled, with its error, by the request that includes it); a fatal compile error
 * (E_COMPILE_ERROR: PHP bails out of the compiler) ends the preload. */
static enum preload_result preload_file(const char *name)
{
	zend_string *given = zend_string_init(name, strlen(name), 0);
	zend_string *path = zend_resolve_path(given);
	zend_string_release(given);
	struct stat st;
	if (path == NULL || stat(ZSTR_VAL(path), &st) != 0) {
		fprintf(stderr, "lamp-preload: skipped %s: not found\n", name);
		if (path) {
			zend_string_release(path);
		}
		return SKIPPED;
	}
	if (zend_hash_exists(scripts, path)) {
		zend_string_release(path);
		return SKIPPED;
	}
	lamp_script *s = emalloc(sizeof *s);
	zend_hash_init(&s->functions, 0, NULL, NULL, 0);
	zend_hash_init(&s->classes, 0, NULL, NULL, 0);
	s->path = path;
	s->st = st;
	s->op_array = NULL;
	s->jit_global_count = 0;

	uint32_t first_function = mark(EG(function_table));
	uint32_t first_class = mark(EG(class_table));
	uint32_t options = CG(compiler_options);
	volatile bool bailed = false;
	CG(compiler_options) |= ZEND_COMPILE_IGNORE_OTHER_FILES | ZEND_COMPILE_NO_CONSTANT_SUBSTITUTION;
	zend_file_handle file_handle;
	zend_stream_init_filename_ex(&file_handle, path);
	compiling = s;
	recording_jit_globals(true);
	zend_try {
		s->op_array = plain_compile_file(&file_handle, ZEND_INCLUDE);
	} zend_catch {
		bailed = true;
	} zend_end_try();
	recording_jit_globals(false);
	zend_destroy_file_handle(&file_handle);
	CG(compiler_options) = options;

	if (bailed) {
		fprintf(stderr, "lamp-preload: failed %s: a fatal compile error (see the log above)\n",
		        ZSTR_VAL(path));
		zend_string_release(path);
		return FAILED;
	}
	set_aside(EG(function_table), first_function, &s->functions);
	set_aside(EG(class_table), first_class, &s->classes);
	if (s->op_array == NULL) {
		const char *why = "it does not compile";
		zend_string *message = NULL;
		if (EG(exception)) {
			zval rv;
			zval *msg = zend_read_property_ex(EG(exception)->ce, EG(exception),
			                                  ZSTR_KNOWN(ZEND_STR_MESSAGE), true, &rv);
			if (Z_TYPE_P(msg) == IS_STRING) {
				message = zend_string_copy(Z_STR_P(msg));
				why = ZSTR_VAL(message);
			}
			zend_clear_exception();
		}
		fprintf(stderr, "lamp-preload: skipped %s: %s\n", ZSTR_VAL(path), why);
		if (message) {
			zend_string_release(message);
		}
		zend_string_release(path);
		return SKIPPED;
	}
	zend_hash_add_new_ptr(scripts, path, s);
	note_real_dirs(path);
	return PRELOADED;
}

/* The second pre-initialisation entry point (a component export, `lamp-preload: func()`),
 * run by the host's wizer on the lamp-init snapshot; see the top of this file. Its report,
 * on stderr, ends with one line the host reads: `lamp-preload: done N` (files compiled) or
 * `lamp-preload: failed`. Like lamp-init, it stays exported and does nothing a second time. */
__attribute__((export_name("lamp-preload")))
void lamp_preload(void)
{
	static bool preloaded;
	if (preloaded) {
		return;
	}
	preloaded = true;
	/* The environment is the host's for this run (wizer's), not build time's. */
	__wasilibc_deinitialize_environ();
	__wasilibc_initialize_environ();
	if (!lamp_snapshot_ready()) {
		fprintf(stderr, "lamp-preload: PHP did not start (see the log above)\nlamp-preload: failed\n");
		return;
	}
	const char *v = getenv("LAMP_PRELOAD_VALIDATE");
	validate = !(v && strcmp(v, "0") == 0);
	const char *list = getenv("LAMP_PRELOAD");
	char *files = strdup(list ? list : "");

	/* The compile's memory is the request's: no limit while preloading, the snapshot's own
	 * after (an invocation then sets the function's, lamp_set_memory_limit; the compiled code
	 * counts in it). */
	zend_string *name = zend_string_init("memory_limit", sizeof "memory_limit" - 1, 0);
	char *limit = estrdup(INI_STR("memory_limit"));
	zend_alter_ini_entry_chars(name, "-1", 2, PHP_INI_USER, PHP_INI_STAGE_RUNTIME);

	scripts = emalloc(sizeof *scripts);
	zend_hash_init(scripts, 64, NULL, NULL, 0);
	real_dirs = emalloc(sizeof *real_dirs);
	zend_hash_init(real_dirs, 16, NULL, NULL, 0);
	plain_compile_file = zend_compile_file;
	size_t before = zend_memory_usage(false);
	zend_long compiled = 0, skipped = 0;
	bool failed = false;
	for (char *line = strtok(files, "\n"); line && !failed; line = strtok(NULL, "\n")) {
		switch (preload_file(line)) {
		case PRELOADED: compiled++; break;
		case SKIPPED: skipped++; break;
		case FAILED: failed = true; break;
		}
	}
	free(files);
	zend_alter_ini_entry_chars(name, limit, strlen(limit), PHP_INI_USER, PHP_INI_STAGE_RUNTIME);
	efree(limit);
	zend_string_release(name);
	if (failed) {
		fprintf(stderr, "lamp-preload: failed\n");
	} else {
		zend_compile_file = lamp_compile_file;
		plain_resolve_path = zend_resolve_path;
		zend_resolve_path = lamp_resolve_path;
		plain_stream_open = zend_stream_open_function;
		zend_stream_open_function = lamp_stream_open;
		serving = true;
		fprintf(stderr, "lamp-preload: %ld compiled, %ld skipped, %zu bytes\nlamp-preload: done %ld\n",
		        (long)compiled, (long)skipped, zend_memory_usage(false) - before, (long)compiled);
	}
	fflush(stdout);
	fflush(stderr);
	__wasilibc_deinitialize_environ();
	__wasilibc_reset_preopens();
}

void lamp_preload_trust(bool unchanged)
{
	trusted = unchanged;
}

/* lamp_preload_status(): what the snapshot holds and how this request used it: `files`
 * (compiled into the snapshot), `hits` (includes served from it), `stale` (preloaded but
 * changed since: compiled again), `misses` (not preloaded: compiled). Registered with the SAPI's
 * functions (lamp_web.c). */
PHP_FUNCTION(lamp_preload_status)
{
	ZEND_PARSE_PARAMETERS_NONE();
	array_init(return_value);
	add_assoc_long(return_value, "files", scripts ? zend_hash_num_elements(scripts) : 0);
	add_assoc_long(return_value, "hits", counts.hits);
	add_assoc_long(return_value, "stale", counts.stale);
	add_assoc_long(return_value, "misses", counts.misses);
}
