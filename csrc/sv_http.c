/* Sending requests: libcurl's multi interface, one client = one multi handle whose
   connection cache gives keep-alive across calls.  Requests wait in a list with a
   due time; sv_client_perform starts the due ones, drives the transfers, reads
   the answers (sv_answer.c) and schedules retries.  Nothing here ever blocks
   longer than the caller's max_wait. */
#include "sv_core.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ANSWER (1024 * 1024) /* an API answer larger than this is not ours */
#define MAX_EVENTS 256

enum { ST_WAITING, ST_RUNNING, ST_DONE };

struct sv_req {
  sv_client *cl;
  sv_req *prev, *next;
  unsigned id;
  sv_op op;
  int state;
  double due, deadline, attempt_start;
  int attempt;
  CURL *easy;
  struct curl_slist *headers;
  char *url;
  char path[160]; /* for events */
  sv_buf send, recv;
  char retry_after[64];
  int too_big;
  int failed;
  sv_error err;
  char curl_msg[CURL_ERROR_SIZE];
  /* downloads */
  char *dl_path, *dl_part;
  int fd;
  curl_off_t have, total, range_start;
  int body_started, body_to_file, io_errno;
  int resumes, resume_limit;
};

struct sv_client {
  CURLM *multi;
  sv_config cfg;
  char *base_url, *api_key, *ca_file, *user_agent;
  struct curl_slist *api_headers, *dl_headers;
  sv_req *reqs;
  unsigned next_id;
  uint64_t rng;
  sv_event events[MAX_EVENTS];
  int ev_head, ev_count;
};

static int curl_ready = 0;

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

static double rnd01(sv_client *c) {
  /* xorshift64*: enough for jitter */
  c->rng ^= c->rng >> 12;
  c->rng ^= c->rng << 25;
  c->rng ^= c->rng >> 27;
  return (double)((c->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static sv_event *push_event(sv_client *c, sv_event_type t, sv_req *r) {
  sv_event *ev;
  if (c->ev_count == MAX_EVENTS) { /* drop the oldest */
    c->ev_head = (c->ev_head + 1) % MAX_EVENTS;
    c->ev_count--;
  }
  ev = &c->events[(c->ev_head + c->ev_count) % MAX_EVENTS];
  c->ev_count++;
  memset(ev, 0, sizeof *ev);
  ev->type = t;
  ev->req_id = r->id;
  ev->attempt = r->attempt;
  ev->method = r->op == SV_OP_CREATE ? "POST" : "GET";
  snprintf(ev->path, sizeof ev->path, "%s", r->path);
  return ev;
}

int sv_client_event(sv_client *c, sv_event *ev) {
  if (!c->ev_count) return 0;
  *ev = c->events[c->ev_head];
  c->ev_head = (c->ev_head + 1) % MAX_EVENTS;
  c->ev_count--;
  return 1;
}

/* The key never appears in a message, whatever a server echoes back. */
static void scrub(sv_client *c, char *msg) {
  size_t klen = c && c->api_key ? strlen(c->api_key) : 0;
  char *p;
  if (klen < 4) return;
  while ((p = strstr(msg, c->api_key)) != NULL) {
    memmove(p + 3, p + klen, strlen(p + klen) + 1);
    memcpy(p, "***", 3);
  }
}

/* ---------------------------------------------------------- the client */

sv_client *sv_client_new(const sv_config *cfg, char *errbuf, size_t errlen) {
  sv_client *c;
  sv_buf h;
  if (!curl_ready) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      snprintf(errbuf, errlen, "libcurl failed to initialise");
      return NULL;
    }
    curl_ready = 1;
  }
  c = calloc(1, sizeof *c);
  if (!c) { snprintf(errbuf, errlen, "out of memory"); return NULL; }
  c->cfg = *cfg;
  c->base_url = dupstr(cfg->base_url);
  c->api_key = dupstr(cfg->api_key ? cfg->api_key : "");
  c->ca_file = dupstr(cfg->ca_file);
  c->user_agent = dupstr(cfg->user_agent ? cfg->user_agent : "starvideos");
  c->multi = curl_multi_init();
  c->rng = (uint64_t)(sv_wallclock() * 1e6) ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)c;
  if (!c->rng) c->rng = 88172645463325252ULL;
  sv_buf_init(&h);
  sv_buf_addf(&h, "Authorization: Bearer %s", c->api_key);
  c->api_headers = curl_slist_append(NULL, sv_buf_cstr(&h));
  sv_buf_free(&h);
  c->api_headers = curl_slist_append(c->api_headers, "Accept: application/json");
  c->api_headers = curl_slist_append(c->api_headers, "Content-Type: application/json");
  c->api_headers = curl_slist_append(c->api_headers, "Expect:");
  c->dl_headers = curl_slist_append(NULL, "Accept: video/mp4, */*");
  if (!c->multi || !c->base_url || !c->api_key || !c->user_agent || !c->api_headers || !c->dl_headers) {
    snprintf(errbuf, errlen, "out of memory");
    sv_client_free(c);
    return NULL;
  }
  if (c->cfg.max_connections < 1) c->cfg.max_connections = 1;
  curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c->cfg.max_connections);
  curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->cfg.max_connections);
  return c;
}

