/* The libcurl transport: it moves bytes and nothing else.  One sv_http is one
   multi handle, whose connection cache gives keep-alive across exchanges; one
   sv_xfer is one HTTP exchange.  Retries, deadlines, the answer's meaning and the
   download rules (.part, resume, refresh, commit) live above it (sv_call.c and the
   shared Lua), so that another transport can take its place.  Nothing here blocks
   longer than the caller's max_wait, and no callback calls into Lua.

   API exchanges run on the multi handle, in the caller's polls.  A download runs
   on a thread of its own (fetch_thread): curl_easy_perform, the writes and the
   close of the .part all happen there, so that a poll that may not wait (a
   game's step(0), once a frame) costs the same whether a video is coming in or
   not.  The poll only looks at whether the thread is done (a trylock: it never
   waits for it), and the thread's end wakes a poll that waits. */
#include "sv_core.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* libcurl before 7.85 has no *_PROTOCOLS_STR: the bitmask options do the same.
   Every other libcurl name used here is in 7.68 (the oldest supported):
   csrc/curl_versions.txt lists each with its version, tools/curl-compat.sh checks. */
#if LIBCURL_VERSION_NUM >= 0x075500
#define SV_LIMIT_PROTOCOLS(e)                                                     \
  (curl_easy_setopt((e), CURLOPT_PROTOCOLS_STR, "http,https"),                    \
   curl_easy_setopt((e), CURLOPT_REDIR_PROTOCOLS_STR, "http,https"))
#else
#define SV_LIMIT_PROTOCOLS(e)                                                     \
  (curl_easy_setopt((e), CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)), \
   curl_easy_setopt((e), CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)))
#endif

#define ERROR_PAGE_MAX (64 * 1024) /* a download's error page kept for the message */

enum { L_NONE, L_RUNNING, L_DONE };

/* The .part of a download that ended unfinished, by its file's name, so that
   the next attempt at that file goes on through it only while it is still the
   file as written (sv_part_same): one replaced, cut or linked meanwhile
   (another download, another process) starts again at 0, as in the nginx
   transport. */
typedef struct sv_left {
  struct sv_left *next;
  sv_part *part;
} sv_left;
#define LEFT_MAX 64 /* the newest kept: older ones resume unchecked (the Lua side's overlap check) */

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
  size_t max_body;
  char retry_after[64];
  long status;
  sv_wire wire;
  char message[CURL_ERROR_SIZE + 96];
  char curl_msg[CURL_ERROR_SIZE];
  int too_big;
  /* downloads */
  char *file;          /* the .part's name */
  sv_part *part;       /* written through from send to result (the thread's while it runs) */
  int io_failed, body_started, body_to_file, bad_range; /* io_failed: x->message says why */
  double offset, range_start, range_total;
  /* redirects, followed by hand (fetch): each target goes through sv_url_check */
  int follow, refused; /* refused: a redirect was not followed (x->message says why) */
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
  double connect_timeout;
  sv_xfer *running, *done, *done_tail;
  int n_running, n_done;
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
  sv_left *left; /* newest first */
};

/* ------------------------------------------------------------- helpers */

/* Seconds to libcurl's milliseconds, without overflow whatever the caller passed. */
static long to_ms(double s) {
  if (!(s > 0)) return 0;
  if (s > 86400.0 * 30) s = 86400.0 * 30;
  return (long)(s * 1000) + 1;
}

static long to_s(double s) {
  if (!(s >= 1)) return 1;
  if (s > 86400.0 * 30) s = 86400.0 * 30;
  return (long)s;
}

static void unlink_xfer(sv_xfer *x) {
  sv_http *h = x->h;
  if (!h || x->list == L_NONE) return;
  if (x->prev) x->prev->next = x->next;
  else if (x->list == L_RUNNING) h->running = x->next;
  else h->done = x->next;
  if (x->next) x->next->prev = x->prev;
  else if (x->list == L_DONE) h->done_tail = x->prev;
  if (x->list == L_RUNNING) h->n_running--;
  else h->n_done--;
  x->prev = x->next = NULL;
  x->list = L_NONE;
}

static void push_running(sv_http *h, sv_xfer *x) {
  x->list = L_RUNNING;
  x->prev = NULL;
  x->next = h->running;
  if (h->running) h->running->prev = x;
  h->running = x;
  h->n_running++;
}

static void push_done(sv_http *h, sv_xfer *x) {
  x->list = L_DONE;
  x->next = NULL;
  x->prev = h->done_tail;
  if (h->done_tail) h->done_tail->next = x;
  else h->done = x;
  h->done_tail = x;
  h->n_done++;
}

/* A header list that may hold the key: wiped before it is freed. */
static void free_secret_list(struct curl_slist *l) {
  struct curl_slist *i;
  for (i = l; i; i = i->next)
    if (i->data) memset(i->data, 0, strlen(i->data));
  curl_slist_free_all(l);
}

/* The exchange's easy handle and header list go (its connection stays in the
   multi handle's cache). */
static void release_easy(sv_xfer *x) {
  if (x->easy) {
    if (x->h && x->list == L_RUNNING && x->op != SV_OP_DOWNLOAD) /* a download's is never on the multi handle */
      curl_multi_remove_handle(x->h->multi, x->easy);
    curl_easy_cleanup(x->easy);
    x->easy = NULL;
  }
  if (x->headers) { free_secret_list(x->headers); x->headers = NULL; }
}

