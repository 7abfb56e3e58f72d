/* The libcurl transport: it moves bytes and nothing else.  One sv_http is one
   multi handle, whose connection cache gives keep-alive across exchanges; one
   sv_xfer is one HTTP exchange.  Retries, deadlines, the answer's meaning and the
   download rules (.part, resume, refresh, commit) live above it (the core's
   verdict and the shared Lua), so that another transport can take its place.
   Nothing here blocks longer than the caller's max_wait, and no callback calls
   into Lua.  API exchanges run on the multi handle, in the caller's polls;
   downloads run on threads of their own (fetch.c). */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HEADER_LINE_MAX 4096 /* a request's own header line (a session token may be long) */

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

/* The multi handle's room: libcurl's CURLMOPT_MAX_TOTAL_CONNECTIONS bounds the
   connections it opens, not those it reuses, so kept-alive connections from
   before max_connections was lowered would all carry transfers at once.  The
   transport holds an exchange queued (never added, never written) while
   max_connections (less the downloads' threads: sv_fetch_share) are on the
   multi handle, held ones too, and adds it when one leaves. */
static int multi_add(sv_http *h, sv_xfer *x) {
  if (curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) return -1;
  x->in_multi = 1, h->n_multi++;
  return 0;
}

void sv_curl_admit(sv_http *h) {
  sv_xfer *x, *next;
  for (x = h->running.head; x && h->n_queued > 0 && h->n_multi < sv_fetch_share(h); x = next) {
    next = x->next;
    if (!x->queued) continue;
    x->queued = 0, h->n_queued--;
    if (multi_add(h, x) == 0) continue;
    x->wire = SV_WIRE_NOT_SENT;
    snprintf(x->message, sizeof x->message, "libcurl refused the transfer");
    sv_curl_done(x);
  }
}

/* The exchange's easy handle and header list go (its connection stays in the
   multi handle's cache). */
