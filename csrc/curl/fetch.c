/* The libcurl transport's downloads.  Each runs on a thread of its own
   (fetch_thread): curl_easy_perform, the writes to its .part (an sv_part) and
   their flush all happen there, so that a poll that may not wait (a game's
   step(0), once a frame) costs the same whether a video is coming in or not.
   The owner's poll only looks at whether the thread is done (a trylock: it
   never waits for it), and the thread's end wakes a poll that waits.  A
   download's connection counts against max_connections: the multi handle
   (multi.c) gets what the download threads leave. */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The .part of a download that ended unfinished, by its file's name, so that
   the next attempt at that file goes on through it only while it is still the
   file as written (sv_part_same): one replaced, cut or linked meanwhile
   (another download, another process) starts again at 0, as in the nginx
   transport. */
typedef struct sv_left {
  struct sv_left *next;
  sv_part *part;
} sv_left;

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

void sv_fetch_free_left(sv_http *h) {
  while (h->left) sv_part_free(left_take(h, sv_part_path(h->left->part)));
}

/* part, of a download that ended unfinished, kept for the next attempt at its
   file (in place of one kept there before); the oldest beyond SV_PARTS_KEPT go. */
static void left_put(sv_http *h, sv_part *part) {
  sv_left *l = malloc(sizeof *l), **p;
  int n = 0;
  sv_part_free(left_take(h, sv_part_path(part)));
  if (!l) { sv_part_free(part); return; }
  l->part = part;
  l->next = h->left;
  h->left = l;
  for (p = &h->left; *p && n < SV_PARTS_KEPT; p = &(*p)->next) n++;
  while ((l = *p) != NULL) { *p = l->next; sv_part_free(l->part); free(l); }
}

/* The multi handle's connections: max_connections less the download threads
   running, and at least 1 (API requests always have one). */
long sv_fetch_share(const sv_http *h) {
  long n = h->max_conns - h->n_fetching;
  return n < 1 ? 1 : n;
}

static void fetch_share(sv_http *h) {
  long n = sv_fetch_share(h);
  curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, n);
  curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, n);
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
   the .part from byte 0 (a new file when it holds bytes: never appended), a
   206 from the byte its Content-Range names, which must be the one asked (the
   .part cut there), anything else to memory (an error page).  The nginx
   transport does the same (nginx/wire.lua, start_file). */
static int start_body(sv_xfer *x) {
  long status = 0;
  curl_off_t cl = -1;
  sv_buf why = {0};
  int short_;
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  x->body_started = 1;
  x->body_to_file = 0;
  if (status != 200 && status != 206) return 0;
  if (status == 206 && x->range_start != x->offset) { /* not where it was asked to go on (or no range) */
    x->bad_range = 1;
    return -1;
  }
  curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
  if (status == 206) set_progress(x, x->range_start, x->range_total);
  else set_progress(x, 0, cl >= 0 ? (double)cl : -1); /* the server sent everything: start again */
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
  sv_buf why = {0};
  if (!x->body_started && start_body(x)) return 0;
  if (!x->body_to_file) {
    if (x->recv.len < SV_ERROR_PAGE_MAX) sv_buf_add(&x->recv, buf, len);
    return len;
  }
  /* never past the video's length (a 200's Content-Length, a 206's total), else max_body: refused there */
  if (x->have + (double)len > (x->total >= 0 ? x->total : (double)x->max_body))
    return x->too_big = 1, 0;
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
   lock) so that sv_fetch_abandon can shut it down, which ends a wait for bytes
   at once. */
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

/* A download's easy handle: its body to its .part (on_video_body), its
   progress and its sockets watched, so that its owner can stop it. */
void sv_fetch_setup(sv_http *h, sv_xfer *x) {
  CURL *e = x->easy;
  /* reads (and so writes to the .part) of up to 128 KiB, not libcurl's 16: a
     200 MB video in about 1,600 recv, poll and write calls each, not 12,000
     (the curl tool reads 100 KB at a time) */
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 128L * 1024);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_video_body);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_fetch_progress);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_fetch_socket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_fetch_close);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, x);
  x->home = h;
  x->sock[0] = x->sock[1] = CURL_SOCKET_BAD;
}

/* An exchange's connection (public only): refused (no socket: nothing reaches the
   address) when its address is not public, whatever name or redirect led
   there; libcurl may try the name's next address, but x->refused stands. */