/* The .part left at file, taken off h->left (now the caller's), or NULL. */
static sv_part *left_take(sv_http *h, const char *file) {
  sv_left **p;
  for (p = &h->left; *p; p = &(*p)->next)
    if (strcmp(sv_part_path((*p)->part), file) == 0) {
      sv_left *l = *p;
      sv_part *part = l->part;
      *p = l->next;
      free(l);
      return part;
    }
  return NULL;
}

/* part, of a download that ended unfinished, kept for the next attempt at its
   file (in place of one kept there before); the oldest beyond LEFT_MAX go. */
static void left_put(sv_http *h, sv_part *part) {
  sv_left *l = malloc(sizeof *l), **p;
  int n = 0;
  sv_part_free(left_take(h, sv_part_path(part)));
  if (!l) { sv_part_free(part); return; }
  l->part = part;
  l->next = h->left;
  h->left = l;
  for (p = &h->left; *p && n < LEFT_MAX; p = &(*p)->next) n++;
  while ((l = *p) != NULL) { *p = l->next; sv_part_free(l->part); free(l); }
}

/* ------------------------------------------------------------- the pool */

static void abandon(sv_xfer *x);

/* The multi handle's connections: max_connections less the download threads
   running, and at least 1 (API requests always have one). */
static void share_connections(sv_http *h) {
  long n = h->max_conns - h->n_fetching;
  if (n < 1) n = 1;
  curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, n);
  curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, n);
}

/* Download threads at once: one connection is left to API requests, unless
   max_connections is 1 (then a download and an API request may both be open). */
static int fetch_slots(const sv_http *h) { return h->max_conns > 1 ? (int)h->max_conns - 1 : 1; }

sv_http *sv_http_new(const sv_http_config *cfg, char *errbuf, size_t errlen) {
  sv_http *h;
  /* curl_global_init is thread-safe from libcurl 7.84 on; before that the host
     must call it once itself before threads start (examples/embed/README.md). */
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(errbuf, errlen, "libcurl failed to initialise");
    return NULL;
  }
  if (!cfg->user_agent) { /* the options table gives one: no default here */
    snprintf(errbuf, errlen, "no user agent was given");
    curl_global_cleanup();
    return NULL;
  }
  if ((cfg->api_key && !sv_header_value_ok(cfg->api_key, strlen(cfg->api_key))) ||
      !sv_header_value_ok(cfg->user_agent, strlen(cfg->user_agent))) {
    snprintf(errbuf, errlen, "the API key and the user agent may not hold control characters");
    curl_global_cleanup();
    return NULL;
  }
  h = calloc(1, sizeof *h);
  if (h && pthread_mutex_init(&h->threads_lock, NULL) != 0) { free(h); h = NULL; }
  if (h && pthread_cond_init(&h->threads_gone, NULL) != 0) {
    pthread_mutex_destroy(&h->threads_lock);
    free(h);
    h = NULL;
  }
  if (!h) { snprintf(errbuf, errlen, "out of memory"); curl_global_cleanup(); return NULL; }
  h->api_key = strdup(cfg->api_key ? cfg->api_key : "");
  h->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
  h->user_agent = strdup(cfg->user_agent);
  h->connect_timeout = cfg->connect_timeout;
  h->multi = curl_multi_init();
  if (!h->multi || !h->api_key || !h->user_agent || (cfg->ca_file && !h->ca_file)) {
    snprintf(errbuf, errlen, "out of memory");
    sv_http_free(h);
    return NULL;
  }
  h->max_conns = cfg->max_connections < 1 ? 1 : cfg->max_connections > 1024 ? 1024 : cfg->max_connections;
  share_connections(h);
  return h;
}

void sv_http_free(sv_http *h) {
  sv_xfer *x;
  if (!h) return;
  /* Downloads still running stop (their sockets shut down), and this waits for
     every download thread to end, those let go of before too: the threads are
     quick to see it, and none may run on inside libcurl once it is cleaned up
     below, nor in this code once the module is unloaded. */
  for (x = h->fetching; x; x = x->fnext) abandon(x);
  pthread_mutex_lock(&h->threads_lock);
  while (h->threads_alive > 0) pthread_cond_wait(&h->threads_gone, &h->threads_lock);
  pthread_mutex_unlock(&h->threads_lock);
  while ((x = h->running) != NULL || (x = h->done) != NULL) {
    int unfinished = x->list == L_RUNNING;
    unlink_xfer(x);
    x->waiting = 0;
    x->reaped = 1;   /* its thread, if it had one, is over */
    release_easy(x);
    x->h = NULL; /* the owner frees it; it is finished as far as anyone can tell */
    if (unfinished) {
      x->wire = SV_WIRE_BROKEN;
      snprintf(x->message, sizeof x->message, "the transport was closed before the exchange finished");
    }
  }
  h->fetching = h->fetch_queue = h->fetch_queue_tail = NULL;
  h->n_fetching = h->n_waiting = 0;
  pthread_cond_destroy(&h->threads_gone);
  pthread_mutex_destroy(&h->threads_lock);
  while (h->left) sv_part_free(left_take(h, sv_part_path(h->left->part)));
  if (h->multi) curl_multi_cleanup(h->multi);
  if (h->api_key) {
    memset(h->api_key, 0, strlen(h->api_key));
    free(h->api_key);
  }
  free(h->ca_file);
  free(h->user_agent);
  free(h);
  curl_global_cleanup();
}

