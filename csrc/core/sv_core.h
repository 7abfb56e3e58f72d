/*
 * starvideos C core (csrc/core/): request validation, request building, answer
 * reading, the verdict, the journal's files and leases, a download's .part and
 * its commit, webhook signatures.  Knows nothing of Lua nor of a transport:
 * the binding (csrc/lua/) turns Lua tables into the structures below and back,
 * so the core can be tested and fuzzed from C alone.
 *
 * The three stages are separate on purpose: build a request (sv_build_create,
 * sv_result_path), send it (a transport: libcurl's, csrc/curl/, or nginx's in
 * Lua), read the answer (sv_verdict).  Every transport reuses the first and the
 * last.
 */
#ifndef SV_CORE_H
#define SV_CORE_H

#include <pthread.h>
#include <stddef.h>

/* Every symbol of the core is hidden: only luaopen_* leaves the shared object. */
#if defined(__GNUC__) && !defined(SV_API)
#define SV_API __attribute__((visibility("hidden"))) extern
#elif !defined(SV_API)
#define SV_API extern
#endif

#if defined(__GNUC__)
#define SV_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define SV_PRINTF(fmt, args)
#endif

/* ------------------------------------------------------- buffers (buf.c) */

typedef struct sv_buf {
  char *data;
  size_t len, cap;
  int oom; /* set once an allocation failed; further appends are ignored */
} sv_buf;

SV_API void sv_buf_free(sv_buf *b);
SV_API void sv_buf_add(sv_buf *b, const void *p, size_t n);
SV_API void sv_buf_adds(sv_buf *b, const char *s);
SV_API void sv_buf_addf(sv_buf *b, const char *fmt, ...) SV_PRINTF(2, 3);
SV_API const char *sv_buf_cstr(sv_buf *b); /* NUL-terminated view ("" when empty) */
/* Room for n more bytes: where to write them (NULL: out of memory); sv_buf_commit(b, end) then takes what was
   written up to end. */
SV_API char *sv_buf_reserve(sv_buf *b, size_t n);
SV_API void sv_buf_commit(sv_buf *b, char *end);

/* ----------------------------------------------------- errors (error.c) */

typedef enum sv_kind {
  SV_OK = 0,
  SV_E_INVALID, /* invalid_request */
  SV_E_AUTH,
  SV_E_NOT_FOUND,
  SV_E_RATE_LIMITED,
  SV_E_SPEND_LIMITED, /* a create past a spend_limit (made above the core: spend.lua) */
  SV_E_SERVER,
  SV_E_NETWORK,
  SV_E_TIMEOUT,
  SV_E_TASK_FAILED,
  SV_E_PROTOCOL,
  SV_E_IO,
  SV_E_REFUSED_BEFORE /* a create whose content failed for policy or input before (made above the core: refusal.lua) */
} sv_kind;
#define SV_E_LAST SV_E_REFUSED_BEFORE

typedef struct sv_error {
  sv_kind kind;
  char field[96];    /* "" when no field */
  char message[512]; /* one line, for a person */
  long status;       /* HTTP status, 0 when there was no response */
  double retry_after; /* seconds; < 0 when the server sent none */
  int maybe_created; /* create only: the task may exist although we saw no id */
  int transient;     /* the same call may succeed later (sv_transient) */
  char id[512 + 1];  /* create only: a task id read from an answer we could not use (SV_ID_MAX) */
} sv_error;

SV_API const char *sv_kind_name(sv_kind k);
SV_API void sv_error_clear(sv_error *e);
SV_API int sv_error_set(sv_error *e, sv_kind k, const char *field, const char *fmt, ...) SV_PRINTF(4, 5);
/* (text.c) Quote a user value for a message: at most `max` bytes shown, control bytes and
   invalid UTF-8 escaped, "..." when cut. */
SV_API void sv_quote(sv_buf *out, const char *s, size_t len, size_t max);
/* (text.c) n bytes as 2n lowercase hex digits and a NUL, into out */
SV_API void sv_hex(const unsigned char *b, size_t n, char *out);

/* ------------------------------------------------------ request parameters */

/* FILE: a local file named as a reference ({file = "cat.png"} in Lua), its path in str:
   the Lua library checks it, uploads it and builds the request again with its URL. */
typedef enum sv_vtype {
  SV_V_NIL, SV_V_BOOL, SV_V_NUMBER, SV_V_STRING, SV_V_LIST, SV_V_TABLE, SV_V_OTHER, SV_V_FILE
} sv_vtype;

typedef struct sv_value {
  sv_vtype type;
  const char *str; /* STRING: the bytes; FILE: the path; OTHER: the host's type name; TABLE: what it is, or NULL */
  size_t len;
  double num;      /* NUMBER */
  int boolean;     /* BOOL */
  const struct sv_value *items; /* LIST: the elements, 1-based for messages */
  size_t n;                     /* LIST: items */
} sv_value;

typedef struct sv_field {
  const char *name;
  size_t name_len;
  sv_value value;
} sv_field;

typedef struct sv_params {
  const sv_field *fields;
  size_t n;
  const char *extra_json; /* JSON object text of the `extra` table, or NULL */
  size_t extra_len;
  int files; /* 1: a reference may be a local file (SV_V_FILE); 0: URLs only, as the service takes them */
} sv_params;

/* ------------------------------------------------------ capability table */

/* What a model's documents say its service ignores: `field` when `when` is given too
   (both names of sv_field_names), `why` in the documents' words. */
typedef struct sv_ignored {
  const char *field, *when, *why;
} sv_ignored;

typedef struct sv_model {
  const char *name;
  const char *endpoint;
  int duration_required, duration_min, duration_max, duration_default; /* 0: none */
  const char *const *ratios; /* NULL-terminated */
  const char *default_ratio;
  const char *const *resolutions; /* NULL: not a field of this model */
  long prompt_max; /* characters; 0: no stated limit */
  int max_images, max_images_with_video, max_videos, max_audios;
  int legacy_aliases; /* image / lastFrameImage accepted */
  int video_min, video_max; /* seconds of its one reference video; 0: the shared limits alone */
  const sv_ignored *ignored; /* ended by a row of NULLs; NULL: it ignores nothing it is given */
} sv_model;

