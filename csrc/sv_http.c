/* The libcurl transport: it moves bytes and nothing else.  One sv_http is one
   multi handle, whose connection cache gives keep-alive across exchanges; one
   sv_xfer is one HTTP exchange.  Retries, deadlines, the answer's meaning and the
   download rules (.part, resume, refresh, commit) live above it (sv_call.c and the
   shared Lua), so that another transport can take its place.  Nothing here blocks
   longer than the caller's max_wait, and no callback calls into Lua. */
#include "sv_core.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef O_NOFOLLOW
#define O_NOFOLLOW 0
#endif

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
/* A poll that may not wait (a game's step(0), once a frame) writes video bytes
   for at most this long: then the downloads pause until the next poll.  Without
   it one poll takes whatever the socket holds (libcurl reads up to 100 buffers
   a call: 1.6 MB, a few ms of writes). */
#define POLL_WRITE_BUDGET 0.0015
/* A download's bytes reach the file through a helper thread (sv_writer,
   sv_commit.c) from a ring this large; a full ring pauses the transfer. */
#define WRITER_RING (2 * 1024 * 1024)
/* Easy handles kept after their exchange for the next ones: a handle is costly
   to make and to free, and sequential queries take one each.  A handle that
   served an API GET keeps its options for the next API GET (only what belongs to
   the exchange is set again: curl_easy_perform's reuse); any other is reset. */
#define IDLE_MAX 8

enum { L_NONE, L_RUNNING, L_DONE };

struct sv_xfer {
  sv_http *h;
  sv_xfer *prev, *next;
  int list;
  void *owner;
  sv_op op;
  CURL *easy;
  struct curl_slist *headers; /* a download's own; API requests share h->api_headers */
  char *url;
  sv_buf send, recv;
  size_t max_body;
  char retry_after[64];
  long status;
  sv_transport tr;
  char message[CURL_ERROR_SIZE + 96];
  char curl_msg[CURL_ERROR_SIZE];
  int too_big;
  int plain_get; /* an API GET: no body, not fresh (its handle may serve the next one as it is) */
  /* downloads */
  int fd, io_errno, body_started, body_to_file, bad_range, paused;
  sv_writer *writer; /* owns fd once started */
  int draining;      /* libcurl is done; the writer is not yet */
  double offset, have, total, range_start, range_total;
};

struct sv_http {
  CURLM *multi;
  char *api_key, *ca_file, *user_agent;
  double connect_timeout;
  sv_xfer *running, *done, *done_tail;
  int n_running, n_done, n_draining;
  double write_until; /* downloads pause after this time (monotonic); 0: never */
  CURL *idle[IDLE_MAX]; /* easy handles kept for the next exchanges */
  unsigned char idle_get[IDLE_MAX]; /* 1: still set up for an API GET; 0: reset */
  int n_idle;
  /* the header lists of API requests, made once: [auth + 2 * body] */
  struct curl_slist *api_headers[4];
};

/* ------------------------------------------------------------- helpers */

static char *dupstr(const char *s) {
  size_t n;
  char *p;
  if (!s) return NULL;
  n = strlen(s) + 1;
  p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

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

/* keep: the exchange ended normally, its handle may serve the next one */
static void release_easy(sv_xfer *x, int keep) {
  if (x->easy) {
    sv_http *h = x->h;
    if (h && x->list == L_RUNNING) curl_multi_remove_handle(h->multi, x->easy);
    if (keep && h && h->n_idle < IDLE_MAX) {
      if (x->plain_get) curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, NULL); /* x goes; set anew on reuse */
      else curl_easy_reset(x->easy); /* nothing of this exchange stays (options, pointers into x) */
      h->idle_get[h->n_idle] = (unsigned char)(x->plain_get != 0);
      h->idle[h->n_idle++] = x->easy;
    } else {
      curl_easy_cleanup(x->easy);
    }
    x->easy = NULL;
  }
  if (x->headers) { curl_slist_free_all(x->headers); x->headers = NULL; }
}