static curl_socket_t on_media_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a) {
  sv_xfer *x = ud;
  const void *in = &a->addr;
  const unsigned char *ip = a->family == AF_INET ? (const unsigned char *)&((const struct sockaddr_in *)in)->sin_addr
                          : (const unsigned char *)&((const struct sockaddr_in6 *)in)->sin6_addr;
  const char *what = a->family == AF_INET || a->family == AF_INET6 ? sv_addr_private(ip, a->family == AF_INET6) : NULL;
  char name[INET6_ADDRSTRLEN] = "?";
  (void)purpose;
  if (!what) return socket(a->family, a->socktype, a->protocol);
  inet_ntop(a->family, ip, name, sizeof name);
  snprintf(x->message, sizeof x->message, SV_NOT_PUBLIC, name, what);
  x->refused = 1;
  return CURL_SOCKET_BAD;
}

/* An exchange that must reach only public addresses (a reference media URL's).  Direct, each address
   it connects to is checked (on a connection of its own: a kept one was made
   unchecked); through a proxy (the exchange's, or one libcurl reads from the
   environment, no_proxy aside), which resolves the names, each hop's host as
   written is (sv_curl_redirect; the first one: the caller's). */
void sv_media_setup(sv_xfer *x, const sv_send *s) {
  static const char *const vars[] = { "all_proxy", "ALL_PROXY", "https_proxy", "HTTPS_PROXY", "http_proxy" };
  int i, https = sv_url_scheme(s->url, strlen(s->url)) == 8;
  x->public_only = 1;
  for (i = 0; i < 5 && x->public_only == 1; i++) /* http_proxy for http, the https ones for https */
    if ((i < 2 || (i < 4) == https) && getenv(vars[i]) && *getenv(vars[i])) x->public_only = 2;
  if (s->proxy) x->public_only = 2;
  if (x->public_only == 2) return;
  curl_easy_setopt(x->easy, CURLOPT_OPENSOCKETFUNCTION, on_media_socket);
  curl_easy_setopt(x->easy, CURLOPT_OPENSOCKETDATA, x);
  curl_easy_setopt(x->easy, CURLOPT_FRESH_CONNECT, 1L);
}

/* The owner lets go of a running download: its thread stops at its next
   callback, or at once when it waits for bytes (its socket is shut down). */
void sv_fetch_abandon(sv_xfer *x) {
  int i;
  pthread_mutex_lock(&x->lock);
  x->abandoned = 1;
  for (i = 0; i < 2; i++)
    if (x->sock[i] != CURL_SOCKET_BAD) shutdown(x->sock[i], SHUT_RDWR);
  pthread_mutex_unlock(&x->lock);
}

/* The .part a download writes through (sv_part: never through a symbolic or a hard link planted at its name),
   from the one an unfinished attempt here left (h->left), by the rule of both transports (sv_part_resume).  0, or
   -1 with err. */
int sv_fetch_open(sv_http *h, sv_xfer *x, sv_error *err) {
  sv_buf why = {0};
  x->part = sv_part_resume(left_take(h, x->file), x->file, &x->offset, &why);
  if (!x->part) sv_error_set(err, SV_E_IO, "path", "%s", sv_buf_cstr(&why));
  sv_buf_free(&why);
  return x->part ? 0 : -1;
}

/* After an answer of x on its easy handle: 1 when it was a redirect that x
   follows (a download's, an exchange's), its target now x's URL and the
   handle's, to be performed next; else 0, x done, and a redirect refused
   (sv_redirect: the one rule of both transports) ends it as SV_WIRE_FATAL
   (x->refused, the rule's message).  The exchange's timeout covers every hop. */