const char *sv_http_secret(const sv_http *h) { return h->api_key; }

/* ----------------------------------------------------- curl callbacks */

static size_t on_header(char *buf, size_t size, size_t n, void *ud) {
  sv_xfer *x = ud;
  size_t len = size * n;
  if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) { /* a new answer (after a redirect, say) */
    x->retry_after[0] = '\0';
    x->range_start = x->range_total = -1;
    x->location.len = 0;
  } else if (x->follow && len > 9 && strncasecmp(buf, "Location:", 9) == 0) {
    size_t a = 9, z = len;
    while (a < z && (buf[a] == ' ' || buf[a] == '\t')) a++;
    while (z > a && (buf[z - 1] == '\r' || buf[z - 1] == '\n' || buf[z - 1] == ' ' || buf[z - 1] == '\t')) z--;
    x->location.len = 0;
    sv_buf_add(&x->location, buf + a, z - a);
  } else if (len > 12 && strncasecmp(buf, "Retry-After:", 12) == 0) {
    size_t a = 12, z = len;
    while (a < z && (buf[a] == ' ' || buf[a] == '\t')) a++;
    while (z > a && (buf[z - 1] == '\r' || buf[z - 1] == '\n' || buf[z - 1] == ' ')) z--;
    if (z - a >= sizeof x->retry_after) z = a + sizeof x->retry_after - 1;
    memcpy(x->retry_after, buf + a, z - a);
    x->retry_after[z - a] = '\0';
  } else if (x->op == SV_OP_DOWNLOAD && len > 14 && strncasecmp(buf, "Content-Range:", 14) == 0) {
    long long a = -1, b = -1, t = -1;
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%.*s", (int)(len - 14 < 120 ? len - 14 : 120), buf + 14);
    if (sscanf(tmp, " bytes %lld-%lld/%lld", &a, &b, &t) == 3 && a >= 0 && b >= a && t > b) {
      x->range_start = (double)a;
      x->range_total = (double)t;
    }
  }
  return len;
}

static size_t on_api_body(char *buf, size_t size, size_t n, void *ud) {
  sv_xfer *x = ud;
  size_t len = size * n;
  if (x->recv.len + len > x->max_body) {
    /* keep what fits: the start of an over-long create answer may name its task */
    sv_buf_add(&x->recv, buf, x->max_body - x->recv.len);
    x->too_big = 1;
    return 0;
  }
  sv_buf_add(&x->recv, buf, len);
  return x->recv.oom ? 0 : len;
}

/* A download's bytes so far and its size (-1: unknown), set by its thread. */
static void set_progress(sv_xfer *x, double have, double total) {
  pthread_mutex_lock(&x->lock);
  x->have = have;
  x->total = total;
  pthread_mutex_unlock(&x->lock);
}

/* len more bytes are in the file: 1, or 0 when the owner let go (stop). */
static int add_progress(sv_xfer *x, double len) {
  int go;
  pthread_mutex_lock(&x->lock);
  x->have += len;
  go = !x->abandoned;
  pthread_mutex_unlock(&x->lock);
  return go;
}

/* The .part could not be written: the exchange ends as SV_WIRE_IO, saying why. */
static int io_failed(sv_xfer *x, sv_buf *why) {
  snprintf(x->message, sizeof x->message, "%s", sv_buf_cstr(why));
  sv_buf_free(why);
  x->io_failed = 1;
  return -1;
}

/* The first bytes of a download's answer decide where its body goes: a 200 to
   the .part from byte 0 (a new file when it holds bytes), a 206 from the byte
   its Content-Range names, which must be one we have (the .part cut there),
   anything else to memory (an error page).  The nginx transport does the same
   (ngx_wire.lua, start_file). */
static int start_body(sv_xfer *x) {
  long status = 0;
  curl_off_t cl = -1;
  sv_buf why;
  int short_;
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  x->body_started = 1;
  x->body_to_file = 0;
  if (status != 200 && status != 206) return 0;
  if (status == 206 && !(x->range_start >= 0 && x->range_start <= x->offset)) { /* a gap we cannot fill */
    x->bad_range = 1;
    return -1;
  }
  curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
  if (status == 206) set_progress(x, x->range_start, x->range_total);
  else set_progress(x, 0, cl >= 0 ? (double)cl : -1); /* the server sent everything: start again */
  sv_buf_init(&why);
  if (x->have > 0 && sv_part_truncate(x->part, x->have, &why) != 0) return io_failed(x, &why);
  if (x->have == 0 && sv_part_at(x->part) > 0) {
    sv_part_free(x->part);
    if (!(x->part = sv_part_open(x->file, 0, &short_, &why))) return io_failed(x, &why);
  }
  x->body_to_file = 1;
  return 0;
}

static size_t on_video_body(char *buf, size_t size, size_t n, void *ud) {
  sv_xfer *x = ud;
  size_t len = size * n;
  sv_buf why;
  if (!x->body_started && start_body(x)) return 0;
  if (!x->body_to_file) {
    if (x->recv.len < ERROR_PAGE_MAX) sv_buf_add(&x->recv, buf, len);
    return len;
  }
  sv_buf_init(&why);
  if (sv_part_write(x->part, buf, len, &why) != 0) {
    io_failed(x, &why);
    return 0;
  }
  return add_progress(x, (double)len) ? len : 0;
}

/* libcurl's progress callback, on a download's thread: non-zero ends the
   transfer (its owner let go of it) */