SV_API const sv_model sv_models[];
SV_API const size_t sv_model_count;
SV_API const char *const sv_field_names[]; /* NULL-terminated, every field any model takes */
/* The fields of sv_field_names that name reference media (a URL or a list of URLs), n of them, in a body's order */
SV_API const char *const *sv_media_fields(size_t *n);

/* Check params against the model's row.  0 when valid (and *model set), -1 with
   err (kind SV_E_INVALID, field naming the culprit) otherwise. */
SV_API int sv_validate(const sv_params *p, const sv_model **model, sv_error *err);

/* A valid request's field that the service will ignore (the row's `ignored`). */
typedef struct sv_warning {
  char field[32], because[32]; /* the field ignored; the one given beside it */
  char message[320];
} sv_warning;
/* sv_validate, and when valid one sv_warning appended to *warnings (when not NULL)
   for each field the service will ignore. */
SV_API int sv_validate_warn(const sv_params *p, const sv_model **model, sv_buf *warnings, sv_error *err);

/* Validate, then write the JSON body and give the endpoint path.  A local file
   (SV_V_FILE, with p->files) is written as {"file": path}: that body is the
   request's fingerprint, never sent; its URL replaces it once uploaded. */
SV_API int sv_build_create(const sv_params *p, sv_buf *body, const char **path, sv_error *err);

/* "/v1/result/<id>" with the id percent-encoded so that it cannot leave the path. */
SV_API int sv_result_path(const char *id, size_t len, sv_buf *out, sv_error *err);

/* The length of an "http://" or "https://" prefix (any case) followed by a host;
   0 when s is not http(s), -1 when no host follows the scheme. */
SV_API int sv_url_scheme(const char *s, size_t len);

/* ------------------------------------------- text and URLs (text.c, url.c) */
/* UTF-8: number of code points, or -1 when the bytes are not valid UTF-8. */
SV_API long sv_utf8_count(const char *s, size_t len);

/* The longest task id the client takes from a create answer and polls. */
#define SV_ID_MAX 512
/* 1 when id is one the client can poll: 1..SV_ID_MAX bytes, no control character. */
SV_API int sv_task_id_ok(const char *id, size_t len);
/* 1 when s has no control character (bytes < 0x20 or 0x7f): safe as an HTTP header
   value (the API key, the user agent); 0 otherwise, and for NULL with len > 0. */
SV_API int sv_header_value_ok(const char *s, size_t len);
/* The one URL check (core.check_url).  kind SV_URL_BASE: http(s)://host[:port][/path]
   and nothing else (no userinfo, query, fragment, spaces or control characters;
   trailing slashes are fine): a URL paths are appended to.  kind SV_URL_ANY: the
   same, and a query and a fragment (a video's signed URL), '@' allowed past the
   host.  0 when good, else -1 with err (SV_E_INVALID, field `field` (NULL: "url"),
   the message "<field>: expected <form>, found <what> [at byte n]"). */
#define SV_URL_BASE 0
#define SV_URL_ANY 1
SV_API int sv_url_check(const char *s, size_t len, const char *field, int kind, sv_error *err);
/* The same check, the URL's parts in *out when it passes (out may be NULL):
   s[host_at, +host_len) the host as written ([...] for IPv6), s[host_at,
   +auth_len) host[:port], port (the scheme's when none is written), and the
   path, query and fragment from path_at (possibly empty). */
typedef struct sv_url {
  int https;
  size_t host_at, host_len, auth_len, path_at;
  unsigned port;
} sv_url;
SV_API int sv_url_parse(const char *s, size_t len, const char *field, int kind, sv_url *out, sv_error *err);
/* A proxy's URL, http://[user[:password]@]host:port[/] (the one proxy check of
   both transports and the options), its credentials apart: url without them
   ("http://host:port"), user and password percent-decoded as libcurl decodes
   them (has_user: the URL names a user; a password without one is empty).  0,
   or -1 with err (field "proxy"), whose message never holds the credentials: it
   shows the URL as "http://user:***@host..." when it shows it.  out may be NULL
   (a check); else the caller frees it with sv_proxy_free after a 0. */
typedef struct sv_proxy {
  sv_buf url, user, password;
  int has_user;
} sv_proxy;
SV_API int sv_proxy_parse(const char *s, size_t len, sv_proxy *out, sv_error *err);
SV_API void sv_proxy_free(sv_proxy *p);
/* What a proxy's 407 (or, on a CONNECT, 401) means, for messages of both
   transports (sv_tunnel_refused, answer.c). */
#define SV_PROXY_AUTH "the proxy asks for a user name and password, or refused those given " \
  "(Proxy Authentication Required): give them as http://user:password@host:port"
/* The one redirect rule of both transports (core.redirect): an answer of status with the Location loc (NULL:
   none) to the URL from, after hops redirects followed.  0: not a redirect (a 301, 302, 303, 307 or 308 with a
   Location), the answer is the exchange's; 1: the next hop's URL in *to (loc read against from as a browser does,
   checked as any URL: sv_url_check); -1, err saying why, when it is not followed: a sixth redirect, a target the
   URL check refuses, or (public_host: its names are resolved elsewhere, by a proxy or nginx's resolver) a host
   that is not public as written.  The caller frees *to. */
SV_API int sv_redirect(const char *from, long status, const char *loc, size_t llen, int hops, int public_host,
                       sv_buf *to, sv_error *err);

/* ------------------------------------------------------------------ JSON */

SV_API void sv_json_string(sv_buf *out, const char *s, size_t len);
/* s's characters as the inside of a JSON string (escaped, no quotes), written at w (room for 6 * len bytes):
   the end of what was written. */