static void detach_easy(sv_req *r) {
  if (r->easy) {
    if (r->cl && r->state == ST_RUNNING) curl_multi_remove_handle(r->cl->multi, r->easy);
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
  }
  if (r->headers) { curl_slist_free_all(r->headers); r->headers = NULL; }
}

static void close_part(sv_req *r, int remove_it) {
  if (r->fd >= 0) { close(r->fd); r->fd = -1; }
  if (remove_it && r->dl_part) unlink(r->dl_part);
}

void sv_client_free(sv_client *c) {
  sv_req *r;
  if (!c) return;
  while ((r = c->reqs) != NULL) {
    c->reqs = r->next;
    detach_easy(r);
    if (r->op == SV_OP_DOWNLOAD && r->state != ST_DONE) close_part(r, 1);
    if (r->state != ST_DONE) {
      r->failed = 1;
      sv_error_clear(&r->err);
      sv_error_set(&r->err, SV_E_IO, NULL, "the client was closed before the request finished");
      r->state = ST_DONE;
    }
    r->cl = NULL;
    r->prev = r->next = NULL;
  }
  if (c->multi) curl_multi_cleanup(c->multi);
  curl_slist_free_all(c->api_headers);
  curl_slist_free_all(c->dl_headers);
  free(c->base_url);
  free(c->api_key);
  free(c->ca_file);
  free(c->user_agent);
  free(c);
}

int sv_client_active(const sv_client *c) {
  int n = 0;
  const sv_req *r;
  for (r = c->reqs; r; r = r->next) n += r->state != ST_DONE;
  return n;
}

/* ------------------------------------------------------- request setup */

static sv_req *new_req(sv_client *c, sv_op op, double deadline) {
  sv_req *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->cl = c;
  r->op = op;
  r->id = ++c->next_id;
  r->state = ST_WAITING;
  r->due = 0;
  r->deadline = deadline;
  r->fd = -1;
  r->total = -1;
  sv_buf_init(&r->send);
  sv_buf_init(&r->recv);
  sv_error_clear(&r->err);
  r->next = c->reqs;
  if (c->reqs) c->reqs->prev = r;
  c->reqs = r;
  return r;
}

static sv_req *api_req(sv_client *c, sv_op op, const char *path, double deadline, sv_error *err) {
  sv_req *r = new_req(c, op, deadline);
  size_t n;
  if (!r) { sv_error_set(err, SV_E_IO, NULL, "out of memory"); return NULL; }
  n = strlen(c->base_url) + strlen(path) + 1;
  r->url = malloc(n);
  if (!r->url) { sv_req_free(r); sv_error_set(err, SV_E_IO, NULL, "out of memory"); return NULL; }
  snprintf(r->url, n, "%s%s", c->base_url, path);
  snprintf(r->path, sizeof r->path, "%s", path);
  return r;
}

/* Every API request needs the key; without one nothing is sent.  (Downloads do
   not: the video's host never sees the key.) */
static int need_key(const sv_client *c, sv_error *err) {
  if (c->api_key[0]) return 0;
  return sv_error_set(err, SV_E_AUTH, NULL, "no API key: set STARVIDEOS_API_KEY or pass api_key to starvideos.new");
}

sv_req *sv_client_create(sv_client *c, const sv_params *p, double deadline, sv_error *err) {
  sv_buf body;
  const char *path;
  sv_req *r;
  sv_buf_init(&body);
  /* an invalid request is named first, with or without a key */
  if (sv_build_create(p, &body, &path, err) || need_key(c, err)) { sv_buf_free(&body); return NULL; }
  r = api_req(c, SV_OP_CREATE, path, deadline, err);
  if (!r) { sv_buf_free(&body); return NULL; }
  r->send = body;
  return r;
}