static void release_easy(sv_xfer *x) {
  if (x->tapping && x->h) x->h->taps--;
  x->tapping = 0;
  if (x->queued && x->h) x->h->n_queued--;
  x->queued = 0;
  if (x->easy) {
    if (x->h && x->in_multi) { /* (a download's never is) */
      curl_multi_remove_handle(x->h->multi, x->easy);
      x->h->n_multi--;
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
  /* Downloads still running stop (their sockets shut down), and this waits for
     every download thread to end, those let go of before too: the threads are
     quick to see it, and none may run on inside libcurl once it is cleaned up
     below, nor in this code once the module is unloaded. */
  for (x = h->fetching; x; x = x->fnext) sv_fetch_abandon(x);
  pthread_mutex_lock(&h->threads_lock);
  while (h->threads_alive > 0) pthread_cond_wait(&h->threads_gone, &h->threads_lock);
  pthread_mutex_unlock(&h->threads_lock);
  while ((x = h->running.head) != NULL || (x = h->done.head) != NULL || (x = h->held.head) != NULL) {
    if (x->list == L_RUNNING) {
      x->wire = SV_WIRE_BROKEN;
      snprintf(x->message, sizeof x->message, "the transport was closed before the exchange finished");
    }
    release_easy(x); /* (while x is on h->running: its handle leaves the multi handle) */
    unlink_xfer(x);
    x->waiting = 0;
    x->reaped = 1;   /* its thread, if it had one, is over */
    x->h = NULL; /* the owner frees it; it is finished as far as anyone can tell */
  }
  pthread_cond_destroy(&h->threads_gone);
  pthread_mutex_destroy(&h->threads_lock);
  sv_fetch_free_left(h);
  if (h->multi) curl_multi_cleanup(h->multi);
  if (h->api_key) memset(h->api_key, 0, strlen(h->api_key));
  free(h->api_key);
  free(h->ca_file);
  free(h->user_agent);
  free(h);
  curl_global_cleanup();
}

const char *sv_http_secret(const sv_http *h) { return h->api_key; }

/* The value of the header line buf[0, len) when it is name's ("Name:"),
   without the blanks around it and the line's end (*n bytes); else NULL. */
static const char *value_of(const char *buf, size_t len, const char *name, size_t *n) {
  size_t a = strlen(name), z = len;
  if (len <= a || strncasecmp(buf, name, a) != 0) return NULL;
  while (a < z && (buf[a] == ' ' || buf[a] == '\t')) a++;
  while (z > a && (buf[z - 1] == '\r' || buf[z - 1] == '\n' || buf[z - 1] == ' ' || buf[z - 1] == '\t')) z--;
  *n = z - a;
  return buf + a;
}

/* The server's own request id, from an API answer's header line buf[0, len): x-request-id over request-id over
   cf-ray, and any of them over a value that only echoes ours (docs/reference.md "Request ids"). */
static void note_server_id(sv_xfer *x, const char *buf, size_t len) {
  static const char *const names[] = { "X-Request-Id:", "Request-Id:", "CF-Ray:" };
  size_t i, vn;
  const char *v = NULL;
  int rank;
  if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) { x->server_id[0] = '\0'; x->server_rank = 0; return; }
  for (i = 0; i < 3 && !v; i++) v = value_of(buf, len, names[i], &vn);
  if (!v || vn == 0 || vn > SV_REQUEST_ID_MAX) return;
  rank = (int)(5 - i); /* (i: one past the name found) 4, 3, 2; an echo of ours, whatever its name: 1 */
  if (strlen(x->request_id) == vn && memcmp(v, x->request_id, vn) == 0) rank = 1;
  if (rank <= x->server_rank) return;
  memcpy(x->server_id, v, vn);
  x->server_id[vn] = '\0';
  x->server_rank = rank;
}

/* A header line of an API answer's rate-limit families (RateLimit*, X-RateLimit-*), kept to 4 KiB. */
static int limits_line(const sv_xfer *x, const char *buf, size_t len) {
  return x->limits.len < 4096 && len > 2 &&
         ((len > 9 && strncasecmp(buf, "RateLimit", 9) == 0) || (len > 11 && strncasecmp(buf, "X-RateLimit", 11) == 0));
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud) {
  sv_xfer *x = ud;
  size_t len = size * n, vn;
  const char *v;
  if (x->api) note_server_id(x, buf, len);
  if (x->keep_heads && x->heads.len < 16384 && len > 2) { /* (the blank line that ends them: not kept) */
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) x->heads.len = 0;
    else sv_buf_add(&x->heads, buf, len - (buf[len - 2] == '\r' ? 2 : 1)), sv_buf_add(&x->heads, "\n", 1);
  }
  if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) { /* a new answer (after a redirect, say) */
    x->retry_after[0] = '\0';
    x->limits.len = 0;
    x->range_start = x->range_total = -1, x->pos = 0;
    x->location.len = 0;
    x->status = 0;
  } else if (len <= 2) { /* its headers ended: its status, read once for the body's callbacks */
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
  } else if (x->follow && (v = value_of(buf, len, "Location:", &vn)) != NULL) {
    x->location.len = 0;
    sv_buf_add(&x->location, v, vn);
  } else if ((v = value_of(buf, len, "Retry-After:", &vn)) != NULL) {
    snprintf(x->retry_after, sizeof x->retry_after, "%.*s", (int)vn, v);
  } else if (x->api && limits_line(x, buf, len)) { /* (the rate-limit families: the core reads them, sv_read_limits) */
    sv_buf_add(&x->limits, buf, len - (buf[len - 2] == '\r' ? 2 : 1)), sv_buf_add(&x->limits, "\n", 1);
  } else if (x->api && (v = value_of(buf, len, "Date:", &vn)) != NULL) {
    snprintf(x->h->date, sizeof x->h->date, "%.*s", (int)vn, v); /* read when asked (sv_http_clock) */
    x->h->date_at = sv_wallclock();
  } else if ((v = value_of(buf, len, "Content-Range:", &vn)) != NULL) { /* (a download's, a ranged exchange's) */
    sv_content_range(v, vn, &x->range_start, &x->range_total); /* (else both stay -1) */
  }
  return len;
}

/* Whether the body coming now is the one an exchange's tap is fed: a 2xx's, from the byte asked for (not a
   redirect's, nor an error page, nor a 206 from elsewhere in the file, which sv_curl_end refuses; a 200's once
   to_skip dropped the bytes before offset). */