static int on_fetch_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  sv_xfer *x = ud;
  int stop;
  (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
  pthread_mutex_lock(&x->lock);
  stop = x->abandoned;
  pthread_mutex_unlock(&x->lock);
  return stop;
}

/* A download's connection, opened by libcurl on its thread: kept (under the
   lock) so that abandon() can shut it down, which ends a wait for bytes at once. */
static curl_socket_t on_fetch_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a) {
  sv_xfer *x = ud;
  curl_socket_t fd;
  int type = a->socktype;
  (void)purpose;
#ifdef SOCK_CLOEXEC
  type |= SOCK_CLOEXEC;
#endif
  fd = socket(a->family, type, a->protocol);
  if (fd == CURL_SOCKET_BAD) return fd;
  pthread_mutex_lock(&x->lock);
  if (x->abandoned) {
    close(fd);
    fd = CURL_SOCKET_BAD;
  } else if (x->sock[0] == CURL_SOCKET_BAD) {
    x->sock[0] = fd;
  } else if (x->sock[1] == CURL_SOCKET_BAD) {
    x->sock[1] = fd; /* a third at once is not kept: abandon waits for a callback then */
  }
  pthread_mutex_unlock(&x->lock);
  return fd;
}

static int on_fetch_close(void *ud, curl_socket_t fd) {
  sv_xfer *x = ud;
  int i;
  pthread_mutex_lock(&x->lock);
  for (i = 0; i < 2; i++)
    if (x->sock[i] == fd) x->sock[i] = CURL_SOCKET_BAD;
  pthread_mutex_unlock(&x->lock);
  return close(fd);
}

/* The owner lets go of a running download: its thread stops at its next
   callback, or at once when it waits for bytes (its socket is shut down). */
static void abandon(sv_xfer *x) {
  int i;
  pthread_mutex_lock(&x->lock);
  x->abandoned = 1;
  for (i = 0; i < 2; i++)
    if (x->sock[i] != CURL_SOCKET_BAD) shutdown(x->sock[i], SHUT_RDWR);
  pthread_mutex_unlock(&x->lock);
}

/* ------------------------------------------------------------ sending */

static void fetch_queue_push(sv_http *h, sv_xfer *x);
static void fetch_start(sv_http *h);

void sv_http_set_max_connections(sv_http *h, int max_connections) {
  h->max_conns = max_connections < 1 ? 1 : max_connections > 1024 ? 1024 : max_connections;
  share_connections(h);
  fetch_start(h); /* more slots: a waiting download may start */
}

static int add_header(struct curl_slist **list, const char *line) {
  struct curl_slist *l = curl_slist_append(*list, line);
  if (!l) return -1;
  *list = l;
  return 0;
}

/* The exchange's header lines: a download's (never the key: the video lives
   on another host), an API request's (the key when asked), a notify's (its
   webhook-* lines).  0, or -1 out of memory. */
static int set_headers(sv_http *h, sv_xfer *x, const sv_send *s) {
  const char *p = s->headers ? s->headers : "", *nl;
  if (x->op == SV_OP_DOWNLOAD) {
    char range[64];
    snprintf(range, sizeof range, "Range: bytes=%.0f-", x->offset);
    return add_header(&x->headers, "Accept: video/mp4, */*") || (x->offset > 0 && add_header(&x->headers, range))
           ? -1 : 0;
  }
  if (s->auth && x->op != SV_OP_NOTIFY) {
    sv_buf b;
    int rc;
    sv_buf_init(&b);
    sv_buf_addf(&b, "Authorization: Bearer %s", h->api_key);
    rc = b.oom ? -1 : add_header(&x->headers, sv_buf_cstr(&b));
    memset(b.data ? b.data : (char *)"", 0, b.len);
    sv_buf_free(&b);
    if (rc) return -1;
  }
  /* "Expect:" keeps libcurl from waiting for a 100-continue before a body */
  if (add_header(&x->headers, "Accept: application/json") ||
      (s->body && (add_header(&x->headers, "Content-Type: application/json") || add_header(&x->headers, "Expect:"))))
    return -1;
  while ((nl = strchr(p, '\n')) != NULL) { /* a notify's lines (notify_headers_ok checked them) */
    char line[512];
    size_t n = (size_t)(nl - p);
    memcpy(line, p, n);
    line[n] = '\0';
    if (add_header(&x->headers, line)) return -1;
    p = nl + 1;
  }
  return 0;
}

/* The options of the exchange's easy handle: its client's (sv_send's
   user_agent, ca_file and connect_timeout), else the transport's. */
static void setup_easy(sv_http *h, sv_xfer *x, const sv_send *s) {
  CURL *e = x->easy;
  const char *ca_file = s->user_agent ? s->ca_file : h->ca_file;
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  SV_LIMIT_PROTOCOLS(e);
  curl_easy_setopt(e, CURLOPT_USERAGENT, s->user_agent ? s->user_agent : h->user_agent);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, to_ms(s->user_agent ? s->connect_timeout : h->connect_timeout));
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  if (ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
  if (s->stall > 0) {
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, to_s(s->stall));
  }
  /* A request that must not ride a reused connection: when a kept-alive connection
     dies under a request, libcurl silently sends it again on a new one, and a
     create the server already took would be paid twice.  The new connection is
     still kept for the exchanges that follow. */
  if (s->fresh) curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
  if (s->op == SV_OP_DOWNLOAD) {
    /* reads (and so writes to the .part) of up to 128 KiB, not libcurl's 16: a
       200 MB video in about 1,600 recv, poll and write calls each, not 12,000
       (the curl tool reads 100 KB at a time) */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 128L * 1024);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_video_body);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_fetch_progress);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_fetch_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_fetch_close);
  } else {
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_api_body);
  }
  if (s->body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, sv_buf_cstr(&x->send));
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)x->send.len);
  }
}