sv_req *sv_client_query(sv_client *c, const char *id, size_t len, double deadline, sv_error *err) {
  sv_buf path;
  sv_req *r;
  sv_buf_init(&path);
  if (sv_result_path(id, len, &path, err) || need_key(c, err)) { sv_buf_free(&path); return NULL; }
  r = api_req(c, SV_OP_QUERY, sv_buf_cstr(&path), deadline, err);
  sv_buf_free(&path);
  return r;
}

sv_req *sv_client_download(sv_client *c, const sv_download_opts *o, double deadline, sv_error *err) {
  sv_req *r;
  size_t n;
  const char *u = o->url, *q;
  int skip = u ? sv_url_scheme(u, strlen(u)) : 0;
  if (skip <= 0) {
    sv_buf b;
    sv_buf_init(&b);
    sv_quote(&b, u ? u : "", u ? strlen(u) : 0, 60);
    sv_error_set(err, SV_E_INVALID, "video_url", "video_url: expected an http(s) URL, got %s", sv_buf_cstr(&b));
    sv_buf_free(&b);
    return NULL;
  }
  if (!o->path || !*o->path) { sv_error_set(err, SV_E_INVALID, "path", "path: expected a file path"); return NULL; }
  r = new_req(c, SV_OP_DOWNLOAD, deadline);
  if (!r) { sv_error_set(err, SV_E_IO, NULL, "out of memory"); return NULL; }
  n = strlen(o->path) + 6;
  r->url = dupstr(u);
  r->dl_path = dupstr(o->path);
  r->dl_part = malloc(n);
  if (!r->url || !r->dl_path || !r->dl_part) {
    sv_req_free(r);
    sv_error_set(err, SV_E_IO, NULL, "out of memory");
    return NULL;
  }
  snprintf(r->dl_part, n, "%s.part", o->path);
  r->resume_limit = o->resume_limit;
  /* events name the video's path, never its query string (signed URLs) */
  q = strchr(u + skip, '/');
  snprintf(r->path, sizeof r->path, "%.*s", q ? (int)strcspn(q, "?#") : 1, q ? q : "/");
  r->fd = open(r->dl_part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (r->fd < 0) {
    sv_error_set(err, SV_E_IO, "path", "cannot write %s: %s", r->dl_part, strerror(errno));
    sv_req_free(r);
    return NULL;
  }
  return r;
}

/* ----------------------------------------------------- curl callbacks */

static size_t on_header(char *buf, size_t size, size_t n, void *ud) {
  sv_req *r = ud;
  size_t len = size * n;
  if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
    r->retry_after[0] = '\0';
    r->range_start = -1;
  } else if (len > 12 && strncasecmp(buf, "Retry-After:", 12) == 0) {
    size_t a = 12, z = len;
    while (a < z && (buf[a] == ' ' || buf[a] == '\t')) a++;
    while (z > a && (buf[z - 1] == '\r' || buf[z - 1] == '\n' || buf[z - 1] == ' ')) z--;
    snprintf(r->retry_after, sizeof r->retry_after, "%.*s", (int)(z - a), buf + a);
  } else if (r->op == SV_OP_DOWNLOAD && len > 14 && strncasecmp(buf, "Content-Range:", 14) == 0) {
    long long a = -1, b = -1, t = -1;
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%.*s", (int)(len - 14), buf + 14);
    if (sscanf(tmp, " bytes %lld-%lld/%lld", &a, &b, &t) == 3) {
      r->range_start = (curl_off_t)a;
      r->total = (curl_off_t)t;
    }
  }
  return len;
}

static size_t on_api_body(char *buf, size_t size, size_t n, void *ud) {
  sv_req *r = ud;
  size_t len = size * n;
  if (r->recv.len + len > MAX_ANSWER) { r->too_big = 1; return 0; }
  sv_buf_add(&r->recv, buf, len);
  return r->recv.oom ? 0 : len;
}

/* The first bytes of an answer decide where the body goes: 200/206 to the file,
   anything else to memory (it is an error page). */