static int tap_now(const sv_xfer *x) {
  long status = x->status;
  if (status < 200 || status > 299) return 0;
  return status == 206 ? x->range_start == x->offset : x->offset == 0 || status == 200; /* (200: past the skip) */
}

/* Of len bytes from x->pos of a ranged exchange's 200 to a Range from offset > 0 (a host that ignores Range: the
   whole file), those before offset: dropped, never kept (x->pos moves past them once libcurl's bytes are taken). */
static size_t to_skip(sv_xfer *x, size_t len) {
  if (!x->range || x->pos >= x->offset || x->status != 200) return 0;
  return x->offset - x->pos < (double)len ? (size_t)(x->offset - x->pos) : len;
}

/* A held exchange's (sv_send's hold) part is full and more of the file follows: the keep bytes at buf end the
   part, and the transfer is paused there (libcurl gives these bytes again at sv_xfer_go_on, from x->pos: to_skip
   drops those taken), the exchange finished as far as its owner can tell, its connection kept. */
static size_t hold_at(sv_xfer *x, const char *buf, size_t keep) {
  curl_off_t cl = -1;
  sv_buf_add(&x->recv, buf, keep);
  if (x->recv.oom) return 0;
  curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
  x->total = cl >= 0 ? (double)cl : -1;
  x->wire = SV_WIRE_NONE;
  x->held = 1;
  if (x->tapping) x->h->taps--;
  x->tapping = 0, x->tap = NULL;
  unlink_xfer(x);
  push(x->h, x, L_DONE);
  return CURL_WRITEFUNC_PAUSE;
}

static size_t on_api_body(char *buf, size_t size, size_t n, void *ud) {
  sv_xfer *x = ud;
  size_t all = size * n, drop = to_skip(x, all), len = all - drop;
  size_t keep = len; /* (the bytes kept: those within max_body) */
  buf += drop;
  if (x->recv.len + len > x->max_body) keep = x->max_body - x->recv.len;
  if (x->tap && keep && tap_now(x)) {
    if (x->tap_fed > 0 && x->tap_fed + keep > SV_TAP_STEP) { /* this pass's share fed: the rest waits (libcurl */
      x->tap_paused = 1;                                      /* keeps these bytes, given again at tap_resume) */
      x->h->n_paused++;
      return CURL_WRITEFUNC_PAUSE;
    }
    if (x->tap->feed(x->tap, buf, keep) != 0) x->tap = NULL; /* (it refused more: the exchange's bytes still read) */
    x->tap_fed += keep;
  }
  if (keep < len && x->hold && x->status == 200) return hold_at(x, buf, keep); /* (the file goes on past the part) */
  x->pos += (double)all; /* (not before a pause: libcurl gives the same bytes again) */
  if (x->recv.len + len > x->max_body) {
    /* keep what fits: the start of an over-long create answer may name its task */
    sv_buf_add(&x->recv, buf, x->max_body - x->recv.len);
    x->too_big = 1;
    return 0;
  }
  sv_buf_add(&x->recv, buf, len);
  return x->recv.oom ? 0 : all;
}

static int add_header(struct curl_slist **list, const char *line) {
  struct curl_slist *l = curl_slist_append(*list, line);
  if (!l) return -1;
  *list = l;
  return 0;
}

/* The lines of p ("Name: value\n" each: headers_ok checked them) added.  0, or -1 out of memory. */
static int add_lines(sv_xfer *x, const char *p) {
  const char *nl;
  while ((nl = strchr(p, '\n')) != NULL) {
    char line[HEADER_LINE_MAX];
    size_t n = (size_t)(nl - p);
    memcpy(line, p, n);
    line[n] = '\0';
    if (add_header(&x->headers, line)) return -1;
    p = nl + 1;
  }
  return 0;
}

/* An exchange's header lines: its own and its Range, never the key (it goes to another host).  "Expect:" keeps
   libcurl from waiting for a 100-continue before a body; an empty Content-Type, unless its lines name one, from
   adding a form's.  0, or -1 out of memory. */