/* The .part a download writes through (sv_part: never through a symbolic or
   a hard link planted at its name).  It goes on from the .part an unfinished
   attempt here left (h->left) only while that is still the file as written
   and holds the asked offset (cut there); with none left here, from a .part
   an earlier call left (sv_part_open at the offset); else, and for offset 0,
   from byte 0 in a new file, as the nginx transport does.  0, or -1 with err. */
static int open_part(sv_http *h, sv_xfer *x, sv_error *err) {
  sv_part *was = left_take(h, x->file);
  int short_ = 0, restart = was != NULL || x->offset <= 0;
  sv_buf why;
  sv_buf_init(&why);
  if (was && x->offset > 0 && x->offset <= sv_part_at(was) && sv_part_same(was) &&
      sv_part_truncate(was, x->offset, &why) == 0)
    x->part = was, was = NULL;
  else if (!was && x->offset > 0 && !(x->part = sv_part_open(x->file, x->offset, &short_, &why)))
    restart = short_;
  sv_part_free(was);
  if (!x->part && restart) {
    x->offset = 0;
    sv_buf_free(&why);
    x->part = sv_part_open(x->file, 0, &short_, &why);
  }
  if (!x->part) sv_error_set(err, SV_E_IO, "path", "%s", sv_buf_cstr(&why));
  sv_buf_free(&why);
  return x->part ? 0 : -1;
}

/* A notify's extra header lines: "Name: value\n" each, shorter than 512
   bytes, with no control character but their ending. */
static int notify_headers_ok(const char *p) {
  const char *nl;
  while (*p) {
    nl = strchr(p, '\n');
    if (!nl || nl == p || (size_t)(nl - p) >= 512 || !memchr(p, ':', (size_t)(nl - p)) ||
        !sv_header_value_ok(p, (size_t)(nl - p)))
      return 0;
    p = nl + 1;
  }
  return 1;
}

sv_xfer *sv_http_send(sv_http *h, const sv_send *s, sv_error *err) {
  sv_xfer *x;
  CURL *e;
  if (s->user_agent && (!sv_header_value_ok(s->user_agent, strlen(s->user_agent)) || !(s->connect_timeout > 0)))
    return sv_error_set(err, SV_E_INVALID, "user_agent",
                        "user_agent: control characters, or connect_timeout: not above 0"), NULL;
  if (!s->url) return sv_error_set(err, SV_E_INVALID, "url", "url: expected an http(s) URL, got nothing"), NULL;
  if (s->proxy && sv_url_check(s->proxy, strlen(s->proxy), "proxy", SV_URL_BASE, err) != 0) return NULL;
  if (sv_url_check(s->url, strlen(s->url), "url", SV_URL_ANY, err) != 0) return NULL;
  if (s->op != SV_OP_DOWNLOAD && s->max_body == 0) /* the options table gives the cap: no default here */
    return sv_error_set(err, SV_E_INVALID, "max_body", "max_body: no cap on the answer's size was given"), NULL;
  if (s->headers && !notify_headers_ok(s->headers))
    return sv_error_set(err, SV_E_INVALID, "headers",
                        "headers: expected \"Name: value\\n\" lines without control characters"), NULL;
  if (s->op == SV_OP_DOWNLOAD && (!s->file || !*s->file))
    return sv_error_set(err, SV_E_INVALID, "path", "path: expected a file path"), NULL;
  x = calloc(1, sizeof *x);
  if (!x) return sv_error_set(err, SV_E_IO, NULL, "out of memory"), NULL;
  if (s->op == SV_OP_DOWNLOAD && pthread_mutex_init(&x->lock, NULL) != 0) {
    free(x);
    return sv_error_set(err, SV_E_IO, NULL, "out of memory"), NULL;
  }
  x->h = h;
  x->op = s->op;
  x->total = x->range_start = x->range_total = -1;
  x->offset = s->offset > 0 ? s->offset : 0;
  x->follow = s->op == SV_OP_DOWNLOAD && s->follow; /* only downloads follow (fetch) */
  x->timeout = s->timeout > 0 ? s->timeout : 0;
  sv_buf_init(&x->location);
  x->have = x->offset;
  x->max_body = s->max_body;
  sv_buf_init(&x->send);
  sv_buf_init(&x->recv);
  x->url = strdup(s->url);
  if (s->body) sv_buf_add(&x->send, s->body, s->body_len);
  if (s->op == SV_OP_DOWNLOAD) { /* first: whether the .part can be resumed decides the Range */
    x->file = strdup(s->file);
    if (!x->file) {
      sv_xfer_free(x);
      return sv_error_set(err, SV_E_IO, NULL, "out of memory"), NULL;
    }
    if (open_part(h, x, err)) {
      sv_xfer_free(x);
      return NULL;
    }
    x->have = x->offset;
  }
  e = x->easy = curl_easy_init();
  if (!x->url || x->send.oom || !e || set_headers(h, x, s)) {
    sv_xfer_free(x);
    return sv_error_set(err, SV_E_IO, NULL, "out of memory"), NULL;
  }
  setup_easy(h, x, s);
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  curl_easy_setopt(e, CURLOPT_URL, x->url);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->curl_msg);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->timeout > 0 ? to_ms(s->timeout) : 0L);
  /* NULL lets libcurl read the environment (https_proxy, no_proxy, ...).  An
     https URL goes through a CONNECT tunnel, so the proxy never sees the key;
     an http one is sent to the proxy whole, key included. */
  curl_easy_setopt(e, CURLOPT_PROXY, s->proxy);
  if (s->op == SV_OP_DOWNLOAD) {
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, x);
    x->home = h;
    x->sock[0] = x->sock[1] = CURL_SOCKET_BAD;
    push_running(h, x);
    fetch_queue_push(h, x);
    fetch_start(h);
    return x;
  }
  if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
    sv_xfer_free(x);
    return sv_error_set(err, SV_E_IO, NULL, "libcurl refused the transfer"), NULL;
  }
  push_running(h, x);
  return x;
}


