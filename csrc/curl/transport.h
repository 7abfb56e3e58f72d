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

typedef struct sv_send {
  sv_op op;                /* the verdict's (sv_xfer_exchange): the transport never reads it */
  const char *url;
  int service;             /* the service's request: "Authorization: Bearer <api_key>" sent (never to another host),
                              its answer's own id, rate-limit lines and Date read */
  const char *headers;     /* its header lines, each ending in "\n" (no CR), the only ones but Host, User-Agent, the
                              body's length, Range, X-Request-Id and the key (none: libcurl's Accept; an empty
                              Content-Type) */
  const char *method;      /* GET, HEAD, PUT, POST or DELETE (a body goes with PUT and POST); NULL: GET, or POST
                              with a body */
  const char *what;        /* the word its messages name it by ("media", "notify"; NULL: "exchange") */
  int range;               /* (not a HEAD) bytes offset to offset + max_body - 1 asked (Range), its body cut at
                              max_body (whole: a server that ignores Range sends the whole file), from the byte
                              asked or refused (SV_WIRE_GARBLED); without it, a body past max_body is garbled */
  int hold;                /* (with range; request.lua asks it of a GET) a 200 to the Range (a host that ignores
                              it: the whole file) is not ended at the range's end but held there, paused:
                              sv_xfer_held says so once it finished, and sv_xfer_go_on reads the next range from
                              it (one GET for a file's parts); a 206 ends as without it */
  int keep_heads;          /* the answer's header lines kept (sv_exchange's heads) */
  const char *body; size_t body_len; /* a POST when body is not NULL */
  int body_kept;           /* the caller keeps body alive and unchanged until the exchange ends: not copied */
  int fresh;               /* never on a reused connection (a create: see send.c) */
  double timeout;          /* seconds for the whole exchange; 0: none */
  double stall;            /* seconds without a byte before giving up; 0: none */
  size_t max_body;         /* > 0.  An answer in memory: a longer one ends as SV_WIRE_GARBLED; a file's body
                              without a length: the most bytes its file may hold */
  /* Where the body goes, chosen once (csrc/curl/body.c's units): into file, else into memory, fed to tap too.
     Each moves in the caller's polls, a pass giving it a bounded step (then libcurl holds the exchange, paused,
     until the next pass): a game's step(0) stays bounded, whatever the socket holds. */
  const char *file;        /* a 2xx body goes here (never through a symlink) */
  double offset;           /* bytes already in file: the rest is asked for with Range (an exchange's: range;
                              a 200 to it, the whole file: the bytes before offset dropped as they come) */
  int follow;              /* follow redirects to URLs sv_url_check takes, at most 5 (never with the key) */
  /* A GET's body fed to tap as it comes (NULL: none): a 2xx's bytes from offset, those kept, in order; room for
     max_body bytes made at its first byte; SV_TAP_STEP bytes at most in a pass (its hashing bounded).  The caller keeps tap
     alive until the exchange ends. */
  sv_tap *tap;
  int public_only;         /* refused, never connected to, when not a public address (sv_addr_private) */
  /* The options that stay each client's own (the clients of a key share one
     transport): the exchange's client's.  user_agent NULL: all three are the
     transport's (sv_http_config). */
  const char *user_agent;
  const char *ca_file;     /* or NULL: the system's CAs */
  double connect_timeout;  /* seconds */
  /* "http://[user:password@]host:port" (sv_proxy_parse): this exchange goes
     through that proxy (CONNECT for https; Basic auth with the credentials).
     NULL: libcurl's own choice, from https_proxy / http_proxy / all_proxy /
     no_proxy in the environment. */
  const char *proxy;
  /* sent as "X-Request-Id: <request_id>" (NULL: none); at most SV_REQUEST_ID_MAX bytes, no control character */
  const char *request_id;
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