static int start_body(sv_req *r) {
  long status = 0;
  curl_off_t cl = -1;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  r->body_started = 1;
  r->body_to_file = 0;
  if (status == 206 && r->range_start == r->have && r->have > 0) {
    r->body_to_file = 1;
  } else if (status == 200) {
    if (r->have > 0) { /* the server ignored Range: start again */
      if (ftruncate(r->fd, 0) != 0 || lseek(r->fd, 0, SEEK_SET) != 0) { r->io_errno = errno; return -1; }
      r->have = 0;
    }
    curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    r->total = cl >= 0 ? cl : -1;
    r->body_to_file = 1;
  }
  return 0;
}

static size_t on_video_body(char *buf, size_t size, size_t n, void *ud) {
  sv_req *r = ud;
  size_t len = size * n, done = 0;
  if (!r->body_started && start_body(r)) return 0;
  if (!r->body_to_file) {
    if (r->recv.len < 64 * 1024) sv_buf_add(&r->recv, buf, len);
    return len;
  }
  while (done < len) {
    ssize_t w = write(r->fd, buf + done, len - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      r->io_errno = errno;
      return 0;
    }
    done += (size_t)w;
  }
  r->have += (curl_off_t)len;
  return len;
}

/* ------------------------------------------------------------ attempts */

static void finish(sv_req *r) {
  detach_easy(r);
  r->state = ST_DONE;
}

static void fail(sv_req *r) {
  scrub(r->cl, r->err.message);
  if (r->op == SV_OP_DOWNLOAD) close_part(r, 1);
  r->failed = 1;
  finish(r);
}

static int start_attempt(sv_client *c, sv_req *r, double now) {
  CURL *e;
  double left = c->cfg.timeout;
  if (r->deadline > 0) {
    if (now >= r->deadline) {
      if (r->attempt == 0)
        sv_error_set(&r->err, SV_E_TIMEOUT, NULL, "%s: the deadline passed before the request could be sent",
                     r->op == SV_OP_CREATE ? "create" : r->op == SV_OP_QUERY ? "query" : "download");
      /* otherwise the previous attempt's error stands */
      fail(r);
      return 1;
    }
    if (r->op == SV_OP_DOWNLOAD || r->deadline - now < left) left = r->deadline - now;
  }
  e = r->easy ? r->easy : curl_easy_init();
  if (!e) {
    sv_error_set(&r->err, SV_E_IO, NULL, "out of memory");
    fail(r);
    return 1;
  }
  curl_easy_reset(e);
  r->easy = e;
  r->attempt++;
  r->attempt_start = now;
  r->retry_after[0] = '\0';
  r->too_big = 0;
  r->body_started = 0;
  r->range_start = -1;
  r->curl_msg[0] = '\0';
  r->recv.len = 0;
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  curl_easy_setopt(e, CURLOPT_URL, r->url);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->curl_msg);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->cfg.connect_timeout * 1000));
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  if (c->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
  if (r->op == SV_OP_DOWNLOAD) {
    /* no API key here: the video lives on another host */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->dl_headers);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_video_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    /* a large file may take long: stall detection instead of a total limit */
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)(c->cfg.timeout > 1 ? c->cfg.timeout : 1));
    if (r->deadline > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(left * 1000) + 1);
    if (r->have > 0) curl_easy_setopt(e, CURLOPT_RESUME_FROM_LARGE, r->have);
  } else {
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->api_headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_api_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(left * 1000) + 1);
    if (r->op == SV_OP_CREATE) {
      /* A create never rides a reused connection: when a kept-alive connection
         dies under a request, libcurl silently sends it again on a new one, and
         a create the server already took would be paid twice.  The fresh
         connection is still kept for the queries that follow. */
      curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, sv_buf_cstr(&r->send));
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)r->send.len);
    }
  }
  if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
    sv_error_set(&r->err, SV_E_IO, NULL, "libcurl refused the transfer");
    fail(r);
    return 1;
  }
  r->state = ST_RUNNING;
  push_event(c, SV_EV_REQUEST, r);
  return 0;
}

static sv_transport classify(CURLcode rc, CURL *e, sv_error *err, const char *what, const char *msg) {
  curl_off_t sent = 0;
  sv_kind kind = SV_E_NETWORK;
  sv_transport tr;
  curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &sent);
  switch (rc) {
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_SSL_CONNECT_ERROR:
    tr = SV_TR_NOT_SENT;
    break;
  case CURLE_OPERATION_TIMEDOUT:
    kind = SV_E_TIMEOUT;
    tr = sent > 0 ? SV_TR_TIMEOUT : SV_TR_NOT_SENT;
    break;
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_URL_MALFORMAT:
  case CURLE_TOO_MANY_REDIRECTS:
    tr = SV_TR_FATAL;
    break;
  case CURLE_WEIRD_SERVER_REPLY:
    kind = SV_E_PROTOCOL;
    tr = SV_TR_BROKEN;
    break;
  default:
    tr = sent > 0 ? SV_TR_BROKEN : SV_TR_NOT_SENT;
  }
  sv_error_set(err, kind, NULL, "%s: %s: %s", what, kind == SV_E_TIMEOUT ? "timed out" : "network error",
               msg && *msg ? msg : curl_easy_strerror(rc));
  return tr;
}