SV_API char *sv_json_put(char *w, const char *s, size_t len);


typedef struct sv_json_member {
  const char *key; size_t key_len;     /* raw, still escaped */
  const char *val; size_t val_len;     /* the value's text */
  char type; /* 's' string, 'n' number, 'o' object, 'a' array, 't' 'f' 'z'(null) */
} sv_json_member;

/* Decode a JSON string value (with its quotes) into out; 0 or -1. */
SV_API int sv_json_unescape(const char *val, size_t len, sv_buf *out);
/* The same into out, which has room for len bytes (a string never grows when
   unescaped); the bytes written, or (size_t)-1 when val is not a whole string. */
SV_API size_t sv_json_unescape_into(const char *val, size_t len, char *out);

/* A JSON value handed over part by part as the scan checks it, in text order:
   how a reader builds the whole value somewhere else (the binding: a Lua table)
   without a second pass.  Strings and keys come raw, with their quotes (unescape
   them with sv_json_unescape_into when `escaped`); a number comes read. */
typedef struct sv_json_sink {
  void (*open)(void *ctx, int array);  /* an object (0) or an array (1) begins */
  void (*close)(void *ctx);            /* the innermost open one ends */
  void (*key)(void *ctx, const char *val, size_t len, int escaped);    /* an object's next key */
  void (*string)(void *ctx, const char *val, size_t len, int escaped);
  void (*number)(void *ctx, double v);
  void (*literal)(void *ctx, char type); /* 't', 'f', 'z' (null) */
  void *ctx;
} sv_json_sink;
typedef void (*sv_json_visit)(void *ctx, const sv_json_member *m);

/* The one scan: text must be one well-formed JSON object (depth <= 64).  Each
   returns its member count, or -1 with a reason ("truncated", "expected ':' at
   byte 12", ...) in why.  sv_json_each visits each complete top-level member in
   text order; sv_json_read hands the whole object to sink (may be NULL) and
   appends its top-level members to members (may be NULL).  On a failure, what
   came before it has been handed over (a cut answer's prefix: a string only
   whole, but a number at the cut may come shortened). */
SV_API int sv_json_scan(const char *text, size_t len, char *why, size_t whylen);
SV_API int sv_json_each(const char *text, size_t len, sv_json_visit visit, void *ctx, char *why, size_t whylen);
SV_API int sv_json_read(const char *text, size_t len, const sv_json_sink *sink, sv_buf *members, char *why,
                        size_t whylen);
/* 1 when the member's key, unescaped, is exactly key[0..len). */
SV_API int sv_json_key_eq(const sv_json_member *m, const char *key, size_t len);
/* The number of top-level members named key (keys unescaped), the first in *out
   (may be NULL); -1 when text is not one well-formed object. */
SV_API int sv_json_get(const char *text, size_t len, const char *key, sv_json_member *out);
/* The same among n members read already (sv_json_read). */
SV_API int sv_json_find(const sv_json_member *ms, size_t n, const char *key, sv_json_member *out);
/* 1 when a key appears twice among n members read already (sv_json_read; keys
   compared unescaped), that key appended to dup (may be NULL); 0 when not; -2
   out of memory. */
SV_API int sv_json_duplicate_in(const sv_json_member *ms, size_t n, sv_buf *dup);
/* The first top-level "id" member whose value is a whole JSON string, read from
   a prefix of an object (the rest may be cut off or broken), unescaped into out.
   0, or -1 when there is none, it does not fit, or it fails sv_task_id_ok.
   Only the top-level "id" counts (never one nested in another member), so that
   a garbled answer never names a task that is not the one created. */
SV_API int sv_json_prefix_id(const char *body, size_t len, char *out, size_t outlen);

/* ---------------------------------------------------------------- answers */

/* SV_OP_EXCHANGE: a request that is not the API's (a webhook, a reference media
   URL, the user's S3-compatible store): the key never sent, any 2xx a success
   as it is (its status, body and header lines the result: no answer read), an
   error's words its XML's Code and Message, else its JSON's; its messages name
   it by its own word (sv_exchange's what).  Its method, header lines, body,
   byte range and tap are its request's (csrc/curl/transport.h's sv_send). */
typedef enum sv_op { SV_OP_CREATE, SV_OP_QUERY, SV_OP_DOWNLOAD, SV_OP_EXCHANGE } sv_op;

/* Seconds from a Retry-After value: delta-seconds (digits only, saturating: no overflow, no strtod
   of 1e400) or an HTTP date; always finite, from 0 to a year, or -1 when unreadable. */
SV_API double sv_parse_retry_after(const char *v, double now);
SV_API double sv_http_date(const char *v); /* an HTTP date's seconds since the epoch, or -1 */
/* A Content-Range value (n bytes) as both transports read it (core.content_range): "bytes A-B/T" and nothing
   after, whitespace after "bytes", A <= B < T, each at most 15 digits: 0, *start = A and *total = T; else -1 (not
   a whole range: "*" for its total, say), nothing set. */
SV_API int sv_content_range(const char *v, size_t n, double *start, double *total);

/* How an exchange ended, as far as the wire could tell. */
typedef enum sv_wire {
  SV_WIRE_NONE = 0,      /* a whole HTTP answer arrived */
  SV_WIRE_NOT_SENT,      /* never connected, or failed before sending: nothing created */
  SV_WIRE_TIMEOUT,       /* timed out after sending */
  SV_WIRE_BROKEN,        /* reset / closed / cut short after sending */
  SV_WIRE_GARBLED,       /* an answer came that is not HTTP we can use (giant headers, over the cap) */
  SV_WIRE_FATAL,         /* not worth retrying (bad URL, certificate, redirect loop) */
  SV_WIRE_IO             /* a download's file could not be written */
} sv_wire;

/* The names of sv_op's and sv_wire's values, in order, NULL-terminated (the
   binding's luaL_checkoption takes them; messages say them). */