/* ----------------------------------------------------------- finishing */

/* What the wire says about an exchange libcurl ended. */
static void classify(sv_xfer *x, CURLcode rc) {
  curl_off_t sent = 0;
  const char *msg = x->curl_msg[0] ? x->curl_msg : curl_easy_strerror(rc);
  curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &sent);
  switch (rc) {
  case CURLE_OK: x->wire = SV_WIRE_NONE; return;
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_SSL_CONNECT_ERROR:
    x->wire = SV_WIRE_NOT_SENT;
    break;
  case CURLE_OPERATION_TIMEDOUT:
    x->wire = sent > 0 ? SV_WIRE_TIMEOUT : SV_WIRE_NOT_SENT;
    if (sent == 0) msg = "timed out before the request was sent";
    break;
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_URL_MALFORMAT:
  case CURLE_TOO_MANY_REDIRECTS:
    x->wire = SV_WIRE_FATAL;
    break;
  case CURLE_OUT_OF_MEMORY: /* libcurl says this of a header line too long to keep */
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_BAD_CONTENT_ENCODING:
    x->wire = sent > 0 ? SV_WIRE_GARBLED : SV_WIRE_NOT_SENT;
    if (rc == CURLE_OUT_OF_MEMORY) msg = "the answer's headers are too large";
    break;
  default:
    x->wire = sent > 0 ? SV_WIRE_BROKEN : SV_WIRE_NOT_SENT;
  }
  snprintf(x->message, sizeof x->message, "%s", msg);
}

static void end_xfer(sv_xfer *x, CURLcode rc) {
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
  if (x->too_big) {
    x->wire = SV_WIRE_GARBLED;
    snprintf(x->message, sizeof x->message, "the answer is larger than %lu bytes", (unsigned long)x->max_body);
  } else if (x->io_failed) {
    x->wire = SV_WIRE_IO; /* x->message: why the .part could not be written */
  } else if (x->refused) {
    x->wire = SV_WIRE_FATAL; /* x->message: why the redirect was not followed */
  } else if (x->bad_range) {
    x->wire = SV_WIRE_BROKEN;
    snprintf(x->message, sizeof x->message, "the server sent a byte range that does not follow the %.0f bytes we have",
             x->offset);
  } else {
    classify(x, rc);
  }
  release_easy(x);
  if (x->body_to_file && x->wire == SV_WIRE_NONE && x->total < 0) x->total = x->have;
  unlink_xfer(x);
  push_done(x->h, x);
}

/* ----------------------------------------------------------- downloads */

static void xfer_destroy(sv_xfer *x);

static int is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* A download's transfer, its redirects followed by hand (at most 5): each
   Location is resolved against the URL that answered it (sv_url_resolve) and
   followed only when sv_url_check takes it, the same rule as the nginx
   transport's; a refused one ends the exchange as SV_WIRE_FATAL (x->refused,
   the checker's message).  The exchange's timeout covers every hop. */
static CURLcode fetch(sv_xfer *x) {
  CURLcode rc;
  int hops;
  x->t0 = sv_monotonic();
  for (hops = 0;; hops++) {
    long status = 0;
    sv_buf to;
    sv_error err;
    char *url;
    rc = curl_easy_perform(x->easy);
    if (rc != CURLE_OK || !x->follow) return rc;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (!is_redirect(status) || x->location.len == 0) return rc;
    x->refused = 1;
    if (hops == 5) {
      snprintf(x->message, sizeof x->message, "more than 5 redirects");
      return rc;
    }
    sv_buf_init(&to);
    sv_error_clear(&err);
    if (x->location.oom || sv_url_resolve(x->url, strlen(x->url), x->location.data, x->location.len, &to) ||
        !(url = malloc(to.len + 1))) {
      snprintf(x->message, sizeof x->message, "out of memory following a redirect");
      sv_buf_free(&to);
      return rc;
    }
    if (sv_url_check(to.data, to.len, "redirect", SV_URL_ANY, &err) != 0) {
      size_t n = strlen(err.message);
      if (n >= sizeof x->message) n = sizeof x->message - 1;
      memcpy(x->message, err.message, n);
      x->message[n] = '\0';
      sv_buf_free(&to);
      free(url);
      return rc;
    }
    memcpy(url, to.data, to.len + 1); /* checked: no NUL inside */
    sv_buf_free(&to);
    free(x->url);
  sv_buf_free(&x->location);
    x->url = url;
    x->refused = 0;
    /* the next answer starts afresh: the redirect's page is not the video's */
    x->body_started = x->body_to_file = 0;
    x->recv.len = 0;
    curl_easy_setopt(x->easy, CURLOPT_URL, x->url);
    if (x->timeout > 0) {
      double left = x->timeout - (sv_monotonic() - x->t0);
      curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, left > 0.001 ? to_ms(left) : 1L);
    }
  }
}

