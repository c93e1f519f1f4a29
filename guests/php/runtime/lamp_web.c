/*
 * PHP's web mode: `serve` of interface lamp:handler/web runs one HTTP request the way PHP-FPM
 * behind nginx would, in the instance's one PHP request (started by the snapshot).
 *
 * The host has mapped the event and chosen the script (try_files); here the request becomes
 * SAPI state: SG(request_info) and the SAPI callbacks (body for POST and php://input, cookies,
 * $_SERVER's CGI variables, output and headers captured into the response). Because the
 * snapshot's request was started without a web request, sapi_activate() and
 * php_hash_environment() run again here, which is what php_request_startup() would have done
 * with this request: $_GET, $_POST, $_FILES, $_COOKIE are built from it and $_SERVER,
 * $_REQUEST when first used.
 *
 * Output is buffered like php.ini-production (output_buffering=4096), so a fatal error before
 * 4 KB of output still turns into a 500; the response is only complete at the end anyway.
 * Errors go to the log (stderr), never into the page (display_errors=0).
 */
#include <stdlib.h>
#include <string.h>
#include <ctype.h>

#include "php.h"
#include "php_main.h"
#include "php_variables.h"
#include "php_output.h"
#include "SAPI.h"
#include "rfc1867.h"
#include "zend_smart_str.h"

#include "lamp_php.h"

typedef exports_lamp_handler_web_request_t web_request_t;
typedef exports_lamp_handler_web_response_t web_response_t;

/* The request being served; NULL outside serve (the JSON handler), where getallheaders()
 * returns no headers. */
static const web_request_t *current;
static size_t body_offset;

/* The response, built by the SAPI callbacks below. */
static struct {
	uint8_t *body;
	size_t len, cap;
	bool overflowed;
	uint16_t status;
	web_handler_list_tuple2_string_string_t headers;
} out;

/* PHP's strings from WIT's (not NUL-terminated) ones; kept for the instance's life. */
static char *cstr(const web_handler_string_t *s)
{
	char *c = malloc(s->len + 1);
	memcpy(c, s->ptr, s->len);
	c[s->len] = '\0';
	return c;
}

static bool name_is(const web_handler_string_t *s, const char *name)
{
	return s->len == strlen(name) && memcmp(s->ptr, name, s->len) == 0;
}

/* The values of a header, joined as a proxy joins repeated headers (`; ` for cookies). */
static char *header_value(const char *name, const char *separator)
{
	size_t total = 0, sep = strlen(separator);
	bool found = false;
	for (size_t i = 0; i < current->headers.len; i++) {
		if (name_is(&current->headers.ptr[i].f0, name)) {
			total += current->headers.ptr[i].f1.len + (found ? sep : 0);
			found = true;
		}
	}
	if (!found) {
		return NULL;
	}
	char *value = malloc(total + 1), *p = value;
	found = false;
	for (size_t i = 0; i < current->headers.len; i++) {
		const web_handler_tuple2_string_string_t *h = &current->headers.ptr[i];
		if (name_is(&h->f0, name)) {
			if (found) {
				memcpy(p, separator, sep);
				p += sep;
			}
			memcpy(p, h->f1.ptr, h->f1.len);
			p += h->f1.len;
			found = true;
		}
	}
	*p = '\0';
	return value;
}

/* --- SAPI callbacks ------------------------------------------------------------------------ */

static size_t web_ub_write(const char *str, size_t len)
{
	if (out.len + len > out.cap) {
		size_t cap = out.cap ? out.cap : 16384;
		while (cap < out.len + len) {
			cap *= 2;
		}
		uint8_t *body = realloc(out.body, cap);
		if (body == NULL) {
			out.overflowed = true;
			return len;
		}
		out.body = body;
		out.cap = cap;
	}
	memcpy(out.body + out.len, str, len);
	out.len += len;
	return len;
}

static void web_flush(void *server_context)
{
	(void)server_context;
}

/* The headers as they stand when PHP sends them (at the first output past the buffer, or at
 * the end): the status and each header line, in order. */
static int web_send_headers(sapi_headers_struct *headers)
{
	zend_llist_position pos;
	out.status = headers->http_response_code ? (uint16_t)headers->http_response_code : 200;
	size_t n = zend_llist_count(&headers->headers), i = 0;
	out.headers.ptr = calloc(n ? n : 1, sizeof *out.headers.ptr);
	for (sapi_header_struct *h = zend_llist_get_first_ex(&headers->headers, &pos); h;
	     h = zend_llist_get_next_ex(&headers->headers, &pos)) {
		const char *colon = memchr(h->header, ':', h->header_len);
		if (colon == NULL) {
			continue;
		}
		const char *value = colon + 1, *end = h->header + h->header_len;
		while (value < end && (*value == ' ' || *value == '\t')) {
			value++;
		}
		lamp_set_string(&out.headers.ptr[i].f0, h->header, colon - h->header);
		lamp_set_string(&out.headers.ptr[i].f1, value, end - value);
		i++;
	}
	out.headers.len = i;
	return SAPI_HEADER_SENT_SUCCESSFULLY;
}