SV_API const char *const sv_op_names[];
SV_API const char *const sv_wire_names[];
/* A proxy that answered its CONNECT with status (>= 300): the one rule of both transports (core.tunnel_refused).
   msg (n bytes) says so, naming the proxy and the target when given (NULL: not known), and what a 401 or a 407
   asks; the wire: SV_WIRE_FATAL for a refusal that would be said again (4xx), SV_WIRE_NOT_SENT (5xx).  Nothing
   reached the server either way. */
SV_API sv_wire sv_tunnel_refused(long status, const char *proxy, const char *target, char *msg, size_t n);
/* A download's body longer than its video can be (cap: its length, when the answer said it, else max_video_bytes):
   the message of both transports (core.too_long), naming url's path alone (its query may hold a token); url NULL:
   another answer past its max_body, cap. */
SV_API void sv_too_long(double cap, int its_length, const char *url, char *msg, size_t n);
/* The one class callers decide on (err.transient): whether the same call may
   succeed later.  The wire failed short of an answer (never connected, timed
   out, cut, garbled), or the server said so (408, 429, 5xx), or, for an error
   made above the core, the kind says so (network, timeout, rate_limited,
   server).  A query is retried when it is; a download when it is and the
   answer was not garbled. */
SV_API int sv_transient(sv_kind kind, sv_wire wire, long status);

/* The retry policy's values, all from the options table (config.lua), clamped by
   the binding: nothing here has a default of its own. */
typedef struct sv_retry_policy {
  int max_retries;     /* attempts after the first (a download's: its resume_limit) */
  double backoff;      /* seconds before the second attempt, doubled for each next one */
  double max_backoff;  /* the cap of that doubling */
  double max_wait;     /* the longest Retry-After honoured; longer: give up */
  int garbled_final;   /* a garbled answer is not asked again (a download's; an exchange's bytes from elsewhere than
                          its range) */
} sv_retry_policy;

/* The one retry policy, for API calls and downloads.  Returns 1 and sets *delay to
   retry, 0 to give up (whether a create may have happened is sv_verdict's word,
   already in err).  Retry-After is honoured as sent (up to max_wait); else the delay is
   min(backoff * 2^(attempt-1), max_backoff) * (0.5 + 0.5 * rnd), rnd being a
   uniform number in [0,1) for the jitter ("equal jitter": half to all of it). */
SV_API int sv_retry_decide(sv_op op, sv_wire wire, sv_error *err, int attempt, const sv_retry_policy *p,
                           double rnd, double *delay);

/* What one exchange brought back, whichever transport carried it. */
typedef struct sv_exchange {
  sv_op op;
  long status;              /* 0: no HTTP answer */
  const char *body; size_t body_len; /* API answer, or a download's error page */
  const char *retry_after;  /* header value, or NULL */
  sv_wire wire;
  const char *message;      /* why the wire failed, when wire != SV_WIRE_NONE */
  double bytes, total;      /* downloads: bytes now in the file; total, < 0 when unknown */
  const sv_json_sink *sink; /* or NULL: handed a 2xx API answer's body (sv_read_answer) */
  const char *heads; size_t heads_len; /* SV_OP_EXCHANGE: the answer's header lines ("Name: value\n"), if kept */
  const char *what;         /* the word its messages name it by (an exchange's: "media", "notify"); NULL: its op's */
  const char *limits; size_t limits_len; /* create, query: its rate-limit header lines (sv_read_limits) */
  double from, first;       /* a ranged exchange's, a download's: the file's byte asked for first (an exchange's 0:
                               from the start, or no range), and the one its 200's or 206's body starts at (a 200's:
                               from, once the bytes before it were dropped; less when it ended sooner; -1: a 206
                               whose Content-Range is not a whole one).  The verdict's range rule reads them. */
} sv_exchange;

SV_API const char *sv_exchange_name(const sv_exchange *x); /* what, else the op's name */

/* The answer of an exchange (op, status, body, retry_after and sink read; the
   wire is not): 0 when the body is the task object to hand to the caller, -1
   with err filled.  `now` is the wall clock (for Retry-After dates).  A 2xx body
   is handed to a->sink in the one scan that checks it, before the checks on
   its members: the value built is the task only when 0 is returned.  Whether a
   create may have made a task is sv_verdict's to say, not this reading's. */
SV_API int sv_read_answer(const sv_exchange *a, double now, sv_error *err);
/* 1 when an answer's body is a task whatever its status says (a create the
   server made, then answered 429, 503 or 500 with the task in the body): one
   JSON object without a duplicate key, a string id that can be polled, a
   status of the lifecycle's (queued, processing, completed, failed); handed
   to a->sink in the scan that checks it, as a 2xx's is (the value built is
   the task only when 1 is returned).  Else 0.  sv_verdict asks it of a
   create's error answers. */
SV_API int sv_answer_names_task(const sv_exchange *a);
/* The verdict on one exchange: 0 when it is a success (an API answer whose body is
   the task, or a whole download), -1 with err filled.  *wire is set to how the
   exchange counts for the retry policy (a download cut short counts as broken).
   The one place that decides, for a create that failed, whether it may have
   reached the server (maybe_created) and which task it made (id: whenever one
   can be read, even from an answer cut short; only with maybe_created).
   `secret` (the API key, or NULL) never appears in the message. */
SV_API int sv_verdict(const sv_exchange *x, double now, const char *secret, sv_error *err, sv_wire *wire);
/* What a success of x's op holds, as its verdict reads it: a task (create, query), a file (download) or bytes. */
typedef enum { SV_READS_TASK, SV_READS_FILE, SV_READS_BYTES } sv_reads;
SV_API sv_reads sv_verdict_reads(const sv_exchange *x);

/* ------------------------------------------ rate limits (limits.c) */

enum { SV_LIMITS_NONE, SV_LIMITS_IETF, SV_LIMITS_X };
SV_API const char *const sv_limits_families[]; /* "none", "ratelimit", "x-ratelimit" */