static int exchange_headers(sv_xfer *x, const char *p) {
  char range[64];
  snprintf(range, sizeof range, "Range: bytes=%.0f-%.0f", x->offset, x->offset + (double)x->max_body - 1);
  if ((x->range && add_header(&x->headers, range)) || add_header(&x->headers, "Expect:") ||
      (!strstr(p, "Content-Type:") && add_header(&x->headers, "Content-Type:")))
    return -1;
  return add_lines(x, p);
}

/* The exchange's header lines: a download's (never the key: the file lives on another host), an exchange's, an
   API request's (the key when asked).  0, or -1 out of memory. */
static int set_headers(sv_http *h, sv_xfer *x, const sv_send *s) {
  const char *p = s->headers ? s->headers : "";
  if (x->into_file) {
    char range[64];
    snprintf(range, sizeof range, "Range: bytes=%.0f-", x->offset);
    return add_header(&x->headers, "Accept: video/mp4, */*") || (x->offset > 0 && add_header(&x->headers, range))
               ? -1 : 0;
  }
  if (x->exchange) return exchange_headers(x, p);
  if (x->request_id[0]) {
    char line[SV_REQUEST_ID_MAX + 16];
    snprintf(line, sizeof line, "X-Request-Id: %s", x->request_id);
    if (add_header(&x->headers, line)) return -1;
  }
  if (s->auth) {
    sv_buf b = {0};
    int rc;
    sv_buf_addf(&b, "Authorization: Bearer %s", h->api_key);
    rc = b.oom ? -1 : add_header(&x->headers, sv_buf_cstr(&b));
    memset(b.data ? b.data : (char *)"", 0, b.len);
    sv_buf_free(&b);
    if (rc) return -1;
  }
  if (add_header(&x->headers, "Accept: application/json") ||
      (s->body && (add_header(&x->headers, "Content-Type: application/json") || add_header(&x->headers, "Expect:"))))
    return -1;
  return add_lines(x, p);
}

/* The options of the exchange's easy handle: its client's, else the transport's
   (sv_send's user_agent), then its own (URL, header list, timeout, where libcurl writes). */
static void setup_easy(sv_http *h, sv_xfer *x, const sv_send *s) {
  CURL *e = x->easy;
  const char *ca_file = s->user_agent ? s->ca_file : h->ca_file;
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  /* libcurl before 7.85 has no *_PROTOCOLS_STR: the bitmask options do the same.
     Every other libcurl name used here is in 7.68 (the oldest supported):
     csrc/curl/curl_versions.txt lists each with its version, tools/curl-compat.sh checks. */
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(e, CURLOPT_USERAGENT, s->user_agent ? s->user_agent : h->user_agent);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, sv_curl_ms(s->user_agent ? s->connect_timeout : h->connect_timeout));
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  if (h->keepalive_timeout > 0) /* (whole seconds: a part of one is one) */
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, (long)ceil(h->keepalive_timeout));
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  if (ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
  if (s->stall > 0) {
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, s->stall >= 1 ? (long)fmin(s->stall, 86400.0 * 30) : 1L);
  }
  /* A request that must not ride a reused connection: when a kept-alive connection
     dies under a request, libcurl silently sends it again on a new one, and a
     create the server already took would be paid twice.  The new connection is
     still kept for the exchanges that follow. */
  if (s->fresh) curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
  if (x->into_file) sv_fetch_setup(h, x);
  else curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_api_body);
  if (s->public_only) sv_media_setup(x, s);
  if (s->body || (s->method && (strcmp(s->method, "PUT") == 0 || strcmp(s->method, "POST") == 0))) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body ? x->body : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
  }
  if (s->method && strcmp(s->method, "HEAD") == 0) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  else if (s->method && (strcmp(s->method, "PUT") == 0 || strcmp(s->method, "DELETE") == 0))
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, s->method);
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  curl_easy_setopt(e, CURLOPT_URL, x->url);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->curl_msg);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, sv_curl_ms(s->timeout)); /* 0: none */
}

/* A request's header lines (an exchange's): "Name: value\n" each,
   shorter than HEADER_LINE_MAX bytes, with no control character but their ending. */
static int headers_ok(const char *p) {
  const char *nl;
  while (*p) {
    nl = strchr(p, '\n');
    if (!nl || nl == p || (size_t)(nl - p) >= HEADER_LINE_MAX || !memchr(p, ':', (size_t)(nl - p)) ||
        !sv_header_value_ok(p, (size_t)(nl - p)))
      return 0;
    p = nl + 1;
  }
  return 1;
}