static void detach_easy(sv_xfer *x) { release_easy(x, 0); }

/* A header list that holds the key: wiped before it is freed. */
static void free_secret_list(struct curl_slist *l) {
  struct curl_slist *i;
  for (i = l; i; i = i->next)
    if (i->data) memset(i->data, 0, strlen(i->data));
  curl_slist_free_all(l);
}

static void close_file(sv_xfer *x) {
  if (x->writer) { sv_writer_free(x->writer); x->writer = NULL; x->fd = -1; }
  if (x->fd >= 0) { close(x->fd); x->fd = -1; }
  if (x->draining) {
    x->draining = 0;
    if (x->h) x->h->n_draining--;
  }
}

/* ------------------------------------------------------------- the pool */

sv_http *sv_http_new(const sv_http_config *cfg, char *errbuf, size_t errlen) {
  sv_http *h;
  /* curl_global_init is thread-safe from libcurl 7.84 on; before that the host
     must call it once itself before threads start (examples/embed/README.md). */
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(errbuf, errlen, "libcurl failed to initialise");
    return NULL;
  }
  if ((cfg->api_key && !sv_header_value_ok(cfg->api_key, strlen(cfg->api_key))) ||
      (cfg->user_agent && !sv_header_value_ok(cfg->user_agent, strlen(cfg->user_agent)))) {
    snprintf(errbuf, errlen, "the API key and the user agent may not hold control characters");
    curl_global_cleanup();
    return NULL;
  }
  h = calloc(1, sizeof *h);
  if (!h) { snprintf(errbuf, errlen, "out of memory"); curl_global_cleanup(); return NULL; }
  h->api_key = dupstr(cfg->api_key ? cfg->api_key : "");
  h->ca_file = dupstr(cfg->ca_file);
  h->user_agent = dupstr(cfg->user_agent ? cfg->user_agent : "starvideos");
  h->connect_timeout = cfg->connect_timeout;
  h->multi = curl_multi_init();
  if (!h->multi || !h->api_key || !h->user_agent || (cfg->ca_file && !h->ca_file)) {
    snprintf(errbuf, errlen, "out of memory");
    sv_http_free(h);
    return NULL;
  }
  {
    long n = cfg->max_connections < 1 ? 1 : cfg->max_connections > 1024 ? 1024 : cfg->max_connections;
    curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, n);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, n);
  }
  return h;
}

