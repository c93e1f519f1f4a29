/*
 * What the two entry points of the PHP handler component share: lamp_php.c (the JSON
 * handler, `handle`, and PHP's start) and lamp_web.c (web mode, `serve`).
 */
#ifndef LAMP_PHP_H
#define LAMP_PHP_H

#include "php.h"
#include "web_handler.h"

/* PHP started and the instance's one request begun (from the snapshot or now); false with
 * `err` set when PHP cannot start. */
bool lamp_ready(web_handler_error_t *err);
/* memory_limit from the function's memory (see lamp_php.c). */
void lamp_set_memory_limit(uint32_t memory_mb);
/* The end of the instance's request: shutdown functions, destructors, output, RSHUTDOWN. */
void lamp_request_finish(void);

/* WIT values out, malloc'd as the canonical ABI expects. */
void lamp_set_string(web_handler_string_t *out, const char *s, size_t len);
void lamp_set_error(web_handler_error_t *err, const char *type, const char *message,
                    size_t message_len);

/* lamp-init's snapshot: PHP started and the request (with the prelude) ready; for lamp-preload. */
bool lamp_snapshot_ready(void);
/* lamp_preload_status(), lamp_preload.c. */
PHP_FUNCTION(lamp_preload_status);
/* The host vouches that no preloaded file changed (the web request's code-unchanged): this
 * request's includes skip the check LAMP_PRELOAD_VALIDATE=1 asks for. lamp_preload.c. */
void lamp_preload_trust(bool unchanged);

/* Functions of the SAPI (getallheaders, apache_request_headers), registered at start-up. */
extern const zend_function_entry lamp_web_functions[];

#endif
