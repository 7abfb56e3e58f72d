/* What the libcurl transport's two files share: the exchange (sv_xfer) and
   the transport (sv_http), and what each file lends the other.  multi.c: the
   transport, its API exchanges on the multi handle, the polls; fetch.c: the
   downloads, each on a thread of its own, written through their .part. */
#ifndef SV_CURL_INTERNAL_H
#define SV_CURL_INTERNAL_H

#include "transport.h"

#include <curl/curl.h>
#include <pthread.h>

enum { L_NONE, L_RUNNING, L_DONE, L_HELD }; /* the list an exchange is on (L_HELD: paused, its part taken) */
typedef struct sv_list { sv_xfer *head, *tail; int n; } sv_list; /* first in, first out */

struct sv_xfer {
  sv_http *h;
  long long user; /* the caller's number for it (sv_xfer_set_user): the Lua binding's handle */
  sv_xfer *prev, *next;
  int list;
  sv_op op;
  CURL *easy;
  struct curl_slist *headers;
  char *url;
  sv_buf send, recv;
  sv_buf heads;        /* the answer's header lines, when kept (keep_heads) */
  char what[24];       /* an exchange's word in messages (sv_send's what), or "" */
  int api, range, keep_heads; /* api: a create's or a query's; range, keep_heads: an exchange's (sv_send's) */
  int into_file, exchange; /* its 2xx body goes into file (a download's); exchange: neither that nor api (xfer_new) */
  int in_multi, queued; /* its easy handle on the multi handle; waiting for room there (multi.c's admit) */
  const char *body;    /* what is sent: send's bytes, or the caller's (body_kept) */
  size_t body_len;
  size_t max_body;
  sv_tap *tap;         /* an exchange's GET's (sv_send's), NULL once it refused more */
  size_t tap_fed;      /* bytes fed to tap in this poll's pass (at most SV_TAP_STEP: then it is paused) */
  int tapping, tap_paused; /* tapping: counted in h->taps */
  char retry_after[64];
  char request_id[SV_REQUEST_ID_MAX + 1]; /* the X-Request-Id sent ("": none) */
  char server_id[SV_REQUEST_ID_MAX + 1];  /* the answer's own id ("": none), of rank server_rank */
  int server_rank;
  sv_buf limits; /* an API answer's rate-limit header lines */
  long status;
  sv_wire wire;
  char message[512];   /* as an sv_error's */
  char curl_msg[CURL_ERROR_SIZE];
  int too_big;
  /* downloads */
  char *file;          /* the .part's name */
  sv_part *part;       /* written through from send to result (the thread's while it runs) */
  int io_failed, body_started, body_to_file, bad_range; /* io_failed: x->message says why */
  double offset, range_start, range_total;
  double pos;          /* a ranged exchange's 200 (a host that ignores Range: the whole file): the byte of the file
                          libcurl gives next (those before offset dropped as they come) */
  int hold, held;      /* hold: a 200 to its Range is held (paused) at its part's end, not ended; held: so now */
  int held_end;        /* libcurl ended it while held (held_rc: how): a go-on sends anew */
  CURLcode held_rc;
  /* redirects, followed by hand (fetch): each target goes through sv_url_check */
  int follow, refused, hops; /* refused: a redirect was not followed (x->message says why) */
  int public_only;     /* an exchange's: 1 each address connected to, 2 (through a proxy) each hop's host,
                          refused when not public (x->refused, x->message) */
  sv_buf location;     /* the current answer's Location */
  double timeout, t0;  /* the exchange's seconds (0: none) from t0, across its hops */
  /* A download's thread.  Until `fetched`, the thread alone touches the handle,
     the file and the fields above; the owner reads them once it has seen
     `fetched` under the lock.  Both hold a reference: the last one out frees. */
  int waiting;         /* in h->fetch_queue: no thread yet (every slot busy) */
  int threaded;        /* its thread was started */
  int reaped;          /* the owner has seen it fetched (it is off h->fetching) */
  sv_xfer *fnext;      /* h->fetching or h->fetch_queue */
  sv_http *home;       /* h, for its thread's last word (h outlives every thread) */
  curl_socket_t sock[2]; /* under lock: its sockets (two while libcurl tries IPv6 and
                            IPv4 at once), shut down to stop it */
  pthread_mutex_t lock;
  int refs, fetched, abandoned; /* under lock */
  CURLcode fetch_rc;            /* under lock, with fetched */
  double have, total;           /* under lock once threaded */
  double seen_have, seen_total; /* the owner's last look at them */
};

struct sv_http {
  CURLM *multi;
  char *api_key, *ca_file, *user_agent;
  double connect_timeout, keepalive_timeout;
  sv_list running, done, held; /* held: exchanges paused at a part's end (sv_xfer_go_on) */
  char date[40]; /* the last API answer's Date, and our wall clock when it came (sv_http_clock) */
  double date_at;
  /* downloads: those with a thread, those waiting for a slot (first in, first
     out).  A download's connection counts against max_connections: the multi
     handle gets what the download threads leave (at least 1). */
  sv_xfer *fetching, *fetch_queue, *fetch_queue_tail;
  int n_fetching, n_waiting;
  long max_conns;
  /* download threads alive, those let go of included: sv_http_free waits for
     none to be left before it ends libcurl (a thread inside libcurl, or in this
     code, must not outlive the module or curl_global_cleanup) */
  pthread_mutex_t threads_lock;
  pthread_cond_t threads_gone;
  int threads_alive;
  struct sv_left *left; /* unfinished downloads' .parts, newest first (fetch.c) */
  int taps, n_paused;   /* exchanges running with a tap; those paused in this pass (multi.c) */
  int n_multi, n_queued; /* easy handles on the multi handle (held ones too); exchanges queued for room there */
};

/* multi.c */
SV_API long sv_curl_ms(double s);               /* seconds to libcurl's milliseconds, clamped */
SV_API void sv_curl_done(sv_xfer *x);            /* x is finished: its easy handle goes, it is on h->done */
SV_API void sv_curl_end(sv_xfer *x, CURLcode rc); /* the same, after what the wire said is read */
SV_API void sv_curl_destroy(sv_xfer *x);         /* frees x, off every list */

SV_API void sv_curl_admit(sv_http *h);           /* queued exchanges onto the multi handle while there is room */

/* fetch.c (sv_curl_redirect: for downloads and exchanges alike) */
SV_API long sv_fetch_share(const sv_http *h);    /* the multi handle's connections: max_connections less downloads */
SV_API int sv_curl_redirect(sv_xfer *x);         /* 1: a redirect followed (its target next), 0: x is done */
SV_API void sv_fetch_setup(sv_http *h, sv_xfer *x); /* a download's easy handle options */
SV_API void sv_media_setup(sv_xfer *x, const sv_send *s); /* an exchange's public_only, when asked */
SV_API int sv_fetch_open(sv_http *h, sv_xfer *x, sv_error *err); /* its .part: 0, or -1 with err */
SV_API void sv_fetch_queue(sv_http *h, sv_xfer *x); /* it waits for a thread, started when there is a slot */
SV_API int sv_fetch_reap(sv_http *h);            /* downloads whose thread is done are finished */
SV_API void sv_fetch_unlist(sv_http *h, sv_xfer *x); /* off h's download lists (its thread runs on) */
SV_API void sv_fetch_abandon(sv_xfer *x);        /* its thread stops at once */
SV_API void sv_fetch_free_left(sv_http *h);      /* the .parts kept for next attempts go */

#endif
