/* What the libcurl transport's three files share: the exchange (sv_xfer) and the transport (sv_http).  multi.c:
   the transport, its exchanges on the one multi handle, the polls; send.c: what an exchange sends (its checks, its
   header lines, its easy handle's options); body.c: what comes back (the answer's lines, the body's unit, the
   .parts kept, the redirects). */
#ifndef SV_CURL_INTERNAL_H
#define SV_CURL_INTERNAL_H

#include "transport.h"

#include <curl/curl.h>

enum { L_NONE, L_RUNNING, L_DONE, L_HELD }; /* the list an exchange is on (L_HELD: paused, its part taken) */
typedef struct sv_list { sv_xfer *head, *tail; int n; } sv_list; /* first in, first out */

/* Where an exchange's body goes (body.c), chosen once when it is made (sv_unit_of): memory, memory and a tap, or
   a file.  start: at its first byte (0, or -1: it ends); write: libcurl's bytes (what libcurl's write callback
   returns); end: libcurl ended it (rc), before its wire is read; step: the most bytes a poll's pass gives it (then
   it is paused until the next pass: a game's step(0) stays bounded whatever the socket holds). */
typedef struct sv_unit {
  int (*start)(sv_xfer *x);
  size_t (*write)(sv_xfer *x, const char *buf, size_t len);
  void (*end)(sv_xfer *x, CURLcode rc);
  size_t step;
} sv_unit;

struct sv_xfer {
  sv_http *h;
  long long user; /* the caller's number for it (sv_xfer_set_user): the Lua binding's handle */
  sv_xfer *prev, *next;
  int list;
  sv_op op;            /* the verdict's (sv_xfer_exchange): never read here */
  const sv_unit *unit;
  CURL *easy;
  struct curl_slist *headers;
  char *url;
  sv_buf send, recv;
  sv_buf heads;        /* the answer's header lines, when kept (keep_heads) */
  char what[24];       /* an exchange's word in messages (sv_send's what), or "" */
  int service;         /* the service's request (sv_send's): the key sent, never to another host; its answer's id, rate
                          limits and Date read */
  int range, keep_heads;
  int in_multi, queued; /* its easy handle on the multi handle; waiting for room there (multi.c's admit) */
  const char *body;    /* what is sent: send's bytes, or the caller's (body_kept) */
  size_t body_len;
  size_t max_body;
  sv_tap *tap;         /* the tap's (sv_send's), NULL once it refused more */
  size_t fed;          /* body bytes given in pass `pass` (at most unit->step: then paused) */
  unsigned pass;
  int paused, started; /* paused: by its step, until the next pass; started: its unit's start ran */
  char retry_after[64];
  char request_id[SV_REQUEST_ID_MAX + 1]; /* the X-Request-Id sent ("": none) */
  char server_id[SV_REQUEST_ID_MAX + 1];  /* the answer's own id ("": none), of rank server_rank */
  int server_rank;
  sv_buf limits; /* the service's answer's rate-limit header lines */
  long status;
  sv_wire wire;
  char message[512];   /* as an sv_error's */
  char curl_msg[CURL_ERROR_SIZE];
  int too_big;
  /* a file's body (sv_send's file) */
  char *file;          /* the .part's name */
  sv_part *part;       /* written through from send to result */
  int io_failed, body_to_file, bad_range; /* io_failed: x->message says why */
  double offset, range_start, range_total;
  double have, total;  /* bytes in the file (or kept), and its size (-1: unknown) */
  double pos;          /* a ranged exchange's 200 (a host that ignores Range: the whole file): the byte of the file
                          libcurl gives next (those before offset dropped as they come) */
  int hold, held;      /* hold: a 200 to its Range is held (paused) at its part's end, not ended; held: so now */
  int held_end;        /* libcurl ended it while held (held_rc: how): a go-on sends anew */
  CURLcode held_rc;
  /* redirects, followed by hand: each target goes through sv_url_check */
  int follow, refused, hops; /* refused: a redirect was not followed (x->message says why) */
  int public_only;     /* 1 each address connected to, 2 (through a proxy) each hop's host, refused when not
                          public (x->refused, x->message) */
  sv_buf location;     /* the current answer's Location */
  double timeout, t0;  /* the exchange's seconds (0: none) from t0, across its hops */
};

struct sv_http {
  CURLM *multi;
  char *api_key, *ca_file, *user_agent;
  double connect_timeout, keepalive_timeout;
  sv_list running, done, held; /* held: exchanges paused at a part's end (sv_xfer_go_on) */
  char date[40]; /* the last API answer's Date, and our wall clock when it came (sv_http_clock) */
  double date_at;
  struct sv_left *left; /* unfinished downloads' .parts, newest first (body.c) */
  unsigned pass;        /* the poll's passes, counted */
  int n_paused;         /* exchanges paused by their step in the last pass */
  int n_multi, n_queued, n_files; /* easy handles on the multi handle (held ones too), files among them; exchanges
                                     queued for room there */
  long max_conns;
};

/* multi.c */
SV_API long sv_curl_ms(double s);               /* seconds to libcurl's milliseconds, clamped */
SV_API void sv_curl_done(sv_xfer *x);            /* x is finished: its easy handle goes, it is on h->done */
SV_API void sv_curl_held(sv_xfer *x);            /* x is held (paused at its part's end): on h->done */

/* send.c */
SV_API int sv_send_invalid(const sv_send *s, sv_error *err); /* what sv_http_send refuses: 0, or -1 with err */
SV_API int sv_send_setup(sv_http *h, sv_xfer *x, const sv_send *s); /* its header lines, its handle's options: 0,
                                                                       or -1 out of memory */

/* body.c */
SV_API const sv_unit *sv_unit_of(const sv_send *s); /* where s's body goes */
SV_API int sv_body_open(sv_http *h, sv_xfer *x, sv_error *err); /* a file's .part: 0, or -1 with err */
SV_API size_t sv_on_header(char *buf, size_t size, size_t n, void *ud); /* libcurl's callbacks */
SV_API size_t sv_on_body(char *buf, size_t size, size_t n, void *ud);
SV_API int sv_curl_redirect(sv_xfer *x);         /* 1: a redirect followed (its target next), 0: x is done */
SV_API void sv_body_free_left(sv_http *h);       /* the .parts kept for next attempts go */

#endif