void sv_http_free(sv_http *h) {
  sv_xfer *x;
  int i;
  if (!h) return;
  while ((x = h->running) != NULL || (x = h->done) != NULL) {
    int draining = x->draining;
    detach_easy(x);
    close_file(x); /* a writer still busy drops the rest: the file is not whole */
    unlink_xfer(x);
    x->h = NULL; /* the owner frees it; it is finished as far as anyone can tell */
    if ((x->tr == SV_TR_NONE && x->status == 0) || draining) {
      x->tr = SV_TR_BROKEN;
      snprintf(x->message, sizeof x->message, "the transport was closed before the exchange finished");
    }
  }
  while (h->n_idle > 0) curl_easy_cleanup(h->idle[--h->n_idle]);
  for (i = 0; i < 4; i++) free_secret_list(h->api_headers[i]);
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

int sv_http_running(const sv_http *h) { return h->n_running; }
const char *sv_http_secret(const sv_http *h) { return h->api_key; }
void *sv_xfer_owner(const sv_xfer *x) { return x->owner; }

/* ----------------------------------------------------- curl callbacks */

static size_t on_header(char *buf, size_t size, size_t n, void *ud) {
  sv_xfer *x = ud;
  size_t len = size * n;
  if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) { /* a new answer (after a redirect, say) */
    x->retry_after[0] = '\0';
    x->range_start = x->range_total = -1;
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

/* The first bytes of a download's answer decide where its body goes: a 200 to the
   file from byte 0, a 206 to the file from the byte its Content-Range names (which
   must be one we have), anything else to memory (an error page). */
static int start_body(sv_xfer *x) {
  long status = 0;
  curl_off_t cl = -1;
  struct stat st;
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  x->body_started = 1;
  x->body_to_file = 0;
  if (status != 200 && status != 206) return 0;
  curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
  if (status == 206 && x->range_start >= 0) {
    if (x->range_start > x->offset) { x->bad_range = 1; return -1; } /* a gap we cannot fill */
    x->have = x->range_start;
    x->total = x->range_total;
  } else if (status == 206) {
    x->bad_range = 1;
    return -1;
  } else {
    x->have = 0; /* the server sent everything: start again */
    x->total = cl >= 0 ? (double)cl : -1;
  }
  /* Truncate only when the file holds more than we keep: ext4 and XFS flush a
     file that was truncated to nothing when it is closed (to save programs
     that rewrite without fsync), so a needless ftruncate(fd, 0) on the fresh
     file would make the close at the end write the whole video, inside poll. */
  if (fstat(x->fd, &st) != 0 || ((double)st.st_size != x->have && ftruncate(x->fd, (off_t)x->have) != 0) ||
      lseek(x->fd, (off_t)x->have, SEEK_SET) < 0) {
    x->io_errno = errno;
    return -1;
  }
  x->body_to_file = 1;
  x->writer = sv_writer_start(x->fd, WRITER_RING); /* NULL: written here, as it comes */
  return 0;
}

static size_t on_video_body(char *buf, size_t size, size_t n, void *ud) {
  sv_xfer *x = ud;
  size_t len = size * n, done = 0;
  if (!x->body_started && start_body(x)) return 0;
  if (!x->body_to_file) {
    if (x->recv.len < ERROR_PAGE_MAX) sv_buf_add(&x->recv, buf, len);
    return len;
  }
  if (x->h && x->h->write_until > 0 && sv_monotonic() > x->h->write_until) {
    x->paused = 1; /* libcurl keeps these bytes and hands them over again on resume */
    return CURL_WRITEFUNC_PAUSE;
  }
  if (x->writer) {
    int rc = sv_writer_put(x->writer, buf, len, &x->io_errno);
    if (rc > 0) { x->paused = 1; return CURL_WRITEFUNC_PAUSE; } /* the ring is full */
    if (rc < 0) return 0;
    x->have += (double)len;
    return len;
  }
  while (done < len) {
    ssize_t w = write(x->fd, buf + done, len - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      x->io_errno = errno;
      return 0;
    }
    done += (size_t)w;
  }
  x->have += (double)len;
  return len;
}

/* ------------------------------------------------------------ sending */

static int add_header(struct curl_slist **list, const char *line) {
  struct curl_slist *l = curl_slist_append(*list, line);
  if (!l) return -1;
  *list = l;
  return 0;
}

/* The header list of one API request, made once per kind (with the key or not,
   with a body or not) and shared by every request of that kind.  The user agent
   is one of its lines: libcurl would format CURLOPT_USERAGENT's line anew for
   each request. */
static struct curl_slist *api_headers(sv_http *h, int auth, int body) {
  struct curl_slist **slot = &h->api_headers[(auth ? 1 : 0) + (body ? 2 : 0)], *l = NULL;
  sv_buf b;
  int rc = 0;
  if (*slot) return *slot;
  if (auth) {
    sv_buf_init(&b);
    sv_buf_addf(&b, "Authorization: Bearer %s", h->api_key);
    rc = b.oom ? -1 : add_header(&l, sv_buf_cstr(&b));
    memset(b.data ? b.data : (char *)"", 0, b.len);
    sv_buf_free(&b);
  }
  if (!rc) {
    sv_buf_init(&b);
    sv_buf_addf(&b, "User-Agent: %s", h->user_agent);
    rc = b.oom ? -1 : add_header(&l, sv_buf_cstr(&b));
    sv_buf_free(&b);
  }
  /* "Expect:" keeps libcurl from waiting for a 100-continue before a body */
  if (rc || add_header(&l, "Accept: application/json") ||
      (body && (add_header(&l, "Content-Type: application/json") || add_header(&l, "Expect:")))) {
    free_secret_list(l);
    return NULL;
  }
  return *slot = l;
}

/* The request's headers: 0, or -1 out of memory. */
static int set_headers(sv_http *h, sv_xfer *x, const sv_send *s, struct curl_slist **list) {
  if (x->op == SV_OP_DOWNLOAD) {
    /* no API key here: the video lives on another host */
    if (add_header(&x->headers, "Accept: video/mp4, */*")) return -1;
    if (x->offset > 0) {
      char range[64];
      snprintf(range, sizeof range, "Range: bytes=%.0f-", x->offset);
      if (add_header(&x->headers, range)) return -1;
    }
    *list = x->headers;
    return 0;
  }
  *list = api_headers(h, s->auth, s->body != NULL);
  return *list ? 0 : -1;
}

/* The options a new (or reset) handle needs, the same for every exchange of its kind. */
static void setup_easy(sv_http *h, sv_xfer *x, const sv_send *s) {
  CURL *e = x->easy;
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  SV_LIMIT_PROTOCOLS(e);
  if (s->op == SV_OP_DOWNLOAD) curl_easy_setopt(e, CURLOPT_USERAGENT, h->user_agent); /* API requests: a header line */
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, to_ms(h->connect_timeout));
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  if (h->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
  if (s->stall > 0) {
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, to_s(s->stall));
  }
  if (s->follow) {
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
  }
  /* A request that must not ride a reused connection: when a kept-alive connection
     dies under a request, libcurl silently sends it again on a new one, and a
     create the server already took would be paid twice.  The new connection is
     still kept for the exchanges that follow. */
  if (s->fresh) curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
  if (s->op == SV_OP_DOWNLOAD) {
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_video_body);
  } else {
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_api_body);
  }
  if (s->body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, sv_buf_cstr(&x->send));
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)x->send.len);
  }
}