/* A download attempt ended: done (the file in place, or failed), or resumed later. */
static void end_download(sv_client *c, sv_req *r, CURLcode rc, double now) {
  long status = 0;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  if (r->io_errno) {
    sv_error_set(&r->err, SV_E_IO, "path", "download: cannot write %s: %s", r->dl_part, strerror(r->io_errno));
    fail(r);
    return;
  }
  if (rc == CURLE_OK && (status == 200 || status == 206)) {
    if (!r->body_started && start_body(r)) { /* an empty body */
      sv_error_set(&r->err, SV_E_IO, "path", "download: cannot write %s: %s", r->dl_part, strerror(r->io_errno));
      fail(r);
      return;
    }
    if (r->total >= 0 && r->have != r->total) {
      rc = CURLE_PARTIAL_FILE; /* fall through to the resume logic below */
    } else {
      if (fsync(r->fd) != 0 || close(r->fd) != 0) {
        r->fd = -1;
        sv_error_set(&r->err, SV_E_IO, "path", "download: cannot write %s: %s", r->dl_part, strerror(errno));
        fail(r);
        return;
      }
      r->fd = -1;
      if (rename(r->dl_part, r->dl_path) != 0) {
        sv_error_set(&r->err, SV_E_IO, "path", "download: cannot rename %s into place: %s", r->dl_part, strerror(errno));
        fail(r);
        return;
      }
      push_event(c, SV_EV_RESPONSE, r)->status = status;
      finish(r);
      return;
    }
  }
  if (rc == CURLE_OK) { /* an HTTP error: 403/404/410 mean an expired URL */
    sv_answer a;
    memset(&a, 0, sizeof a);
    a.op = SV_OP_DOWNLOAD;
    a.status = status;
    a.body = r->recv.data;
    a.body_len = r->recv.len;
    a.retry_after = r->retry_after[0] ? r->retry_after : NULL;
    sv_read_answer(&a, sv_wallclock(), &r->err);
    if (status >= 500 && r->resumes < r->resume_limit) goto retry;
    fail(r);
    return;
  }
  {
    sv_transport tr = classify(rc, r->easy, &r->err, "download", r->curl_msg);
    if (tr == SV_TR_FATAL || r->resumes >= r->resume_limit) { fail(r); return; }
  }
retry : {
  double delay = c->cfg.backoff * (0.5 + 0.5 * rnd01(c));
  sv_event *ev;
  r->resumes++;
  r->due = now + delay;
  ev = push_event(c, SV_EV_RETRY, r);
  ev->status = status;
  ev->delay = delay;
  snprintf(ev->reason, sizeof ev->reason, "%s; resuming at byte %lld", r->err.message, (long long)r->have);
  curl_multi_remove_handle(c->multi, r->easy);
  r->state = ST_WAITING;
}
}

static void end_api(sv_client *c, sv_req *r, CURLcode rc, double now) {
  long status = 0;
  sv_transport tr = SV_TR_NONE;
  double delay = 0;
  const char *what = r->op == SV_OP_CREATE ? "create" : "query";
  sv_event *ev;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  sv_error_clear(&r->err);
  if (rc == CURLE_OK) {
    sv_answer a;
    a.op = r->op;
    a.status = status;
    a.body = r->recv.data ? r->recv.data : "";
    a.body_len = r->recv.len;
    a.retry_after = r->retry_after[0] ? r->retry_after : NULL;
    ev = push_event(c, SV_EV_RESPONSE, r);
    ev->status = status;
    ev->elapsed = now - r->attempt_start;
    if (sv_read_answer(&a, sv_wallclock(), &r->err) == 0) { finish(r); return; }
  } else if (r->too_big) {
    sv_error_set(&r->err, SV_E_PROTOCOL, NULL, "%s: the answer is larger than %d bytes", what, MAX_ANSWER);
    r->err.status = status;
    tr = SV_TR_BROKEN;
  } else {
    tr = classify(rc, r->easy, &r->err, what, r->curl_msg);
  }
  if (!sv_retry_decide(r->op, tr, &r->err, r->attempt, c->cfg.max_retries, c->cfg.backoff,
                       c->cfg.max_retry_wait, rnd01(c), &delay) ||
      (r->deadline > 0 && now + delay >= r->deadline)) {
    fail(r);
    return;
  }
  r->due = now + delay;
  ev = push_event(c, SV_EV_RETRY, r);
  ev->status = r->err.status;
  ev->delay = delay;
  snprintf(ev->reason, sizeof ev->reason, "%s", r->err.message);
  scrub(c, ev->reason);
  curl_multi_remove_handle(c->multi, r->easy);
  r->state = ST_WAITING;
}

