/* The libcurl transport: it moves bytes and nothing else.  One sv_http is one multi handle, whose connection
   cache gives keep-alive across exchanges; one sv_xfer is one HTTP exchange, on that handle whatever its body's
   unit (body.c: memory, a tap, a file).  Retries, deadlines, the answer's meaning and the download rules (.part,
   resume, refresh, commit) live above it (the core's verdict and the shared Lua), so that another transport can
   take its place.  Nothing here blocks longer than the caller's max_wait, no callback calls into Lua, and no thread
   is started: every byte moves in the caller's polls. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Seconds to libcurl's milliseconds, without overflow whatever the caller passed. */
long sv_curl_ms(double s) {
  if (!(s > 0)) return 0;
  if (s > 86400.0 * 30) s = 86400.0 * 30;
  return (long)(s * 1000) + 1;
}

static void unlink_xfer(sv_xfer *x) {
  sv_list *l;
  if (!x->h || x->list == L_NONE) return;
  l = x->list == L_RUNNING ? &x->h->running : x->list == L_DONE ? &x->h->done : &x->h->held;
  if (x->prev) x->prev->next = x->next;
  else l->head = x->next;
  if (x->next) x->next->prev = x->prev;
  else l->tail = x->prev;
  l->n--;
  x->prev = x->next = NULL;
  x->list = L_NONE;
}

/* x last on h's list `which` (L_RUNNING, L_DONE). */
static void push(sv_http *h, sv_xfer *x, int which) {
  sv_list *l = which == L_RUNNING ? &h->running : which == L_DONE ? &h->done : &h->held;
  x->list = which;
  x->next = NULL;
  x->prev = l->tail;
  if (l->tail) l->tail->next = x;
  else l->head = x;
  l->tail = x;
  l->n++;
}

/* A header list that may hold the key: wiped before it is freed. */
static void free_secret_list(struct curl_slist *l) {
  struct curl_slist *i;
  for (i = l; i; i = i->next)
    if (i->data) memset(i->data, 0, strlen(i->data));
  curl_slist_free_all(l);
}

/* The multi handle's room: the transport holds an exchange queued (never added, never written) until there is
   room, and adds it when one leaves, first in first out (libcurl's own bounds count the connections it opens, not
   the kept-alive ones it reuses).  Files take at most max_connections less one (one is left to the service's requests, unless
   max_connections is 1: then a download and a request may both be open); the others, what the files leave. */
static int room(const sv_http *h, const sv_xfer *x) {
  long files = h->max_conns > 1 ? h->max_conns - 1 : 1, rest = h->max_conns - h->n_files;
  return x->file ? h->n_files < files : h->n_multi - h->n_files < (rest < 1 ? 1 : rest);
}

static int multi_add(sv_http *h, sv_xfer *x) {
  if (curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) return -1;
  x->in_multi = 1, h->n_multi++, h->n_files += x->file != NULL;
  return 0;
}

static void admit(sv_http *h) {
  sv_xfer *x, *next;
  for (x = h->running.head; x && h->n_queued > 0; x = next) {
    next = x->next;
    if (!x->queued || !room(h, x)) continue;
    x->queued = 0, h->n_queued--;
    if (multi_add(h, x) == 0) continue;
    x->wire = SV_WIRE_NOT_SENT;
    snprintf(x->message, sizeof x->message, "libcurl refused the transfer");
    sv_curl_done(x);
  }
}

/* The transfers on the multi handle are room's alone: libcurl's own bound on the connections it opens
   (CURLMOPT_MAX_TOTAL_CONNECTIONS) would hold a request back behind the downloads running once max_connections
   was lowered under them.  Its cache (in use or idle: a transfer's end closes the oldest idle one past it) holds
   as many as room lets run, 2 with 1 (a download and a request). */
void sv_http_set_max_connections(sv_http *h, int max_connections) {
  h->max_conns = max_connections < 1 ? 1 : max_connections > 1024 ? 1024 : max_connections;
  curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, h->max_conns > 1 ? h->max_conns : 2L);
  admit(h); /* (more room: fewer wait for the transfers running to end) */
}

/* The exchange's easy handle and header list go (its connection stays in the multi handle's cache). */
static void release_easy(sv_xfer *x) {
  if (x->queued && x->h) x->h->n_queued--;
  x->queued = 0;
  if (x->easy) {
    if (x->h && x->in_multi) {
      curl_multi_remove_handle(x->h->multi, x->easy);
      x->h->n_multi--, x->h->n_files -= x->file != NULL;
    }
    x->in_multi = 0;
    curl_easy_cleanup(x->easy);
    x->easy = NULL;
  }
  if (x->headers) { free_secret_list(x->headers); x->headers = NULL; }
}