/* What an answer said of the key's rate limit; each < 0 when it said nothing of it. */
typedef struct sv_limits {
  double limit;     /* requests in the window */
  double remaining; /* requests left in it */
  double reset;     /* seconds until it resets */
  double window;    /* the window's length (RateLimit-Policy's w) */
  int family;       /* SV_LIMITS_*: the family read (the IETF one when both were sent) */
} sv_limits;

/* The rate-limit fields among an answer's header lines ("Name: value\n", any case):
   1 when any was read (out filled), else 0 (out all -1).  Never fails: a malformed
   field is left out.  `now`: the wall clock, for a reset sent as a time since 1970. */
SV_API int sv_read_limits(const char *lines, size_t len, double now, sv_limits *out);

/* ------------------------------------------ clocks and ids (clock.c, id.c) */

SV_API double sv_monotonic(void);
SV_API double sv_wallclock(void);
SV_API void sv_sleep(double seconds); /* nothing for NaN or <= 0; EINTR slept through */
SV_API void sv_hash_hex(const char *s, size_t len, char out[17]);
SV_API void sv_random_hex(char out[17]);
SV_API void sv_request_id(char out[37]); /* a random UUID (v4): an X-Request-Id */

/* ------------------------------------------------------------------ files */

/* Lock the journal at path (the exclusive flock appenders take, on the file at
   path once locked): a descriptor holding the lock until closed, or -1 with
   why; read-only for a rewrite (create 0), or for appending, the file created
   when missing (create 1).  sv_file_append_held appends one record (a line)
   through such a descriptor (create 1) whose lock is held: one write() on an
   O_APPEND descriptor, a torn last line ended first, fsync when sync; a record
   not written whole leaves no part of itself (the file cut back).
   sv_file_replace renames the finished file tmp over path (fsynced, with path's
   mode, the folder synced after) while lockfd is held; 0, or -1 with why. */
SV_API int sv_file_lock(const char *path, int create, sv_buf *why);
SV_API int sv_file_append_held(int lockfd, const char *path, const char *rec, size_t len, int sync, sv_buf *why);
SV_API int sv_file_replace(int lockfd, const char *tmp, const char *path, sv_buf *why);
/* A lease: an exclusive flock on path taken without waiting, held until the
   descriptor is closed (the kernel drops it when its process dies).  create:
   the file, and its folder one level up, are made when missing, and the
   holder's process id written in it.  The
   descriptor, or SV_LOCK_BUSY (held by another descriptor), SV_LOCK_MISSING (no
   file, create 0), or -1 with why. */
#define SV_LOCK_BUSY (-2)
#define SV_LOCK_MISSING (-3)
SV_API int sv_file_try_lock(const char *path, int create, sv_buf *why);
/* What lstat finds at path (stat with follow: what its links lead to), without opening it (a FIFO is never
   waited on): "file", "folder", "link" or "other" (a FIFO, a device, a socket); NULL with
   *err = errno when nothing is there or it cannot be looked at. */
SV_API const char *sv_file_kind(const char *path, int follow, int *err);
/* The journal's writer: a thread per journal (journal.c) that appends records
   in the order given, each batch in one write and one fsync under the journal's
   flock, so that its caller never waits for the lock or the disk.
   sv_jwriter_put queues data (whole lines) and returns its ticket (0: out of
   memory); expect >= 0 makes it conditional: written only when every byte of
   the file after offset expect is this writer's own (else it fails as a
   conflict: the reader's view is stale, another process wrote).  The caller
   waits only when SV_JW_QUEUED bytes are queued already.  sv_jwriter_poll: the
   last ticket written or failed (and every one before it), and the failed ones
   since the last poll (*fails, the caller's to free; conflict, else why).
   sv_jwriter_wait waits for ticket, at most seconds (< 0, over a day, NaN:
   for as long as it takes): whether it is done; sv_jwriter_free writes what is queued, then
   ends the thread. */
#define SV_JW_QUEUED (4u << 20)
typedef struct sv_jwriter sv_jwriter;
typedef struct sv_jfail {
  long long ticket;
  int conflict;
  char why[240];
} sv_jfail;
SV_API sv_jwriter *sv_jwriter_new(const char *path, int inline_);
SV_API long long sv_jwriter_put(sv_jwriter *w, const char *data, size_t len, int sync, double expect);
SV_API long long sv_jwriter_poll(sv_jwriter *w, sv_jfail **fails, size_t *n);
SV_API int sv_jwriter_wait(sv_jwriter *w, long long ticket, double seconds);
SV_API void sv_jwriter_free(sv_jwriter *w);
/* A download's .part written through one descriptor (part.c), by both
   transports, from its open to its commit.  sv_part_open: offset 0 makes a new file (the name
   unlinked, then O_EXCL|O_NOFOLLOW); offset > 0 goes on from a regular file of
   one link holding at least offset bytes, else sets *short_ and returns NULL
   (start again from 0).  Writes are buffered; sv_part_flush writes them out.
   sv_part_at: the bytes accepted (the next byte's offset); sv_part_size: those
   that reached the file through the descriptor.  sv_part_truncate cuts the
   file to `at` (at most sv_part_size) and writes on from there.  sv_part_close
   flushes and closes (0, or -1 with why); sv_part_free releases it.
   sv_part_commit(fd, size, part, dest, hash, hex): fsync fd, check its size is size and
   that part still names it, rename part to dest, fsync dest's folder: the one
   commit of a download, whichever transport wrote it.  sv_sync_folder: fsync
   the folder that holds path, so that a rename into it reaches the disk (a
   file system that cannot sync a folder, EINVAL or EROFS, counts as done); 0,
   or -1 with "cannot sync the folder DIR: reason" in why. */
