#ifndef SV_TRANSPORT_H
#define SV_TRANSPORT_H

#include "../core/sv_core.h"

/* The libcurl transport's face (csrc/curl/), for the binding (csrc/lua/curl.c):
   it only moves bytes.  It sends one exchange at a time per request (no
   retries, no policy: those live above it), keeps connections alive across
   requests, streams a file's body into its .part (sv_part), and says which
   exchanges finished.  What differs between exchanges is sv_send's data: the op
   is only carried to the verdict (sv_xfer_exchange). */

typedef struct sv_http_config {
  const char *api_key;     /* sent only on exchanges that ask for it */
  const char *ca_file;     /* or NULL */
  const char *user_agent;  /* required (the options table gives it: no default here) */
  double connect_timeout;  /* seconds */
  int max_connections;
  double keepalive_timeout; /* seconds an idle connection is reused within (CURLOPT_MAXAGE_CONN); 0: libcurl's */
} sv_http_config;

/* The most body bytes a poll's pass gives an exchange (a tap's: fewer, for its hashing); then libcurl holds it,
   paused, until the next pass.  A 300 MB download at 60 fps (spec/hosts/embed_spec.lua): 600 frames, step(0)'s
   own time 1.06 ms at p99, 2.3 ms at most; 1 MiB: 314 frames, 1.57 ms at p99; 256 KiB: 1,172 frames, 0.77 ms. */
#define SV_STEP 524288
#define SV_TAP_STEP 262144

/* An exchange's fields, one member per row of exchange_fields.h (each row says what its field means).  Where the
   body goes is chosen once from them (csrc/curl/body.c's units): into file, else into memory, fed to tap too.  Each
   moves in the caller's polls, a pass giving it a bounded step (then libcurl holds the exchange, paused, until the
   next pass): a game's step(0) stays bounded, whatever the socket holds. */
#define SV_MEMBER_OP(n) sv_op n;
#define SV_MEMBER_URL(n) const char *n;
#define SV_MEMBER_STR(n) const char *n;
#define SV_MEMBER_FLAG(n) int n;
#define SV_MEMBER_NUM(n) double n;
#define SV_MEMBER_CLIENT(n) double n;
#define SV_MEMBER_SIZE(n) size_t n;
#define SV_MEMBER_BODY(n) const char *n; size_t n##_len; int n##_kept;
#define SV_MEMBER_RANGE(n) int n;
#define SV_MEMBER_TAP(n) sv_tap *n;
#define SV_MEMBER_LUA(n)
typedef struct sv_send {
#define SV_FIELD(name, kind) SV_MEMBER_##kind(name)
#include "exchange_fields.h"
#undef SV_FIELD
} sv_send;

#define SV_REQUEST_ID_MAX 128

typedef struct sv_http sv_http;
typedef struct sv_xfer sv_xfer;

SV_API sv_http *sv_http_new(const sv_http_config *cfg, char *errbuf, size_t errlen);
SV_API void sv_http_free(sv_http *h); /* ends every exchange still running */
/* The connections the transport may hold at once from now on (clamped to
   1..1024): the key's max_connections changes as its clients come and go. */
SV_API void sv_http_set_max_connections(sv_http *h, int max_connections);
SV_API sv_xfer *sv_http_send(sv_http *h, const sv_send *s, sv_error *err);
/* Do the network work that is ready; wait at most max_wait seconds for an exchange
   to finish (0: never wait).  Returns how many are finished and not yet taken. */
SV_API int sv_http_poll(sv_http *h, double max_wait);
SV_API sv_xfer *sv_http_finished(sv_http *h); /* the next finished exchange, or NULL */
SV_API double sv_http_clock(const sv_http *h); /* the last API answer's Date minus our clock then: s, or NaN */
SV_API const char *sv_http_secret(const sv_http *h);
SV_API void sv_xfer_exchange(const sv_xfer *x, sv_exchange *out); /* after finished */
SV_API void sv_xfer_progress(sv_xfer *x, double *bytes, double *total);
SV_API int sv_xfer_has_part(const sv_xfer *x); /* whether it is a file's, its .part not taken */
/* A finished download's .part, after the verdict: whole, it is handed to the
   caller (to commit: sv_commit_start); else it stays with the transport, by
   its file's name, for the next attempt at that file (NULL returned).  NULL
   too for any other exchange, or when taken already. */
SV_API sv_part *sv_xfer_part(sv_xfer *x, int whole);
SV_API void sv_xfer_free(sv_xfer *x); /* ends it when still running (or held) */
/* Whether a finished exchange (sv_send's hold) is held: its part taken, its transfer paused at the part's end,
   until sv_xfer_go_on or sv_xfer_free.  It holds its connection, and its timeout (the first sv_send's) runs on. */
SV_API int sv_xfer_held(const sv_xfer *x);
/* The held exchange x goes on as s's exchange (its range's first byte: where x stopped; its max_body, tap): x
   itself, running again.  NULL (x untouched: the caller frees it and sends s anew): x is not held there, or its
   transfer ended while held (its connection closed, its time up). */
SV_API sv_xfer *sv_xfer_go_on(sv_xfer *x, const sv_send *s);
/* A finished exchange's body moved into out (x keeps none): its bytes not copied again. */
SV_API void sv_xfer_take_body(sv_xfer *x, sv_buf *out);
SV_API void sv_xfer_set_user(sv_xfer *x, long long user); /* a number of the caller's, kept with x */
SV_API long long sv_xfer_user(const sv_xfer *x);
/* The server's own id of the exchange's answer (x-request-id, request-id, cf-ray), NULL: none came. */
SV_API const char *sv_xfer_server_id(const sv_xfer *x);
SV_API int sv_xfer_written(const sv_xfer *x); /* whether any of its request reached its socket */

#endif