void sv_curl_done(sv_xfer *x) {
  release_easy(x);
  unlink_xfer(x);
  push(x->h, x, L_DONE);
}

void sv_curl_held(sv_xfer *x) {
  x->held = 1;
  unlink_xfer(x);
  push(x->h, x, L_DONE);
}

sv_http *sv_http_new(const sv_http_config *cfg, char *errbuf, size_t errlen) {
  sv_http *h;
  if ((cfg->api_key && !sv_header_value_ok(cfg->api_key, strlen(cfg->api_key))) ||
      !sv_header_value_ok(cfg->user_agent, strlen(cfg->user_agent)))
    return snprintf(errbuf, errlen, "the API key and the user agent may not hold control characters"), NULL;
  /* curl_global_init is thread-safe from libcurl 7.84 on; before that the host
     must call it once itself before threads start (examples/embed/README.md). */
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return snprintf(errbuf, errlen, "libcurl failed to initialise"), NULL;
  h = calloc(1, sizeof *h);
  if (!h) { snprintf(errbuf, errlen, "out of memory"); curl_global_cleanup(); return NULL; }
  h->api_key = strdup(cfg->api_key ? cfg->api_key : "");
  h->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
  h->user_agent = strdup(cfg->user_agent);
  h->connect_timeout = cfg->connect_timeout;
  h->keepalive_timeout = cfg->keepalive_timeout;
  h->multi = curl_multi_init();
  if (!h->multi || !h->api_key || !h->user_agent || (cfg->ca_file && !h->ca_file)) {
    snprintf(errbuf, errlen, "out of memory");
    sv_http_free(h);
    return NULL;
  }
  sv_http_set_max_connections(h, cfg->max_connections);
  return h;
}

void sv_http_free(sv_http *h) {
  sv_xfer *x;
  if (!h) return;
  while ((x = h->running.head) != NULL || (x = h->done.head) != NULL || (x = h->held.head) != NULL) {
    if (x->list == L_RUNNING) {
      x->wire = SV_WIRE_BROKEN;
      snprintf(x->message, sizeof x->message, "the transport was closed before the exchange finished");
    }
    release_easy(x); /* (while x is on h->running: its handle leaves the multi handle) */
    unlink_xfer(x);
    x->h = NULL; /* the owner frees it; it is finished as far as anyone can tell */
  }
  sv_body_free_left(h);
  if (h->multi) curl_multi_cleanup(h->multi);
  if (h->api_key) memset(h->api_key, 0, strlen(h->api_key));
  free(h->api_key);
  free(h->ca_file);
  free(h->user_agent);
  free(h);
  curl_global_cleanup();
}

const char *sv_http_secret(const sv_http *h) { return h->api_key; }

/* x freed: NULL, with err (SV_E_IO). */
static sv_xfer *xfer_fail(sv_xfer *x, sv_error *err, const char *why) {
  sv_xfer_free(x);
  return sv_error_set(err, SV_E_IO, NULL, "%s", why), NULL;
}

/* The exchange sv_http_send asks for, without its easy handle (a file's .part opened: whether it can be resumed
   decides the Range), its body's unit chosen here once, or NULL with err. */
static sv_xfer *xfer_new(sv_http *h, const sv_send *s, sv_error *err) {
  sv_xfer *x = calloc(1, sizeof *x);
  if (!x) return sv_error_set(err, SV_E_IO, NULL, "out of memory"), NULL;
  x->h = h;
  x->op = s->op;
  x->unit = sv_unit_of(s);
  x->service = s->service; /* (the key goes with the service's requests alone: send.c) */
  x->total = x->range_start = x->range_total = -1;
  x->range = s->range && !(s->method && strcmp(s->method, "HEAD") == 0), x->keep_heads = s->heads;
  x->offset = s->offset > 0 && (x->range || !s->range) ? s->offset : 0; /* (a file's; a range's, not a HEAD's) */
  x->follow = s->follow && !x->service; /* (sv_curl_redirect; never with the key: it would go along) */
  x->hold = x->range && s->hold; /* (request.lua asks it of a ranged GET: the pause at the range's end) */
  snprintf(x->what, sizeof x->what, "%s", s->what ? s->what : "");
  x->timeout = s->timeout > 0 ? s->timeout : 0;
  x->t0 = sv_monotonic();
  x->max_body = s->max_body;
  if (s->request_id) snprintf(x->request_id, sizeof x->request_id, "%s", s->request_id);
  x->tap = s->tap;
  x->url = strdup(s->url);
  if (s->body && !s->body_kept) sv_buf_add(&x->send, s->body, s->body_len);
  x->body = s->body_kept ? s->body : x->send.data, x->body_len = s->body_kept ? s->body_len : x->send.len;
  if (s->file && (!(x->file = strdup(s->file)) || sv_body_open(h, x, err)))
    return x->file ? (sv_xfer_free(x), NULL) : xfer_fail(x, err, "out of memory");
  return x;
}