/* The exchange's proxy (checked by sv_http_send; NULL: the environment's), its
   credentials apart and decoded (Basic auth: on the CONNECT of an https URL, on
   each request of an http one).  An https URL goes through a CONNECT tunnel, so
   the proxy never sees the key; an http one is sent to the proxy whole, key
   included.  0, or -1 out of memory. */
static int set_proxy(CURL *e, const char *proxy) {
  sv_proxy p;
  sv_error err;
  if (!proxy) return 0;
  if (sv_proxy_parse(proxy, strlen(proxy), &p, &err) != 0) return -1;
  curl_easy_setopt(e, CURLOPT_PROXY, sv_buf_cstr(&p.url));
  if (p.has_user) {
    curl_easy_setopt(e, CURLOPT_PROXYAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_PROXYUSERNAME, sv_buf_cstr(&p.user));
    curl_easy_setopt(e, CURLOPT_PROXYPASSWORD, sv_buf_cstr(&p.password));
  }
  sv_proxy_free(&p);
  return 0;
}

static int method_ok(const char *m) {
  static const char *const ok[] = { "GET", "HEAD", "PUT", "POST", "DELETE" };
  size_t i;
  for (i = 0; m && i < sizeof ok / sizeof *ok; i++)
    if (strcmp(m, ok[i]) == 0) return 1;
  return 0;
}

/* What sv_http_send refuses before it makes anything: 0, or -1 with err. */
static int send_invalid(const sv_send *s, sv_error *err) {
  const sv_op_kind *k = &sv_op_kinds[s->op];
  if (s->user_agent && (!sv_header_value_ok(s->user_agent, strlen(s->user_agent)) || !(s->connect_timeout > 0)))
    return sv_error_set(err, SV_E_INVALID, "user_agent",
                        "user_agent: control characters, or connect_timeout: not above 0");
  if (!s->url) return sv_error_set(err, SV_E_INVALID, "url", "url: expected an http(s) URL, got nothing");
  if (s->proxy && sv_proxy_parse(s->proxy, strlen(s->proxy), NULL, err) != 0) return -1;
  if (sv_url_check(s->url, strlen(s->url), "url", SV_URL_ANY, err) != 0) return -1;
  if (s->headers && !headers_ok(s->headers))
    return sv_error_set(err, SV_E_INVALID, "headers",
                        "headers: expected \"Name: value\\n\" lines without control characters");
  if (s->request_id && (strlen(s->request_id) > SV_REQUEST_ID_MAX || !*s->request_id ||
                        !sv_header_value_ok(s->request_id, strlen(s->request_id))))
    return sv_error_set(err, SV_E_INVALID, "request_id",
                        "request_id: expected 1 to %d characters without control characters", SV_REQUEST_ID_MAX);
  if (!k->api && !k->into_file && !method_ok(s->method))
    return sv_error_set(err, SV_E_INVALID, "method", "method: expected GET, HEAD, PUT, POST or DELETE");
  if (k->into_file && (!s->file || !*s->file))
    return sv_error_set(err, SV_E_INVALID, "path", "path: expected a file path");
  return 0;
}

/* x freed: NULL, with err (SV_E_IO). */
static sv_xfer *xfer_fail(sv_xfer *x, sv_error *err, const char *why) {
  sv_xfer_free(x);
  return sv_error_set(err, SV_E_IO, NULL, "%s", why), NULL;
}

/* The exchange sv_http_send asks for, without its easy handle (a download's
   .part opened: whether it can be resumed decides the Range), or NULL with err. */