typedef struct sv_part sv_part;
SV_API sv_part *sv_part_open(const char *path, double offset, int *short_, sv_buf *why);
SV_API int sv_part_write(sv_part *p, const char *data, size_t len, sv_buf *why);
SV_API int sv_part_flush(sv_part *p, sv_buf *why);
SV_API double sv_part_at(const sv_part *p);
/* Whole plainly framed chunks of a chunked body in s from *pos, written; *pos
   moves past them.  The data bytes written, or -1 with why. */
SV_API double sv_part_chunks(sv_part *p, const char *s, size_t len, size_t *pos, sv_buf *why);
SV_API double sv_part_size(const sv_part *p);
SV_API int sv_part_fd(const sv_part *p);
SV_API const char *sv_part_path(const sv_part *p);
SV_API int sv_part_truncate(sv_part *p, double at, sv_buf *why);
/* sv_part_same: 1 when the name is still the file this descriptor writes (one
   link, holding exactly the bytes written through it, none buffered), else 0:
   a .part replaced, cut or linked since must not be gone on from. */
SV_API int sv_part_same(const sv_part *p);
SV_API int sv_part_close(sv_part *p, sv_buf *why);
/* The .part a download writes through from *offset: the one rule of both transports (core.part_open).  left (the
   .part an unfinished attempt of this transport left at path, or NULL; taken) goes on while its name is still that
   file and it holds *offset (cut there); with none, an earlier call's .part at path (sv_part_open at *offset);
   else, and for *offset <= 0, byte 0 of a new file, *offset then 0.  NULL, why said, when no file can be opened. */
SV_API sv_part *sv_part_resume(sv_part *left, const char *path, double *offset, sv_buf *why);
/* Both transports' (libcurl's, nginx's: core.error_page_max, core.parts_kept): the bytes of a download's error page
   kept for the message, and how many unfinished downloads' .parts a transport keeps open for the next attempt (more
   resume unchecked: the Lua side's overlap check). */
#define SV_ERROR_PAGE_MAX (64 * 1024)
#define SV_PARTS_KEPT 64
SV_API void sv_part_free(sv_part *p);

SV_API int sv_sync_folder(const char *path, sv_buf *why);

/* A file's hash, lent to the commit by a module that has one (starvideos.sign:
   SHA-256 on libcrypto; the core links no hash library): fn reads fd from its
   current position to its end and writes the hash as hex digits and a NUL to hex
   (at most SV_HASH_HEX bytes): 0, or -1 with why.  magic tells one from any other
   pointer a Lua caller may hand over. */
#define SV_HASH_HEX 129
#define SV_HASHER_MAGIC 0x5376486eu
typedef struct sv_hasher {
  unsigned magic;
  int (*fn)(int fd, char *hex, sv_buf *why);
} sv_hasher;
/* The commit of a .part (part.c, sv_part's comment above): with mp4 (not NULL),
   the file must first be a whole MP4 (sv_mp4_check_fd: of *mp4 seconds, < 0 any),
   else nothing is renamed and -2 comes back with the check's words in why; with
   hash, it is hashed into hex (SV_HASH_HEX bytes); both in one read of the file
   (the check's box headers by pread), beside its fsync. */
/* A mark appended to a whole MP4 (part.c): box, len, a top-level box's bytes (the XMP's uuid box), written after
   its last box, in the read that hashes it; marked: 1 once it is there, else why not (the file is no sequence of
   boxes whose last has a size: nothing written).  With a mark, sv_part_commit marks the .part after its check and
   before its hash (the hash is the marked file's), and its size is the bytes it was given and the box's.
   sv_mark_file marks the file at path so (a film's join): 0 with m->marked or m->why, or -1 with why (no file). */
typedef struct sv_mark {
  const char *box;
  size_t len;
  int marked;
  char why[200];
} sv_mark;
SV_API int sv_part_commit(int fd, double size, const char *part, const char *dest, const sv_hasher *hash,
                          const double *mp4, sv_mark *mark, char *hex, sv_buf *why);
SV_API int sv_mark_file(const char *path, sv_mark *m, sv_buf *why);

/* A helper thread's one shape (work.c, after luv's work.c): a piece of work whose state its owner (a Lua handle,
   a journal's writer) and the thread doing it share, freed by whichever of the two lets go of it last, so that an
   owner never waits for the thread and the thread never finds its state gone.  A kind says what the work is: run
   (on the thread: its results go into the work's data, the owner's once sv_work_poll says it is done); stop (or
   NULL), called under the work's lock when its owner lets go while it runs (a command killed, a writer told to
   end); free (or NULL), the data's own allocations let go of by the last of the two.
     sv_work_new: the work with size bytes of data (sv_work_data), zeroed, not started; NULL out of memory.
     sv_work_start: run on a helper thread (1), the module kept loaded; with none to be had, 0: with here, run done
       on this thread before it returns, else never run.
     sv_work_poll: 1 while run works (or its thread is ending: it never waits), then 0.
     sv_work_lock, sv_work_unlock: the work's lock, over what the owner and run share of the data.
     sv_work_close: the owner lets go (stop, then the last frees); never waits. */
typedef struct sv_work sv_work;
typedef struct sv_work_kind {
  void (*run)(sv_work *w, void *data);
  void (*stop)(void *data);
  void (*free)(void *data);
} sv_work_kind;
SV_API sv_work *sv_work_new(const sv_work_kind *kind, size_t size);
SV_API void *sv_work_data(sv_work *w);
SV_API int sv_work_start(sv_work *w, int here);
SV_API int sv_work_poll(sv_work *w);
SV_API void sv_work_lock(sv_work *w);
SV_API void sv_work_unlock(sv_work *w);
SV_API void sv_work_close(sv_work *w);