static int collect(sv_client *c) {
  CURLMsg *m;
  int left, finished = 0;
  double now = sv_monotonic();
  while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
    sv_req *r = NULL;
    if (m->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    if (!r) continue;
    if (r->op == SV_OP_DOWNLOAD) end_download(c, r, m->data.result, now);
    else end_api(c, r, m->data.result, now);
    finished += r->state == ST_DONE;
  }
  return finished;
}

/* Start what is due, end what is past its deadline. */
static int schedule(sv_client *c, double now) {
  sv_req *r;
  int finished = 0;
  for (r = c->reqs; r; r = r->next) {
    if (r->state == ST_WAITING && r->due <= now) {
      finished += start_attempt(c, r, now);
    } else if (r->state == ST_RUNNING && r->deadline > 0 && now >= r->deadline + 0.05) {
      /* curl's own timeout should have fired; this is the backstop */
      sv_error_set(&r->err, SV_E_TIMEOUT, NULL, "%s: the deadline passed",
                   r->op == SV_OP_DOWNLOAD ? "download" : r->op == SV_OP_CREATE ? "create" : "query");
      if (r->op == SV_OP_CREATE) r->err.maybe_created = 1;
      fail(r);
      finished++;
    }
  }
  return finished;
}

/* Seconds until the next waiting request is due, or -1 when none waits. */
static double next_due(const sv_client *c, double now) {
  const sv_req *r;
  double best = -1;
  for (r = c->reqs; r; r = r->next)
    if (r->state == ST_WAITING && (best < 0 || r->due - now < best)) best = r->due - now;
  return best < 0 ? -1 : best > 0 ? best : 0;
}

int sv_client_perform(sv_client *c, double max_wait) {
  double start = sv_monotonic(), now = start;
  int finished = 0, running = 0;
  for (;;) {
    double left, wait, due;
    finished += schedule(c, now);
    curl_multi_perform(c->multi, &running);
    finished += collect(c);
    if (finished || max_wait <= 0) break;
    now = sv_monotonic();
    left = start + max_wait - now;
    if (left <= 0 || !sv_client_active(c)) break;
    wait = left;
    due = next_due(c, now);
    if (due >= 0 && due < wait) wait = due;
    curl_multi_poll(c->multi, NULL, 0, (int)ceil(wait * 1000), NULL);
    now = sv_monotonic();
  }
  return finished;
}

/* ------------------------------------------------------------- results */

int sv_req_done(const sv_req *r) { return r->state == ST_DONE; }
unsigned sv_req_id(const sv_req *r) { return r->id; }

int sv_req_result(const sv_req *r, const char **body, size_t *len, const sv_error **err) {
  if (r->failed) {
    *err = &r->err;
    return -1;
  }
  *body = r->op == SV_OP_DOWNLOAD ? "" : (r->recv.data ? r->recv.data : "");
  *len = r->op == SV_OP_DOWNLOAD ? 0 : r->recv.len;
  return 0;
}

void sv_req_progress(const sv_req *r, sv_progress *p) {
  p->now_bytes = (double)r->have;
  p->total_bytes = (double)r->total;
  p->attempt = r->attempt;
}

void sv_req_free(sv_req *r) {
  if (!r) return;
  detach_easy(r);
  /* a cancelled download leaves nothing behind; a failed one already cleaned up */
  if (r->op == SV_OP_DOWNLOAD) close_part(r, r->state != ST_DONE);
  if (r->cl) {
    if (r->prev) r->prev->next = r->next;
    else r->cl->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
  }
  sv_buf_free(&r->send);
  sv_buf_free(&r->recv);
  free(r->url);
  free(r->dl_path);
  free(r->dl_part);
  free(r);
}