static sv_xfer *xfer_new(sv_http *h, const sv_send *s, sv_error *err) {
  const sv_op_kind *k = &sv_op_kinds[s->op];
  sv_xfer *x = calloc(1, sizeof *x);
  if (!x || (k->into_file && pthread_mutex_init(&x->lock, NULL) != 0)) {
    free(x);
    return sv_error_set(err, SV_E_IO, NULL, "out of memory"), NULL;
  }
  x->h = h;
  x->op = s->op;
  x->total = x->range_start = x->range_total = -1;
  x->offset = s->offset > 0 ? s->offset : 0;
  x->api = k->api, x->into_file = k->into_file, x->exchange = !k->api && !k->into_file; /* decided here once */
  x->follow = s->follow && !x->api; /* (sv_curl_redirect; never the API's: its key would go along) */
  x->range = s->range && !(s->method && strcmp(s->method, "HEAD") == 0), x->keep_heads = s->keep_heads;
  x->hold = x->range && s->hold; /* (request.lua asks it of a ranged GET: the pause at the range's end) */
  snprintf(x->what, sizeof x->what, "%s", s->what ? s->what : "");
  x->timeout = s->timeout > 0 ? s->timeout : 0;
  x->t0 = sv_monotonic();
  x->max_body = s->max_body;
  if (s->request_id && x->api) snprintf(x->request_id, sizeof x->request_id, "%s", s->request_id);
  if (s->tap) { /* a part's bytes: room for them all at once (no realloc) */
    x->tap = s->tap;
    x->tapping = 1;
    h->taps++;
    if (s->max_body <= ((size_t)1 << 30)) (void)sv_buf_reserve(&x->recv, s->max_body);
  }
  x->url = strdup(s->url);
  if (s->body && !s->body_kept) sv_buf_add(&x->send, s->body, s->body_len);
  x->body = s->body_kept ? s->body : x->send.data, x->body_len = s->body_kept ? s->body_len : x->send.len;
  if (x->into_file) {
    x->file = strdup(s->file);
    if (!x->file) return xfer_fail(x, err, "out of memory");
    if (sv_fetch_open(h, x, err)) return sv_xfer_free(x), NULL;
  }
  x->have = x->offset; /* a download's after its .part is opened: it may start again from 0 */
  return x;
}