sv_xfer *sv_http_send(sv_http *h, const sv_send *s, sv_error *err) {
  sv_xfer *x;
  if (sv_send_invalid(s, err) || !(x = xfer_new(h, s, err))) return NULL;
  x->easy = curl_easy_init();
  if (!x->url || x->send.oom || !x->easy || sv_send_setup(h, x, s)) return xfer_fail(x, err, "out of memory");
  if (h->n_queued || !room(h, x)) x->queued = 1, h->n_queued++; /* (admit: room later, after those queued first) */
  else if (multi_add(h, x) != 0) return xfer_fail(x, err, "libcurl refused the transfer");
  push(h, x, L_RUNNING);
  return x;
}

/* What the wire says about an exchange libcurl ended. */
static void classify(sv_xfer *x, CURLcode rc) {
  curl_off_t sent = 0;
  long tunnel = 0;
  const char *msg = x->curl_msg[0] ? x->curl_msg : curl_easy_strerror(rc);
  curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &sent);
  curl_easy_getinfo(x->easy, CURLINFO_HTTP_CONNECTCODE, &tunnel);
  if (rc != CURLE_OK && tunnel >= 300) { /* the proxy refused the tunnel: nothing reached the server */
    x->wire = sv_tunnel_refused(tunnel, NULL, NULL, x->message, sizeof x->message); /* (libcurl names neither) */
    return;
  }
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

static void sv_curl_end(sv_xfer *x, CURLcode rc) {
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
  x->unit->end(x, rc);
  if (x->refused) {
    x->wire = SV_WIRE_FATAL; /* x->message: an address refused (also after another one answered), or a redirect */
  } else if (x->too_big && x->range) {
    x->wire = SV_WIRE_NONE; /* all that was asked for: the rest of the file is not read */
  } else if (x->too_big) {
    x->wire = SV_WIRE_GARBLED; /* (x->message: a file's, past its length; else the answer's) */
    if (!x->message[0]) sv_too_long((double)x->max_body, 0, NULL, x->message, sizeof x->message);
  } else if (x->io_failed) {
    x->wire = SV_WIRE_IO; /* x->message: why the .part could not be written */
  } else if (x->bad_range) {
    x->wire = SV_WIRE_BROKEN; /* (the verdict's range rule says why) */
  } else {
    classify(x, rc);
  }
  sv_curl_done(x);
}

static void collect(sv_http *h) {
  CURLMsg *m;
  CURLcode rc;
  int left;
  while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
    sv_xfer *x = NULL;
    if (m->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    if (x && x->held) { x->held_end = 1, x->held_rc = m->data.result; continue; } /* (its time up, say) */
    if (!x || x->list != L_RUNNING) continue;
    rc = m->data.result;
    if (rc == CURLE_OK && sv_curl_redirect(x)) { /* an exchange's next hop, on the multi handle */
      curl_multi_remove_handle(h->multi, x->easy);
      if (curl_multi_add_handle(h->multi, x->easy) == CURLM_OK) continue;
      snprintf(x->message, sizeof x->message, "libcurl refused the redirect's transfer");
      x->refused = 1;
    }
    sv_curl_end(x, rc);
  }
}

/* Each exchange's share of a pass begins: those its step paused go on (libcurl gives the bytes it kept first). */
static void resume(sv_http *h) {
  sv_xfer *x, *next;
  int paused = h->n_paused;
  h->pass++, h->n_paused = 0;
  for (x = h->running.head; x && paused; x = next) {
    next = x->next; /* (the bytes libcurl kept, given at once, may end x's part: held, off this list) */
    if (x->paused) x->paused = 0, paused--, curl_easy_pause(x->easy, CURLPAUSE_CONT);
  }
}

/* A poll that may wait starts with libcurl's wait, not with a pass: that wait returns at once when a pass has work
   (an exchange just added, a timer due, bytes in), so a pass first would only repeat the caller's last one, at the
   price of a socket check per exchange (libcurl's own curl_easy_perform waits first too).  A poll that may not
   wait makes one pass. */