/* A download's thread: the whole transfer, the writes and the close.  It runs
   at the caller's priority (a script waiting for its video is not background
   work); it mostly waits for bytes, and its CPU is the kernel's copies. */
static void *fetch_thread(void *arg) {
  sv_xfer *x = arg;
  sv_http *home;
  CURLcode rc;
  int last;
  sv_buf why;
  rc = fetch(x);
  if (rc == CURLE_OK && !x->body_started) start_body(x); /* an empty 200: from byte 0, nothing written */
  /* what was received is in the file before anyone looks (the owner's commit
     checks that the file holds what went through the .part) */
  sv_buf_init(&why);
  if (x->part && sv_part_flush(x->part, &why) != 0 && rc == CURLE_OK && !x->io_failed) io_failed(x, &why);
  sv_buf_free(&why);
  pthread_mutex_lock(&x->lock);
  x->fetch_rc = rc;
  x->fetched = 1;
  if (x->h) curl_multi_wakeup(x->h->multi); /* a poll that waits looks at it now */
  home = x->home;
  last = --x->refs == 0;
  pthread_mutex_unlock(&x->lock);
  if (last) xfer_destroy(x); /* its owner let go meanwhile */
  pthread_mutex_lock(&home->threads_lock); /* the last word: h may go once it is said */
  if (--home->threads_alive == 0) pthread_cond_broadcast(&home->threads_gone);
  pthread_mutex_unlock(&home->threads_lock);
  return NULL;
}

/* The owner's look at a download's thread, never waiting for it: 1 when it is
   done, 0 when not yet, -1 when its lock is busy (then seen_* stay as they were). */
static int look(sv_xfer *x, CURLcode *rc) {
  int fetched;
  if (pthread_mutex_trylock(&x->lock) != 0) return -1;
  fetched = x->fetched;
  *rc = x->fetch_rc;
  x->seen_have = x->have;
  x->seen_total = x->total;
  pthread_mutex_unlock(&x->lock);
  return fetched;
}

/* *p, a download on h->fetching, leaves it: the owner is done with its thread. */
static sv_xfer *fetching_drop(sv_http *h, sv_xfer **p) {
  sv_xfer *x = *p;
  *p = x->fnext;
  x->fnext = NULL;
  x->reaped = 1;
  h->n_fetching--;
  share_connections(h);
  return x;
}

static void fetch_queue_push(sv_http *h, sv_xfer *x) {
  x->waiting = 1;
  x->fnext = NULL;
  if (h->fetch_queue_tail) h->fetch_queue_tail->fnext = x;
  else h->fetch_queue = x;
  h->fetch_queue_tail = x;
  h->n_waiting++;
}

/* Takes x off h's download lists (its thread, if any, runs on). */
static void fetch_unlist(sv_http *h, sv_xfer *x) {
  sv_xfer **p, *prev = NULL;
  if (!h) return;
  if (x->waiting) {
    for (p = &h->fetch_queue; *p; prev = *p, p = &(*p)->fnext)
      if (*p == x) {
        *p = x->fnext;
        if (h->fetch_queue_tail == x) h->fetch_queue_tail = prev;
        h->n_waiting--;
        break;
      }
    x->waiting = 0;
  } else if (x->threaded && !x->reaped) {
    for (p = &h->fetching; *p; p = &(*p)->fnext)
      if (*p == x) {
        fetching_drop(h, p);
        break;
      }
    x->reaped = 1;
  }
  x->fnext = NULL;
}

/* Downloads waiting for a slot get a thread while there are slots.  One whose
   thread cannot start ends at once, not sent. */
static void fetch_start(sv_http *h) {
  while (h->fetch_queue && h->n_fetching < fetch_slots(h)) {
    sv_xfer *x = h->fetch_queue;
    pthread_t t;
    int rc;
    h->fetch_queue = x->fnext;
    if (!h->fetch_queue) h->fetch_queue_tail = NULL;
    h->n_waiting--;
    x->waiting = 0;
    x->fnext = NULL;
    x->refs = 2; /* the owner and the thread */
    x->threaded = 1;
    /* its last word (its count in h) comes before its last instructions, which
       are this module's: a host that closes the transport and then unloads the
       module (lua_close dlcloses it) must not unmap them under the thread */
    sv_helper_pin_module();
    pthread_mutex_lock(&h->threads_lock);
    h->threads_alive++;
    pthread_mutex_unlock(&h->threads_lock);
    rc = sv_helper_start(&t, fetch_thread, x);
    if (rc != 0) {
      pthread_mutex_lock(&h->threads_lock);
      h->threads_alive--;
      pthread_mutex_unlock(&h->threads_lock);
      x->threaded = 0;
      x->refs = 0;
      x->wire = SV_WIRE_NOT_SENT;
      snprintf(x->message, sizeof x->message, "cannot start the download's thread: %s", strerror(rc));
      release_easy(x);
      unlink_xfer(x);
      push_done(h, x);
      continue;
    }
    pthread_detach(t);
    x->fnext = h->fetching;
    h->fetching = x;
    h->n_fetching++;
    share_connections(h);
  }
}