static size_t web_read_post(char *buffer, size_t count)
{
	size_t left = current->body.len - body_offset;
	if (count > left) {
		count = left;
	}
	memcpy(buffer, current->body.ptr + body_offset, count);
	body_offset += count;
	return count;
}

static char *web_read_cookies(void)
{
	return header_value("cookie", "; ");
}

static void add_var(zval *vars, const char *name, const char *value)
{
	php_register_variable_safe(name, value, strlen(value), vars);
}

static void add_wit_var(zval *vars, const char *name, const web_handler_string_t *value)
{
	php_register_variable_safe(name, (const char *)value->ptr, value->len, vars);
}

/* $_SERVER: the environment (as PHP-FPM passes it), then the CGI/1.1 set nginx's
 * fastcgi_params gives, then one HTTP_* per header (repeated headers joined by ", "). */
static void web_register_variables(zval *vars)
{
	const web_request_t *r = current;
	char port[8];

	php_import_environment_variables(vars);
	add_var(vars, "GATEWAY_INTERFACE", "CGI/1.1");
	add_var(vars, "SERVER_SOFTWARE", "wasm-lamp");
	add_var(vars, "SERVER_PROTOCOL", "HTTP/1.1");
	add_wit_var(vars, "SERVER_NAME", &r->server_name);
	snprintf(port, sizeof port, "%u", (unsigned)r->server_port);
	add_var(vars, "SERVER_PORT", port);
	add_wit_var(vars, "REMOTE_ADDR", &r->remote_addr);
	add_var(vars, "REQUEST_SCHEME", r->https ? "https" : "http");
	if (r->https) {
		add_var(vars, "HTTPS", "on");
	}
	add_wit_var(vars, "REQUEST_METHOD", &r->method);
	add_wit_var(vars, "REQUEST_URI", &r->uri);
	add_wit_var(vars, "QUERY_STRING", &r->query);
	add_wit_var(vars, "DOCUMENT_ROOT", &r->document_root);
	add_wit_var(vars, "SCRIPT_FILENAME", &r->script_filename);
	add_wit_var(vars, "SCRIPT_NAME", &r->script_name);
	{
		smart_str self = {0};
		smart_str_appendl(&self, (const char *)r->script_name.ptr, r->script_name.len);
		if (r->path_info.is_some) {
			smart_str_appendl(&self, (const char *)r->path_info.val.ptr, r->path_info.val.len);
			add_wit_var(vars, "PATH_INFO", &r->path_info.val);
			smart_str path_translated = {0};
			smart_str_appendl(&path_translated, (const char *)r->document_root.ptr, r->document_root.len);
			smart_str_appendl(&path_translated, (const char *)r->path_info.val.ptr, r->path_info.val.len);
			smart_str_0(&path_translated);
			add_var(vars, "PATH_TRANSLATED", ZSTR_VAL(path_translated.s));
			smart_str_free(&path_translated);
		}
		smart_str_0(&self);
		add_var(vars, "PHP_SELF", ZSTR_VAL(self.s));
		smart_str_free(&self);
	}
	if (SG(request_info).content_type) {
		add_var(vars, "CONTENT_TYPE", SG(request_info).content_type);
	}
	if (r->body.len > 0 || SG(request_info).content_length > 0) {
		char length[24];
		snprintf(length, sizeof length, "%lld", (long long)SG(request_info).content_length);
		add_var(vars, "CONTENT_LENGTH", length);
	}
	for (size_t i = 0; i < r->headers.len; i++) {
		const web_handler_string_t *name = &r->headers.ptr[i].f0;
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++) {
			const web_handler_string_t *earlier = &r->headers.ptr[j].f0;
			seen = earlier->len == name->len && memcmp(earlier->ptr, name->ptr, name->len) == 0;
		}
		if (seen) {
			continue; /* joined with the first */
		}
		char *lower = cstr(name);
		bool cookie = strcmp(lower, "cookie") == 0;
		char *value = header_value(lower, cookie ? "; " : ", ");
		char *var = malloc(name->len + 6);
		memcpy(var, "HTTP_", 5);
		for (size_t k = 0; k < name->len; k++) {
			char c = lower[k];
			var[5 + k] = c == '-' ? '_' : (char)toupper((unsigned char)c);
		}
		var[5 + name->len] = '\0';
		add_var(vars, var, value);
		free(var);
		free(value);
		free(lower);
	}
}

/* --- getallheaders() ----------------------------------------------------------------------- */