int sv_curl_redirect(sv_xfer *x) {
  long status = 0;
  sv_buf to = {0};
  sv_error err;
  int rc;
  if (!x->follow) return 0;
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  sv_error_clear(&err);
  rc = sv_redirect(x->url, status, x->location.oom ? NULL : x->location.data, x->location.len, x->hops,
                   x->public_only == 2, &to, &err); /* (a Location memory ran out for: none, the answer as it is) */
  sv_buf_free(&x->location);
  if (rc == 0) return 0;
  free(x->url);
  x->url = rc > 0 ? strdup(to.data) : NULL;
  sv_buf_free(&to);
  if (!x->url) {
    x->refused = 1;
    snprintf(x->message, sizeof x->message, "%s", rc < 0 ? err.message : "out of memory following a redirect");
    return 0;
  }
  x->hops++;
  /* the next answer starts afresh: the redirect's page is not the video's */
  x->body_started = x->body_to_file = x->too_big = 0;
  x->recv.len = 0;
  curl_easy_setopt(x->easy, CURLOPT_URL, x->url);
  if (x->timeout > 0) {
    double left = x->timeout - (sv_monotonic() - x->t0);
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, left > 0.001 ? sv_curl_ms(left) : 1L);
  }
  return 1;
}

/* A download's transfer, its redirects followed by hand (sv_curl_redirect). */
static CURLcode fetch(sv_xfer *x) {
  CURLcode rc;
  x->t0 = sv_monotonic();
  do rc = curl_easy_perform(x->easy);
  while (rc == CURLE_OK && sv_curl_redirect(x));
  return rc;
}

/* A download's thread: the whole transfer, the writes and their flush.  It runs
   at the caller's priority (a script waiting for its video is not background
   work); it mostly waits for bytes, and its CPU is the kernel's copies. */
static void *fetch_thread(void *arg) {
  sv_xfer *x = arg;
  sv_http *home;
  CURLcode rc;
  int last;
  sv_buf why = {0};
  rc = fetch(x);
  if (rc == CURLE_OK && !x->body_started) start_body(x); /* an empty 200: from byte 0, nothing written */
  /* what was received is in the file before anyone looks (the owner's commit
     checks that the file holds what went through the .part) */
  if (x->part && sv_part_flush(x->part, &why) != 0 && rc == CURLE_OK && !x->io_failed) io_failed(x, &why);
  sv_buf_free(&why);
  pthread_mutex_lock(&x->lock);
  x->fetch_rc = rc;
  x->fetched = 1;
  if (x->h) curl_multi_wakeup(x->h->multi); /* a poll that waits looks at it now */
  home = x->home;
  last = --x->refs == 0;
  pthread_mutex_unlock(&x->lock);
  if (last) sv_curl_destroy(x); /* its owner let go meanwhile */
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
  fetch_share(h);
  return x;
}

/* Takes x off h's download lists (its thread, if any, runs on). */
void sv_fetch_unlist(sv_http *h, sv_xfer *x) {
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

/* Downloads waiting for a slot get a thread while there are slots: one
   connection is left to API requests, unless max_connections is 1 (then a
   download and an API request may both be open).  One whose thread cannot
   start ends at once, not sent. */
static void fetch_start(sv_http *h) {
  while (h->fetch_queue && h->n_fetching < (h->max_conns > 1 ? h->max_conns - 1 : 1)) {
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
      sv_curl_done(x);
      continue;
    }
    pthread_detach(t);
    x->fnext = h->fetching;
    h->fetching = x;
    h->n_fetching++;
    fetch_share(h);
  }
}

void sv_fetch_queue(sv_http *h, sv_xfer *x) {
  x->waiting = 1;
  x->fnext = NULL;
  if (h->fetch_queue_tail) h->fetch_queue_tail->fnext = x;
  else h->fetch_queue = x;
  h->fetch_queue_tail = x;
  h->n_waiting++;
  fetch_start(h);
}

/* Downloads whose thread is done are finished; a busy lock is looked at on the
   next poll (the owner never waits for a thread).  Returns how many locks were
   busy: a thread may be saying it is done (its wake-up already spent). */
int sv_fetch_reap(sv_http *h) {
  sv_xfer **p = &h->fetching;
  int busy = 0;
  while (*p) {
    CURLcode rc = CURLE_OK;
    int done = look(*p, &rc);
    if (done < 0) busy++;
    if (done > 0) sv_curl_end(fetching_drop(h, p), rc);
    else p = &(*p)->fnext;
  }
  if (h->fetch_queue) fetch_start(h);
  return busy;
}

void sv_http_set_max_connections(sv_http *h, int max_connections) {
  h->max_conns = max_connections < 1 ? 1 : max_connections > 1024 ? 1024 : max_connections;
  fetch_share(h);
  fetch_start(h); /* more slots: a waiting download may start */
  sv_curl_admit(h); /* (and a queued exchange: fewer wait for the transfers running to end) */
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