/* Downloads whose thread is done are finished; a busy lock is looked at on the
   next poll (the owner never waits for a thread).  Returns how many locks were
   busy: a thread may be saying it is done (its wake-up already spent). */
static int fetch_reap(sv_http *h) {
  sv_xfer **p = &h->fetching;
  int busy = 0;
  while (*p) {
    CURLcode rc = CURLE_OK;
    int done = look(*p, &rc);
    if (done < 0) busy++;
    if (done > 0) end_xfer(fetching_drop(h, p), rc);
    else p = &(*p)->fnext;
  }
  if (h->fetch_queue) fetch_start(h);
  return busy;
}

static void collect(sv_http *h) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
    sv_xfer *x = NULL;
    if (m->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    if (x && x->list == L_RUNNING) end_xfer(x, m->data.result);
  }
}

/* A poll that may wait starts with libcurl's wait, not with a pass: that wait
   returns at once when a pass has work (an exchange just added, a timer due,
   bytes in, a download's thread done), so a pass first would only repeat the
   caller's last one, at the price of a socket check per exchange (libcurl's own
   curl_easy_perform waits first too).  A poll that may not wait makes one pass.
   Downloads are looked at on every round: a look is a trylock per download. */
int sv_http_poll(sv_http *h, double max_wait) {
  double start = sv_monotonic();
  int running = 0, pass = !(max_wait > 0);
  for (;;) {
    double left;
    int busy = h->fetching || h->fetch_queue ? fetch_reap(h) : 0;
    if (h->n_running > h->n_fetching + h->n_waiting && pass) {
      curl_multi_perform(h->multi, &running);
      collect(h);
    }
    if (h->n_done || !(max_wait > 0)) break;
    left = start + max_wait - sv_monotonic();
    if (left <= 0 && pass) break;
    if (!h->n_running) { sv_sleep(left > 3600 ? 3600 : left); break; }
    if (left > 3600) left = 3600;
    if (left > 0.001 && busy) left = 0.001; /* a lock to look at again soon */
    /* with downloads only, this waits for a thread's wake-up (or the time) */
    curl_multi_poll(h->multi, NULL, 0, left > 0 ? (int)ceil(left * 1000) : 0, NULL);
    pass = 1;
  }
  return h->n_done;
}

sv_xfer *sv_http_finished(sv_http *h) {
  sv_xfer *x = h->done;
  if (x) {
    unlink_xfer(x);
    x->list = L_NONE;
  }
  return x;
}

/* ------------------------------------------------------------- results */

void sv_xfer_exchange(const sv_xfer *x, sv_exchange *out) {
  memset(out, 0, sizeof *out);
  out->op = x->op;
  out->status = x->status;
  out->body = x->recv.data ? x->recv.data : "";
  out->body_len = x->recv.len;
  out->retry_after = x->retry_after[0] ? x->retry_after : NULL;
  out->wire = x->wire;
  out->message = x->message;
  out->bytes = x->have;
  out->total = x->total;
}

sv_part *sv_xfer_part(sv_xfer *x, int whole) {
  sv_part *part = x->part;
  if (!part || x->list != L_NONE || (x->threaded && !x->reaped)) return NULL;
  x->part = NULL;
  if (whole) return part;
  if (x->h) left_put(x->h, part);
  else sv_part_free(part); /* the transport is closed */
  return NULL;
}

/* A download's thread moves these: read under its lock, or the last look when
   the lock is busy (the caller never waits for the thread). */
void sv_xfer_progress(sv_xfer *x, double *bytes, double *total) {
  if (x->threaded && !x->reaped) {
    CURLcode rc;
    look(x, &rc);
    *bytes = x->seen_have;
    *total = x->seen_total;
  } else {
    *bytes = x->have;
    *total = x->total;
  }
}

void sv_xfer_set_user(sv_xfer *x, long long user) { x->user = user; }

long long sv_xfer_user(const sv_xfer *x) { return x->user; }

/* The owner lets go of x (or a download's thread, when it is the last). */
void sv_xfer_free(sv_xfer *x) {
  if (!x) return;
  if (x->threaded) {
    int last;
    if (x->list != L_NONE || !x->reaped) { /* the owner's side, its thread maybe running */
      fetch_unlist(x->h, x);
      unlink_xfer(x);
    }
    abandon(x);
    pthread_mutex_lock(&x->lock);
    x->h = NULL; /* its thread wakes no poll of h now */
    last = --x->refs == 0;
    pthread_mutex_unlock(&x->lock);
    if (!last) return; /* the thread frees it */
  } else {
    fetch_unlist(x->h, x);
  }
  xfer_destroy(x);
}

/* Frees x, off every list; the last reference's holder calls it. */
static void xfer_destroy(sv_xfer *x) {
  if (x->threaded) x->h = NULL; /* a thread's: off h's lists already, and h may be gone */
  release_easy(x); /* may close a kept connection: on_fetch_close takes the lock */
  if (x->op == SV_OP_DOWNLOAD) pthread_mutex_destroy(&x->lock);
  sv_part_free(x->part);
  unlink_xfer(x);
  sv_buf_free(&x->send);
  sv_buf_free(&x->recv);
  free(x->url);
  free(x->file);
  free(x);
}