int sv_http_poll(sv_http *h, double max_wait) {
  double start = sv_monotonic();
  int running = 0, pass = !(max_wait > 0);
  for (;;) {
    double left;
    if (h->n_queued) admit(h); /* (a transfer let go of since: room) */
    if (h->running.n && pass) {
      resume(h);
      curl_multi_perform(h->multi, &running);
      collect(h);
      if (h->n_queued) admit(h);
    }
    if (h->done.n || !(max_wait > 0)) break;
    left = start + max_wait - sv_monotonic();
    if (left <= 0 && pass) break;
    if (h->n_paused) { pass = 1; continue; } /* bytes wait in libcurl for their step: the next pass, not a wait */
    if (!h->running.n) { sv_sleep(left > 3600 ? 3600 : left); break; }
    if (left > 3600) left = 3600;
    curl_multi_poll(h->multi, NULL, 0, left > 0 ? (int)ceil(left * 1000) : 0, NULL);
    pass = 1;
  }
  return h->done.n;
}

double sv_http_clock(const sv_http *h) {
  double d = h->date[0] ? sv_http_date(h->date) : -1;
  return d < 0 ? NAN : d - h->date_at;
}

sv_xfer *sv_http_finished(sv_http *h) {
  sv_xfer *x = h->done.head;
  if (x) unlink_xfer(x);
  if (x && x->held) push(h, x, L_HELD); /* (its easy handle still on the multi handle, paused) */
  return x;
}

int sv_xfer_held(const sv_xfer *x) { return x->held && x->list == L_HELD; }

sv_xfer *sv_xfer_go_on(sv_xfer *x, const sv_send *s) {
  sv_http *h = x->h;
  if (!h || !sv_xfer_held(x) || x->held_end || !s->range || s->offset != x->offset + (double)x->max_body ||
      (x->timeout > 0 && sv_monotonic() - x->t0 >= x->timeout)) /* (its time up: libcurl would end it so) */
    return NULL;
  x->offset = s->offset, x->max_body = s->max_body, x->too_big = 0, x->held = 0;
  x->wire = SV_WIRE_NONE, x->message[0] = '\0', x->recv.len = 0;
  x->unit = sv_unit_of(s), x->tap = s->tap, x->started = 0; /* (a part's own tap, or none) */
  unlink_xfer(x);
  push(h, x, L_RUNNING);
  curl_easy_pause(x->easy, CURLPAUSE_CONT); /* (libcurl may give the bytes it kept at once: the part may be held) */
  return x;
}

void sv_xfer_exchange(const sv_xfer *x, sv_exchange *out) {
  sv_exchange e = { .op = x->op, .status = x->status, .body = x->recv.data ? x->recv.data : "",
                    .body_len = x->recv.len, .retry_after = x->retry_after[0] ? x->retry_after : NULL,
                    .wire = x->wire, .message = x->message, .total = x->total,
                    .bytes = x->have,
                    .heads = x->keep_heads ? (x->heads.data ? x->heads.data : "") : NULL, .heads_len = x->heads.len,
                    .what = x->what[0] ? x->what : NULL,
                    .limits = x->limits.data, .limits_len = x->limits.len,
                    .from = x->offset, /* (the verdict's range rule) */
                    .first = x->status == 206 ? x->range_start /* (a held one's part: taken from its offset) */
                             : x->held || x->pos >= x->offset ? x->offset : x->pos };
  *out = e;
}

void sv_xfer_take_body(sv_xfer *x, sv_buf *out) {
  *out = x->recv;
  memset(&x->recv, 0, sizeof x->recv);
}

void sv_xfer_set_user(sv_xfer *x, long long user) { x->user = user; }

long long sv_xfer_user(const sv_xfer *x) { return x->user; }

const char *sv_xfer_server_id(const sv_xfer *x) { return x->server_id[0] ? x->server_id : NULL; }

/* Whether any of x's request was written to its socket (libcurl counts the request's bytes once it sends them:
   a transfer still connecting, or waiting in libcurl's queue for a connection, has written none; a finished one's
   is taken as written). */
int sv_xfer_written(const sv_xfer *x) {
  curl_off_t sent = 0;
  if (!x->easy) return 1;
  curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &sent);
  return sent > 0;
}

/* The owner lets go of x: it ends when still running (or held), and is freed. */
void sv_xfer_free(sv_xfer *x) {
  if (!x) return;
  release_easy(x); /* (first: while x is on h->running, its handle leaves the multi handle) */
  sv_part_free(x->part);
  unlink_xfer(x);
  sv_buf_free(&x->send);
  sv_buf_free(&x->recv);
  sv_buf_free(&x->heads);
  sv_buf_free(&x->limits);
  sv_buf_free(&x->location); /* a Location not followed (not a redirect's, or refused) */
  free(x->url);
  free(x->file);
  free(x);
}