/* The request headers with their names capitalised as PHP-FPM gives them (Content-Type). */
PHP_FUNCTION(apache_request_headers)
{
	ZEND_PARSE_PARAMETERS_NONE();
	array_init(return_value);
	if (current == NULL) {
		return;
	}
	for (size_t i = 0; i < current->headers.len; i++) {
		const web_handler_tuple2_string_string_t *h = &current->headers.ptr[i];
		zend_string *name = zend_string_init((const char *)h->f0.ptr, h->f0.len, 0);
		bool start = true;
		for (size_t k = 0; k < ZSTR_LEN(name); k++) {
			char c = ZSTR_VAL(name)[k];
			ZSTR_VAL(name)[k] = start ? (char)toupper((unsigned char)c) : c;
			start = c == '-';
		}
		zval *existing = zend_hash_find(Z_ARRVAL_P(return_value), name);
		if (existing) {
			/* repeated headers: one entry, values joined as a proxy joins them */
			bool cookie = h->f0.len == 6 && memcmp(h->f0.ptr, "cookie", 6) == 0;
			zend_string *joined = zend_string_concat3(Z_STRVAL_P(existing), Z_STRLEN_P(existing),
			                                          cookie ? "; " : ", ", 2,
			                                          (const char *)h->f1.ptr, h->f1.len);
			zval_ptr_dtor(existing);
			ZVAL_STR(existing, joined);
		} else {
			add_assoc_stringl_ex(return_value, ZSTR_VAL(name), ZSTR_LEN(name), (const char *)h->f1.ptr, h->f1.len);
		}
		zend_string_release(name);
	}
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_lamp_request_headers, 0, 0, IS_ARRAY, 0)
ZEND_END_ARG_INFO()

const zend_function_entry lamp_web_functions[] = {
	ZEND_FE(apache_request_headers, arginfo_lamp_request_headers)
	ZEND_FALIAS(getallheaders, apache_request_headers, arginfo_lamp_request_headers)
	/* lamp_preload.c; the same arginfo: no parameters, an array */
	ZEND_FE(lamp_preload_status, arginfo_lamp_request_headers)
	ZEND_FE_END
};

/* --- the request --------------------------------------------------------------------------- */

/* What php_request_startup() would have done with this request. */
static void web_begin(const web_request_t *r)
{
	current = r;
	body_offset = 0;
	memset(&out, 0, sizeof out);
	out.status = 200;

	sapi_module.ub_write = web_ub_write;
	sapi_module.flush = web_flush;
	sapi_module.send_headers = web_send_headers;
	sapi_module.read_post = web_read_post;
	sapi_module.read_cookies = web_read_cookies;
	sapi_module.register_server_variables = web_register_variables;

	sapi_request_info *info = &SG(request_info);
	info->request_method = cstr(&r->method);
	info->request_uri = cstr(&r->uri);
	info->query_string = cstr(&r->query);
	info->path_translated = cstr(&r->script_filename);
	info->content_type = header_value("content-type", ", ");
	char *length = header_value("content-length", ", ");
	info->content_length = length ? atoll(length) : (zend_long)r->body.len;
	free(length);
	SG(server_context) = (void *)r;
	lamp_preload_trust(r->code_unchanged);

	sapi_activate();
	SG(sapi_headers).http_response_code = 200;
	SG(request_info).proto_num = 1001; /* HTTP/1.1: a redirect after POST is a 303 */
	php_hash_environment();
	/* Like PHP-FPM: relative includes and file names are from the script's directory. */
	SG(options) &= ~SAPI_OPTION_NO_CHDIR;
	php_output_start_user(NULL, 4096, PHP_OUTPUT_HANDLER_STDFLAGS);
}

bool exports_lamp_handler_web_serve(web_request_t *request, exports_lamp_handler_web_context_t *context,
                                    web_response_t *ret, exports_lamp_handler_web_error_t *err)
{
	bool ok = false;

	if (!lamp_ready(err)) {
		goto done;
	}
	lamp_set_memory_limit(context->memory_limit_mb);
	web_begin(request);

	zend_first_try {
		zend_file_handle script;
		zend_stream_init_filename(&script, SG(request_info).path_translated);
		/* exit() ends the page normally; a fatal error is logged and, before any output was
		 * sent, PHP makes the status 500 (php_error_cb). Both come back here. */
		php_execute_script(&script);
		zend_destroy_file_handle(&script);
	} zend_end_try();

	lamp_request_finish();
	if (!SG(headers_sent)) {
		sapi_send_headers();
	}
	if (SG(rfc1867_uploaded_files)) {
		destroy_uploaded_files_hash(); /* the uploads' temporary files in the shared /tmp */
	}

	if (out.overflowed) {
		static const char msg[] = "the page's output did not fit in the function's memory";
		lamp_set_error(err, "Runtime.OutOfMemory", msg, sizeof msg - 1);
		free(out.body);
		goto done;
	}
	ret->status = out.status;
	ret->headers = out.headers;
	ret->body.ptr = out.body;
	ret->body.len = out.len;
	ok = true;

done:
	current = NULL;
	exports_lamp_handler_web_request_free(request);
	exports_lamp_handler_web_context_free(context);
	return ok;
}