/* An easy handle for an exchange: a kept one when there is one (*ready when it
   is set up for an API GET and one is wanted), else a new one. */
static CURL *take_easy(sv_http *h, int get, int *ready) {
  int i;
  CURL *e;
  *ready = 0;
  if (h->n_idle == 0) return curl_easy_init();
  for (i = h->n_idle - 1; get && i >= 0; i--)
    if (h->idle_get[i]) {
      e = h->idle[i];
      h->idle[i] = h->idle[h->n_idle - 1];
      h->idle_get[i] = h->idle_get[h->n_idle - 1];
      h->n_idle--;
      *ready = 1;
      return e;
    }
  e = h->idle[--h->n_idle];
  if (h->idle_get[h->n_idle]) curl_easy_reset(e);
  return e;
}

sv_xfer *sv_http_send(sv_http *h, const sv_send *s, void *owner, sv_error *err) {
  sv_xfer *x;
  CURL *e;
  struct curl_slist *headers = NULL;
  int ready, skip = s->url ? sv_url_scheme(s->url, strlen(s->url)) : 0;
  if (skip <= 0)
    return sv_error_set(err, SV_E_INVALID, "url", "url: expected an http(s) URL with a host"), NULL;
  if (s->op == SV_OP_DOWNLOAD && (!s->file || !*s->file))
    return sv_error_set(err, SV_E_INVALID, "path", "path: expected a file path"), NULL;
  x = calloc(1, sizeof *x);
  if (!x) return sv_error_set(err, SV_E_IO, NULL, "out of memory"), NULL;
  x->h = h;
  x->owner = owner;
  x->op = s->op;
  x->fd = -1;
  x->total = x->range_start = x->range_total = -1;
  x->offset = s->offset > 0 ? s->offset : 0;
  x->have = x->offset;
  x->max_body = s->max_body ? s->max_body : 1024 * 1024;
  x->plain_get = s->op != SV_OP_DOWNLOAD && !s->body && !s->fresh;
  sv_buf_init(&x->send);
  sv_buf_init(&x->recv);
  x->url = dupstr(s->url);
  if (s->body) sv_buf_add(&x->send, s->body, s->body_len);
  e = x->easy = take_easy(h, x->plain_get, &ready);
  if (!x->url || x->send.oom || !e || set_headers(h, x, s, &headers)) {
    sv_xfer_free(x);
    return sv_error_set(err, SV_E_IO, NULL, "out of memory"), NULL;
  }
  if (s->op == SV_OP_DOWNLOAD) {
    /* never through a symlink: a planted .part must not redirect our writes.  A
       fresh download starts a new file (never O_TRUNC: see start_body; nor
       writing through a hard link planted at the .part) */
    if (x->offset > 0) {
      x->fd = open(s->file, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    } else {
      if (unlink(s->file) != 0 && errno != ENOENT) x->fd = -1;
      else x->fd = open(s->file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    }
    if (x->fd < 0) {
      sv_error_set(err, SV_E_IO, "path", "cannot write %s: %s", s->file,
                   errno == ELOOP ? "it is a symbolic link" : strerror(errno));
      sv_xfer_free(x);
      return NULL;
    }
  }
  if (!ready) setup_easy(h, x, s);
  /* what belongs to this exchange */
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  curl_easy_setopt(e, CURLOPT_URL, x->url);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->curl_msg);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->timeout > 0 ? to_ms(s->timeout) : 0L);
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
  case CURLE_OK: x->tr = SV_TR_NONE; return;
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_SSL_CONNECT_ERROR:
    x->tr = SV_TR_NOT_SENT;
    break;
  case CURLE_OPERATION_TIMEDOUT:
    x->tr = sent > 0 ? SV_TR_TIMEOUT : SV_TR_NOT_SENT;
    if (sent == 0) msg = "timed out before the request was sent";
    break;
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_URL_MALFORMAT:
  case CURLE_TOO_MANY_REDIRECTS:
    x->tr = SV_TR_FATAL;
    break;
  case CURLE_OUT_OF_MEMORY: /* libcurl says this of a header line too long to keep */
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_BAD_CONTENT_ENCODING:
    x->tr = sent > 0 ? SV_TR_GARBLED : SV_TR_NOT_SENT;
    if (rc == CURLE_OUT_OF_MEMORY) msg = "the answer's headers are too large";
    break;
  default:
    x->tr = sent > 0 ? SV_TR_BROKEN : SV_TR_NOT_SENT;
  }
  snprintf(x->message, sizeof x->message, "%s", msg);
}