/* A download's commit off the caller's thread (a work): sv_commit_start takes the .part p (the caller's no more)
   and, on a helper thread, flushes it, hashes it (with hash, when not NULL: the .part opened again for reading,
   the same file as the one written) and checks it (with mp4), marks it (with mark: its box copied), commits it to
   dest (sv_part_commit), then frees it;
   it returns at once (NULL with why only when out of memory; without a thread it is done before returning).
   Once sv_work_poll says it is done, sv_commit_result: 0 with *hex (the hash, "" without one) and *mark (NULL
   without one), or -1 (or -2: not a whole MP4) with *why (all the work's, until sv_work_close). */
SV_API sv_work *sv_commit_start(sv_part *p, const char *dest, const sv_hasher *hash, const double *mp4,
                                const sv_mark *mark, char *why, size_t whylen);
SV_API int sv_commit_result(sv_work *c, const char **why, const char **hex, const sv_mark **mark);

/* A helper thread (work.c): fn(arg) started with every signal blocked
   (the host's signals are not its own): 0 or pthread_create's error. */
SV_API int sv_helper_start(pthread_t *t, void *(*fn)(void *), void *arg);
/* Called first in a helper: the lowest priority, so that it never takes the CPU from the caller's thread. */
SV_API void sv_helper_background(void);
/* Keeps the module loaded for good (a thread that may end after the module's
   user let go of it runs this module's code to its end): once per process. */
SV_API void sv_helper_pin_module(void);

/* ------------------------------------------------------------------ media */

/* What the first bytes of a media file say (media.c).  sv_media_sniff reads
   head[0, n) (the file's first bytes; total its size, < 0 unknown): 0 with *m
   filled, or -1 with why (an unknown or broken format).  When more bytes are
   needed, m->tail is the byte offset to read from (an MP4 whose moov is not in
   head; an OGG's last 64 KiB); sv_media_tail reads bytes[0, n) from that offset
   and fills what it finds (tail < 0 once nothing more is wanted).  Unknown
   numbers are < 0 (size, duration, tail) or 0 (width, height, rate). */
typedef enum sv_media_kind { SV_MEDIA_IMAGE = 1, SV_MEDIA_VIDEO, SV_MEDIA_AUDIO, SV_MEDIA_TEXT } sv_media_kind;
typedef struct sv_media {
  sv_media_kind kind;
  const char *type; /* "png" "jpeg" "webp" "gif" "mp4" "mov" "wav" "mp3" "m4a" "aac" "ogg"; text (not
                       media): "html" "json" "xml" "text" */
  double size, duration, tail;
  double width, height;
  double rate, pre_skip; /* an OGG's granule rate and Opus pre-skip, for its tail */
} sv_media;
SV_API void sv_media_init(sv_media *m);
SV_API int sv_media_sniff(const unsigned char *head, size_t n, double total, sv_media *m, sv_buf *why);
SV_API int sv_media_tail(sv_media *m, const unsigned char *bytes, size_t n, double offset, sv_buf *why);
SV_API const char *sv_media_kind_name(sv_media_kind k);

/* What a reference's address is when the public internet does not route it
   (a[0, 4) IPv4, a[0, 16) IPv6, network order): "a private address",
   "a loopback address"...; NULL when it is public.  sv_host_private: the same of
   a URL's host as written (an IPv4 address in any form the resolver reads,
   [IPv6], localhost and *.localhost); NULL for any other name.  A refusal of
   one reads SV_NOT_PUBLIC(name, what) (core.CANNOT_FETCH: its fixed part). */
SV_API const char *sv_addr_private(const unsigned char *a, int is_v6);
SV_API const char *sv_host_private(const char *host, size_t len);
#define SV_CANNOT_FETCH "which the service cannot fetch"
#define SV_NOT_PUBLIC "%s is %s, " SV_CANNOT_FETCH " (allow_private_media = true allows it)"

/* The file fd reads (with pread: its position is not moved) is a whole MP4: ftyp
   first, top-level boxes that run exactly to its end, moov and mdat (or moof and
   mdat) present, and a duration within 1 s of expected (< 0: none expected).  1
   with *duration (< 0 when the file states none) and *open_end (when not NULL: 1
   when its last box runs to the end, a size of 0), or -1 with why naming the check. */
SV_API int sv_mp4_check_fd(int fd, double expected, double *duration, int *open_end, sv_buf *why);

/* The same check on an MP4 given in order, a piece at a time (an upload's
   stream, media.c), holding no more than a moov's first MiB: sv_mp4s_feed
   takes the next n bytes (-1 with why as soon as they cannot be a whole MP4:
   no ftyp first, a box smaller than its header); sv_mp4s_end says whether
   what was fed is a whole MP4 of `expected` seconds (< 0: any), the file
   check's words; 1, or -1 with why.  sv_mp4s_save writes its state as text,
   for a resume (sv_mp4s_load): at a box half read, the state at that box's
   start, whose offset (the text's first number) is where the bytes given
   next must start; returns 1 then, else 0.  sv_mp4s_free lets go of the moov
   kept (also done by end). */
typedef struct sv_mp4s {
  double at, next;               /* bytes fed; where the next top-level box starts (HUGE_VAL: to the end) */
  unsigned char hdr[16];         /* the header being read */
  unsigned hdr_len;
  int boxes, seen_moov, seen_mdat, failed;
  double duration;               /* mvhd's, < 0: none read */
  unsigned char *moov;           /* the moov's first bytes, kept until all came */
  size_t moov_len, moov_want;
  char last_type[5];             /* the last box's, for a box past the end */
  double last_size, last_at;
  struct { double at, duration; int boxes, moov, mdat; } snap; /* at the start of the last header */
} sv_mp4s;
SV_API void sv_mp4s_init(sv_mp4s *s);
SV_API int sv_mp4s_feed(sv_mp4s *s, const unsigned char *p, size_t n, sv_buf *why);
SV_API int sv_mp4s_end(sv_mp4s *s, double expected, sv_buf *why);
SV_API int sv_mp4s_save(const sv_mp4s *s, sv_buf *out);
SV_API int sv_mp4s_load(sv_mp4s *s, const char *text);
SV_API void sv_mp4s_free(sv_mp4s *s);