sv_xfer *sv_http_send(sv_http *h, const sv_send *s, sv_error *err) {
  sv_xfer *x;
  if (send_invalid(s, err) || !(x = xfer_new(h, s, err))) return NULL;
  x->easy = curl_easy_init();
  if (!x->url || x->send.oom || !x->easy || set_headers(h, x, s)) return xfer_fail(x, err, "out of memory");
  setup_easy(h, x, s);
  if (set_proxy(x->easy, s->proxy)) return xfer_fail(x, err, "out of memory");
  if (!x->into_file && h->n_multi >= sv_fetch_share(h)) x->queued = 1, h->n_queued++; /* (admit: room later) */
  else if (!x->into_file && multi_add(h, x) != 0) return xfer_fail(x, err, "libcurl refused the transfer");
  push(h, x, L_RUNNING);
  if (x->into_file) sv_fetch_queue(h, x); /* on a thread of its own, never on the multi handle */
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

void sv_curl_end(sv_xfer *x, CURLcode rc) {
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
  if (x->exchange) { /* the file's size: a 206's Content-Range total, else the Content-Length */
    curl_off_t cl = -1;
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    x->total = x->status == 206 ? x->range_total : cl >= 0 ? (double)cl : -1;
  }
  if (x->exchange && x->refused) {
    x->wire = SV_WIRE_FATAL; /* x->message: an address refused (also after another one answered), or a redirect */
  } else if (x->too_big && x->into_file) {
    x->wire = SV_WIRE_GARBLED;
    sv_too_long(x->total >= 0 ? x->total : (double)x->max_body, x->total >= 0, x->url ? x->url : "", x->message,
                sizeof x->message);
  } else if (x->too_big && x->range) {
    x->wire = SV_WIRE_NONE; /* all that was asked for: the rest of the file is not read */
  } else if (x->too_big) {
    x->wire = SV_WIRE_GARBLED;
    sv_too_long((double)x->max_body, 0, NULL, x->message, sizeof x->message);
  } else if (x->io_failed) {
    x->wire = SV_WIRE_IO; /* x->message: why the .part could not be written */
  } else if (x->refused) {
    x->wire = SV_WIRE_FATAL; /* x->message: why the redirect was not followed */
  } else if (x->bad_range) {
    x->wire = SV_WIRE_BROKEN; /* (the verdict's range rule says why) */
  } else {
    classify(x, rc);
  }
  if (x->body_to_file && x->wire == SV_WIRE_NONE && x->total < 0) x->total = x->have;
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

/* Each tapped exchange's share of a pass begins: those paused go on (libcurl gives the bytes it kept first). */
static void tap_resume(sv_http *h) {
  sv_xfer *x;
  h->n_paused = 0;
  for (x = h->running.head; x; x = x->next) {
    if (!x->tapping) continue;
    x->tap_fed = 0;
    if (x->tap_paused) x->tap_paused = 0, curl_easy_pause(x->easy, CURLPAUSE_CONT);
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
    int busy = h->fetching || h->fetch_queue ? sv_fetch_reap(h) : 0;
    if (h->n_queued) sv_curl_admit(h); /* (a download's thread ended, a transfer left: room) */
    if (h->running.n > h->n_fetching + h->n_waiting && pass) {
      if (h->taps) tap_resume(h);
      curl_multi_perform(h->multi, &running);
      collect(h);
      if (h->n_queued) sv_curl_admit(h);
    }
    if (h->done.n || !(max_wait > 0)) break;
    left = start + max_wait - sv_monotonic();
    if (left <= 0 && pass) break;
    if (h->n_paused) { pass = 1; continue; } /* a tap's bytes wait in libcurl: the next pass, not a wait */
    if (!h->running.n) { sv_sleep(left > 3600 ? 3600 : left); break; }
    if (left > 3600) left = 3600;
    if (left > 0.001 && busy) left = 0.001; /* a lock to look at again soon */
    /* with downloads only, this waits for a thread's wake-up (or the time) */
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
  x->tap = s->tap, x->tap_fed = 0, x->tap_paused = 0;
  if (x->tap) {
    x->tapping = 1;
    h->taps++;
    if (s->max_body <= ((size_t)1 << 30)) (void)sv_buf_reserve(&x->recv, s->max_body);
  }
  unlink_xfer(x);
  push(h, x, L_RUNNING);
  curl_easy_pause(x->easy, CURLPAUSE_CONT); /* (libcurl may give the bytes it kept at once: the part may be held) */
  return x;
}

void sv_xfer_exchange(const sv_xfer *x, sv_exchange *out) {
  sv_exchange e = { .op = x->op, .status = x->status, .body = x->recv.data ? x->recv.data : "",
                    .body_len = x->recv.len, .retry_after = x->retry_after[0] ? x->retry_after : NULL,
                    .wire = x->wire, .message = x->message, .total = x->total,
                    .bytes = x->exchange ? (double)x->recv.len : x->have,
                    .heads = x->keep_heads ? (x->heads.data ? x->heads.data : "") : NULL, .heads_len = x->heads.len,
                    .what = x->what[0] ? x->what : NULL,
                    .limits = x->limits.data, .limits_len = x->limits.len,
                    .from = x->range || x->into_file ? x->offset : 0, /* (the verdict's range rule) */
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
   a transfer still connecting, or waiting in libcurl's queue for a connection, has written none).  A download's,
   on a thread of its own, is taken as written. */
int sv_xfer_written(const sv_xfer *x) {
  curl_off_t sent = 0;
  if (x->threaded || !x->easy) return 1;
  curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &sent);
  return sent > 0;
}

/* The owner lets go of x (or a download's thread, when it is the last). */
void sv_xfer_free(sv_xfer *x) {
  int last = 1;
  if (!x) return;
  sv_fetch_unlist(x->h, x); /* the owner's side (its thread, if any, runs on) */
  if (x->threaded) {
    unlink_xfer(x); /* (a plain one's is sv_curl_destroy's: its handle leaves the multi handle first) */
    sv_fetch_abandon(x);
    pthread_mutex_lock(&x->lock);
    x->h = NULL; /* its thread wakes no poll of h now */
    last = --x->refs == 0;
    pthread_mutex_unlock(&x->lock);
  }
  if (last) sv_curl_destroy(x); /* else the thread frees it */
}

/* Frees x, off every list; the last reference's holder calls it. */
void sv_curl_destroy(sv_xfer *x) {
  if (x->threaded) x->h = NULL; /* a thread's: off h's lists already, and h may be gone */
  release_easy(x); /* may close a kept connection: on_fetch_close takes the lock */
  if (x->into_file) pthread_mutex_destroy(&x->lock);
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