static void settle_xfer(sv_xfer *x);

static void end_xfer(sv_xfer *x, CURLcode rc) {
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
  if (x->too_big) {
    x->tr = SV_TR_GARBLED;
    snprintf(x->message, sizeof x->message, "the answer is larger than %lu bytes", (unsigned long)x->max_body);
  } else if (x->io_errno) {
    x->tr = SV_TR_IO;
    snprintf(x->message, sizeof x->message, "cannot write the file: %s", strerror(x->io_errno));
  } else if (x->bad_range) {
    x->tr = SV_TR_BROKEN;
    snprintf(x->message, sizeof x->message, "the server sent a byte range that does not follow the %.0f bytes we have",
             x->offset);
  } else {
    classify(x, rc);
    if (x->tr == SV_TR_NONE && x->op == SV_OP_DOWNLOAD && !x->body_started && start_body(x) && x->io_errno) {
      x->tr = SV_TR_IO; /* an empty 200: the file is truncated to nothing */
      snprintf(x->message, sizeof x->message, "cannot write the file: %s", strerror(x->io_errno));
    }
  }
  x->paused = 0;
  release_easy(x, x->op != SV_OP_DOWNLOAD); /* a download's handle (pauses, ranges) is never kept */
  if (x->writer) {
    int err;
    sv_writer_end(x->writer);
    if (sv_writer_poll(x->writer, &err)) {
      x->draining = 1; /* finished by poll once the file is written and closed */
      x->h->n_draining++;
      return;
    }
  }
  settle_xfer(x);
}