/* The media rules of a model (models.c) over the references of one create.
   Each item: its field ("referenceVideos[2]"), its name ("referenceVideos"),
   what sniffing found (NULL: nothing read) and the HTTP status of its URL (0:
   none).  An image's shorter side under min_side px is a definite finding (the
   user's min_image_side; 0: none), under note_side one that is not.  Appends
   sv_media_finding structs to *out: 0, or -1 with err (an unknown model, no memory). */
typedef struct sv_media_item {
  const char *field, *name;
  const sv_media *info;
  long status;
} sv_media_item;
typedef struct sv_media_finding {
  char field[96];
  char message[400];
  int definite; /* 1: a rule broken for sure; 0: a check that could not be made */
} sv_media_finding;
SV_API int sv_media_check(const char *model, const sv_media_item *items, size_t n, double min_side, double note_side,
                          sv_buf *out, sv_error *err);

/* Standard Webhooks signatures (sign.c, on libcrypto).  sv_webhook_sign:
   "v1,<base64 HMAC-SHA256(key, id.ts.body)>" into out, the key being the
   base64-decoded part after "whsec_", else the secret's bytes: 0, or -1 with err
   (invalid_request, field "secret", for a secret that is empty or bad base64).
   sv_webhook_match: 1 when one of the space-separated values of header equals
   expected, compared in constant time; else 0. */
#define SV_SIGN_MAX 48
SV_API int sv_webhook_sign(const char *secret, size_t slen, const char *id, size_t idlen, const char *ts, size_t tslen,
                           const char *body, size_t blen, char out[SV_SIGN_MAX], sv_error *err);
SV_API int sv_webhook_match(const char *expected, const char *header, size_t hlen);
/* SHA-256 (sign.c) as 64 lowercase hex digits and a NUL into out: of s[0, len)
   when path is NULL, else of the file at path, read a block at a time.  0, or -1
   with why ("<path>: <reason>" for a file that cannot be read). */
#define SV_SHA256_HEX 64
SV_API int sv_sha256(const char *s, size_t len, const char *path, char out[SV_SHA256_HEX + 1], sv_buf *why);

/* Ed25519 (sign.c, on libcrypto): a provenance record's signature.  sv_ed25519_load reads the private key of the
   PEM file at path (refused, why naming path and never the key's bytes: unreadable, encrypted, not PEM, another
   algorithm); sv_ed25519_public its raw public key; sv_ed25519_sign the signature of msg as base64 (88 characters
   and a NUL): 0, or -1.  sv_ed25519_verify: whether b64 is the signature of msg by the public key of the PEM file
   at pubpath (its raw bytes into pub): 1, 0 (not: a wrong key, a changed message, no signature's form), or -1
   with why (the key file). */
#define SV_ED25519_PUBLIC 32
#define SV_ED25519_SIG 64
#define SV_ED25519_B64 89
typedef struct sv_ed25519 sv_ed25519;
SV_API sv_ed25519 *sv_ed25519_load(const char *path, sv_buf *why);
SV_API void sv_ed25519_free(sv_ed25519 *k);
SV_API int sv_ed25519_public(const sv_ed25519 *k, unsigned char pub[SV_ED25519_PUBLIC]);
SV_API int sv_ed25519_sign(const sv_ed25519 *k, const char *msg, size_t len, char b64[SV_ED25519_B64]);
SV_API int sv_ed25519_verify(const char *pubpath, const char *msg, size_t len, const char *b64, size_t b64len,
                             unsigned char pub[SV_ED25519_PUBLIC], sv_buf *why);

/* SHA-256 (sign.c, on libcrypto), for the commit (sv_commit_start): the bytes of
   fd from its position to its end, as 64 lowercase hex digits and a NUL. */
SV_API const sv_hasher sv_sha256_hasher;

/* A check of a video's bytes as they pass in order (stream.c, on libcrypto):
   the whole SHA-256 and the whole-MP4 check (sv_mp4s) of `expected` seconds
   (< 0: any).  saved: the text sv_stream_save wrote (NULL: from byte 0).
   sv_stream_from: where the bytes fed next must start (before sv_stream_at
   after a resume whose MP4 check must read a box again: those bytes are
   checked, not hashed); sv_stream_at: the bytes hashed (after a feed, the
   last bytes fed that it grew by are those hashed).  sv_stream_feed: -1 with
   why once they cannot be a whole MP4.  sv_stream_save: -1 unless at a
   multiple of 64 bytes.  sv_stream_end: 0 with the whole SHA-256 in hex, -2
   with the check's words (not a whole MP4 of its duration), -1 with why. */
typedef struct sv_stream sv_stream;
SV_API sv_stream *sv_stream_new(double expected, const char *saved, sv_buf *why);
SV_API void sv_stream_free(sv_stream *s);
SV_API double sv_stream_from(const sv_stream *s);
SV_API double sv_stream_at(const sv_stream *s);
SV_API int sv_stream_feed(sv_stream *s, const char *p, size_t n, sv_buf *why);
SV_API int sv_stream_save(const sv_stream *s, sv_buf *out);
/* Whether a box (a mark: part.c's sv_mark) can follow the bytes fed, all of a whole MP4: they end where a top-level
   box of a size ends (not one of size 0, which runs to the end of the file): 0, or -1 with why. */
SV_API int sv_stream_markable(const sv_stream *s, sv_buf *why);
SV_API int sv_stream_end(sv_stream *s, char hex[SV_SHA256_HEX + 1], sv_buf *why);

/* Bytes handed on as they come (the libcurl transport's exchange, its
   sv_send's tap: a stream fed on the way, a write's few KiB at
   a time, so that no step hashes a part at once).  feed gets the body's
   bytes in order, those kept only; it returns 0, or -1 to be fed no more. */
typedef struct sv_tap sv_tap;
struct sv_tap { int (*feed)(sv_tap *tap, const char *p, size_t n); };

#endif