/* Last: the file is written and closed (by the writer, or here), and the
   exchange is on the finished list.  A write that failed late makes it SV_TR_IO. */
static void settle_xfer(sv_xfer *x) {
  if (x->writer) {
    int err = 0;
    sv_writer_poll(x->writer, &err);
    if (err) {
      x->tr = SV_TR_IO;
      snprintf(x->message, sizeof x->message, "cannot write the file: %s", strerror(err));
    }
  }
  if (x->op == SV_OP_DOWNLOAD && x->body_to_file && x->total < 0 && x->tr == SV_TR_NONE) x->total = x->have;
  close_file(x);
  unlink_xfer(x);
  push_done(x->h, x);
}

/* Before each pass: downloads paused (a full ring, the budget of the last
   poll) go on; those whose writer is done are finished. */
static void resume(sv_http *h) {
  sv_xfer *x, *next;
  for (x = h->running; x; x = next) {
    int err;
    next = x->next;
    if (x->draining) {
      if (!sv_writer_poll(x->writer, &err)) settle_xfer(x);
    } else if (x->paused && x->easy) {
      x->paused = 0;
      curl_easy_pause(x->easy, CURLPAUSE_CONT); /* may write the kept bytes now */
    }
  }
}

/* Whether a pass soon could change something libcurl's sockets do not show. */
static int helpers_busy(const sv_http *h) {
  const sv_xfer *x;
  if (h->n_draining) return 1;
  for (x = h->running; x; x = x->next)
    if (x->paused) return 1;
  return 0;
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

static void nap(double s) {
  struct timespec ts, rem;
  if (!(s > 0)) return;
  if (s > 3600) s = 3600;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &rem) != 0 && errno == EINTR) ts = rem;
}

/* A poll that may wait starts with libcurl's wait, not with a pass: that wait
   returns at once when a pass has work (an exchange just added, a timer due,
   bytes in, a paused transfer resumed), so a pass first would only repeat the
   caller's last one, at the price of a socket check per exchange (libcurl's own
   curl_easy_perform waits first too).  A poll that may not wait makes one pass. */
int sv_http_poll(sv_http *h, double max_wait) {
  double start = sv_monotonic();
  int running = 0, pass = !(max_wait > 0);
  h->write_until = max_wait > 0 ? 0 : start + POLL_WRITE_BUDGET;
  for (;;) {
    double left;
    resume(h);
    if (h->n_running && pass) {
      curl_multi_perform(h->multi, &running);
      collect(h);
    }
    if (h->n_done || !(max_wait > 0)) break;
    left = start + max_wait - sv_monotonic();
    if (left <= 0 && pass) break;
    if (!h->n_running) { nap(left); break; }
    if (left > 3600) left = 3600;
    if (left > 0.001 && helpers_busy(h)) left = 0.001; /* a writer to look at again soon */
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
  out->tr = x->tr;
  out->message = x->message;
  out->bytes = x->have;
  out->total = x->total;
}

void sv_xfer_progress(const sv_xfer *x, double *bytes, double *total) {
  *bytes = x->have;
  *total = x->total;
}

void sv_xfer_free(sv_xfer *x) {
  if (!x) return;
  detach_easy(x);
  close_file(x);
  unlink_xfer(x);
  sv_buf_free(&x->send);
  sv_buf_free(&x->recv);
  free(x->url);
  free(x);
}
