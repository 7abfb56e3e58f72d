/* What comes back of an exchange: its answer's header lines, its body (through the unit chosen when it was made:
   memory, memory and a tap, or a file), the .parts of unfinished downloads kept for the next attempt, and its
   redirects, followed by hand.  Every unit runs in the caller's polls, on the multi handle: a pass gives each
   exchange its unit's step at most, then holds it paused until the next pass. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The .part of a download that ended unfinished, by its file's name, so that the next attempt at that file goes
   on through it only while it is still the file as written (sv_part_same): one replaced, cut or linked meanwhile
   (another download, another process) starts again at 0, as in the nginx transport. */
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

void sv_body_free_left(sv_http *h) {
  while (h->left) sv_part_free(left_take(h, sv_part_path(h->left->part)));
}

/* part, of a download that ended unfinished, kept for the next attempt at its file (in place of one kept there
   before); the oldest beyond SV_PARTS_KEPT go. */
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

/* The .part a download writes through (sv_part: never through a symbolic or a hard link planted at its name),
   from the one an unfinished attempt here left (h->left), by the rule of both transports (sv_part_resume).  0, or
   -1 with err. */
int sv_body_open(sv_http *h, sv_xfer *x, sv_error *err) {
  sv_buf why = {0};
  x->part = sv_part_resume(left_take(h, x->file), x->file, &x->offset, &why);
  if (!x->part) sv_error_set(err, SV_E_IO, "path", "%s", sv_buf_cstr(&why));
  sv_buf_free(&why);
  x->have = x->offset; /* (it may start again from 0) */
  return x->part ? 0 : -1;
}

int sv_xfer_has_part(const sv_xfer *x) { return x->part != NULL; }

sv_part *sv_xfer_part(sv_xfer *x, int whole) {
  sv_part *part = x->part;
  if (!part || x->list != L_NONE) return NULL;
  x->part = NULL;
  if (whole) return part;
  if (x->h) left_put(x->h, part);
  else sv_part_free(part); /* the transport is closed */
  return NULL;
}

void sv_xfer_progress(sv_xfer *x, double *bytes, double *total) {
  *bytes = x->have;
  *total = x->total;
}

/* The value of the header line buf[0, len) when it is name's ("Name:"), without the blanks around it and the
   line's end (*n bytes); else NULL. */
static const char *value_of(const char *buf, size_t len, const char *name, size_t *n) {
  size_t a = strlen(name), z = len;
  if (len <= a || strncasecmp(buf, name, a) != 0) return NULL;
  while (a < z && (buf[a] == ' ' || buf[a] == '\t')) a++;
  while (z > a && (buf[z - 1] == '\r' || buf[z - 1] == '\n' || buf[z - 1] == ' ' || buf[z - 1] == '\t')) z--;
  *n = z - a;
  return buf + a;
}

/* The server's own request id, from the service's header line buf[0, len): x-request-id over request-id over
   cf-ray, and any of them over a value that only echoes ours (docs/reference.md "Request ids"). */
static void note_server_id(sv_xfer *x, const char *buf, size_t len) {
  static const char *const names[] = { "X-Request-Id:", "Request-Id:", "CF-Ray:" };
  size_t i, vn;
  const char *v = NULL;
  int rank;
  for (i = 0; i < 3 && !v; i++) v = value_of(buf, len, names[i], &vn);
  if (!v || vn == 0 || vn > SV_REQUEST_ID_MAX) return;
  rank = (int)(5 - i); /* (i: one past the name found) 4, 3, 2; an echo of ours, whatever its name: 1 */
  if (strlen(x->request_id) == vn && memcmp(v, x->request_id, vn) == 0) rank = 1;
  if (rank <= x->server_rank) return;
  memcpy(x->server_id, v, vn);
  x->server_id[vn] = '\0';
  x->server_rank = rank;
}

/* What only the service's answer says (a header line of it, after its status line): its id, its rate-limit
   families (RateLimit*, X-RateLimit-*: the core reads them, sv_read_limits; kept to 4 KiB) and its Date (read
   when asked: sv_http_clock). */
static void service_line(sv_xfer *x, const char *buf, size_t len) {
  size_t vn;
  const char *v;
  note_server_id(x, buf, len);
  if (x->limits.len < 4096 && ((len > 9 && strncasecmp(buf, "RateLimit", 9) == 0) ||
                               (len > 11 && strncasecmp(buf, "X-RateLimit", 11) == 0))) {
    sv_buf_add(&x->limits, buf, len - (buf[len - 2] == '\r' ? 2 : 1)), sv_buf_add(&x->limits, "\n", 1);
  } else if ((v = value_of(buf, len, "Date:", &vn)) != NULL) {
    snprintf(x->h->date, sizeof x->h->date, "%.*s", (int)vn, v);
    x->h->date_at = sv_wallclock();
  }
}

size_t sv_on_header(char *buf, size_t size, size_t n, void *ud) {
  sv_xfer *x = ud;
  size_t len = size * n, vn;
  const char *v;
  int first = len >= 5 && memcmp(buf, "HTTP/", 5) == 0; /* a new answer (after a redirect, say) */
  if (x->keep_heads && x->heads.len < 16384 && len > 2) { /* (the blank line that ends them: not kept) */
    if (first) x->heads.len = 0;
    else sv_buf_add(&x->heads, buf, len - (buf[len - 2] == '\r' ? 2 : 1)), sv_buf_add(&x->heads, "\n", 1);
  }
  if (first) {
    x->retry_after[0] = '\0';
    x->limits.len = 0;
    x->server_id[0] = '\0', x->server_rank = 0;
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
  } else if ((v = value_of(buf, len, "Content-Range:", &vn)) != NULL) { /* (a download's, a ranged exchange's) */
    sv_content_range(v, vn, &x->range_start, &x->range_total); /* (else both stay -1) */
  } else if (x->service) {
    service_line(x, buf, len);
  }
  return len;
}

/* libcurl's bytes of x's body: to its unit, at most its step in a poll's pass (then paused: libcurl keeps these
   bytes and gives them again once the next pass resumes it, multi.c). */
size_t sv_on_body(char *buf, size_t size, size_t n, void *ud) {
  sv_xfer *x = ud;
  size_t len = size * n, took;
  if (x->pass != x->h->pass) x->pass = x->h->pass, x->fed = 0;
  if (x->fed > 0 && x->fed + len > x->unit->step) {
    x->paused = 1;
    x->h->n_paused++;
    return CURL_WRITEFUNC_PAUSE;
  }
  if (!x->started && (x->started = 1, x->unit->start(x) != 0)) return 0;
  took = x->unit->write(x, buf, len);
  if (took == len) x->fed += len;
  return took;
}

static int no_start(sv_xfer *x) { (void)x; return 0; }

/* The size of the file the answer is of: a 206's Content-Range total, else its Content-Length (-1: none said). */
static double answer_total(const sv_xfer *x) {
  curl_off_t cl = -1;
  if (x->status == 206) return x->range_total;
  curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
  return cl >= 0 ? (double)cl : -1;
}

/* Memory's end: the bytes kept, and the file's size when a ranged exchange asked a part of one. */
static void memory_end(sv_xfer *x, CURLcode rc) {
  (void)rc;
  x->total = answer_total(x);
  x->have = (double)x->recv.len;
}

/* Whether the body coming now is the one a tap is fed: a 2xx's, from the byte asked for (not a redirect's, nor an
   error page, nor a 206 from elsewhere in the file, which the verdict refuses; a 200's once to_skip dropped the
   bytes before offset). */
static int tap_now(const sv_xfer *x) {
  long status = x->status;
  if (status < 200 || status > 299) return 0;
  return status == 206 ? x->range_start == x->offset : x->offset == 0 || status == 200; /* (200: past the skip) */
}

/* A tap's part: room for all its bytes at once (no realloc), made at the first byte of the body it is fed. */
static int tap_start(sv_xfer *x) {
  if (tap_now(x) && x->max_body <= ((size_t)1 << 30)) (void)sv_buf_reserve(&x->recv, x->max_body);
  return 0;
}

/* Of len bytes from x->pos of a ranged exchange's 200 to a Range from offset > 0 (a host that ignores Range: the
   whole file), those before offset: dropped, never kept (x->pos moves past them once libcurl's bytes are taken). */
static size_t to_skip(const sv_xfer *x, size_t len) {
  if (!x->range || x->pos >= x->offset || x->status != 200) return 0;
  return x->offset - x->pos < (double)len ? (size_t)(x->offset - x->pos) : len;
}

/* The bytes of len (from buf) memory keeps: past to_skip's, within max_body. */
static size_t to_keep(const sv_xfer *x, size_t len) {
  len -= to_skip(x, len);
  if (x->recv.len + len > x->max_body) len = x->max_body - x->recv.len;
  return len;
}

/* A held exchange's (sv_send's hold) part is full and more of the file follows: the keep bytes at buf end the
   part, and the transfer is paused there (libcurl gives these bytes again at sv_xfer_go_on, from x->pos: to_skip
   drops those taken), the exchange finished as far as its owner can tell, its connection kept. */
static size_t hold_at(sv_xfer *x, const char *buf, size_t keep) {
  sv_buf_add(&x->recv, buf, keep);
  if (x->recv.oom) return 0;
  x->total = answer_total(x); /* (a 200's: the whole file's length) */
  x->have = (double)x->recv.len;
  x->wire = SV_WIRE_NONE;
  x->tap = NULL;
  sv_curl_held(x);
  return CURL_WRITEFUNC_PAUSE;
}

static size_t memory_write(sv_xfer *x, const char *buf, size_t all) {
  size_t drop = to_skip(x, all), len = all - drop, keep = to_keep(x, all);
  buf += drop;
  if (keep < len && x->hold && x->status == 200) return hold_at(x, buf, keep); /* (the file goes on past the part) */
  x->pos += (double)all; /* (not before a pause: libcurl gives the same bytes again) */
  sv_buf_add(&x->recv, buf, keep); /* an over-long answer's start kept: a create's may name its task */
  if (keep < len) return x->too_big = 1, 0;
  return x->recv.oom ? 0 : all;
}

/* A tap's: memory's, the bytes kept fed to the tap first (its refusal stops the feeding, not the exchange). */
static size_t tap_write(sv_xfer *x, const char *buf, size_t all) {
  size_t keep = to_keep(x, all);
  if (x->tap && keep && tap_now(x) && x->tap->feed(x->tap, buf + to_skip(x, all), keep) != 0) x->tap = NULL;
  return memory_write(x, buf, all);
}

/* The .part could not be written: the exchange ends as SV_WIRE_IO, saying why. */
static int io_failed(sv_xfer *x, sv_buf *why) {
  snprintf(x->message, sizeof x->message, "%s", sv_buf_cstr(why));
  sv_buf_free(why);
  x->io_failed = 1;
  return -1;
}

/* A file's first bytes decide where its body goes: a 200 to the .part from byte 0 (a new file when it holds
   bytes: never appended), a 206 from the byte its Content-Range names, which must be the one asked (the .part cut
   there), anything else to memory (an error page).  The nginx transport does the same (nginx/wire.lua). */
static int file_start(sv_xfer *x) {
  sv_buf why = {0};
  int short_;
  x->body_to_file = 0;
  if (x->status != 200 && x->status != 206) return 0;
  if (x->status == 206 && x->range_start != x->offset) { /* not where it was asked to go on (or no range) */
    x->bad_range = 1;
    return -1;
  }
  x->have = x->status == 206 ? x->range_start : 0; /* (a 200: the server sent everything, start again) */
  x->total = answer_total(x);
  if (x->have > 0 && sv_part_truncate(x->part, x->have, &why) != 0) return io_failed(x, &why);
  if (x->have == 0 && sv_part_at(x->part) > 0) {
    sv_part_free(x->part);
    if (!(x->part = sv_part_open(x->file, 0, &short_, &why))) return io_failed(x, &why);
  }
  x->body_to_file = 1;
  return 0;
}

static size_t file_write(sv_xfer *x, const char *buf, size_t len) {
  sv_buf why = {0};
  if (x->io_failed) return 0; /* (a write refused while libcurl gave back the bytes it kept: never a gap) */
  if (!x->body_to_file) {
    if (x->recv.len < SV_ERROR_PAGE_MAX) sv_buf_add(&x->recv, buf, len);
    return len;
  }
  /* never past the video's length (a 200's Content-Length, a 206's total), else max_body: refused there */
  if (x->have + (double)len > (x->total >= 0 ? x->total : (double)x->max_body)) {
    sv_too_long(x->total >= 0 ? x->total : (double)x->max_body, x->total >= 0, x->url ? x->url : "", x->message,
                sizeof x->message);
    return x->too_big = 1, 0;
  }
  if (sv_part_write(x->part, buf, len, &why) != 0) return io_failed(x, &why), 0;
  x->have += (double)len;
  return len;
}

/* What was received is in the file before anyone looks (the owner's commit checks that the file holds what went
   through the .part); an empty 200 starts from byte 0, nothing written. */
static void file_end(sv_xfer *x, CURLcode rc) {
  sv_buf why = {0};
  if (rc == CURLE_OK && !x->started) x->started = 1, file_start(x);
  if (x->part && sv_part_flush(x->part, &why) != 0 && rc == CURLE_OK && !x->io_failed) io_failed(x, &why);
  sv_buf_free(&why);
  if (rc == CURLE_OK && !x->io_failed && x->body_to_file && x->total < 0) x->total = x->have;
}

/* memory: an answer, an error page, a part of a file; a tap's steps smaller, for its hashing */
static const sv_unit MEMORY = { no_start, memory_write, memory_end, SV_STEP };
static const sv_unit TAP = { tap_start, tap_write, memory_end, SV_TAP_STEP };
static const sv_unit FILE_ = { file_start, file_write, file_end, SV_STEP };

const sv_unit *sv_unit_of(const sv_send *s) { return s->file ? &FILE_ : s->tap ? &TAP : &MEMORY; }

/* After an answer of x on its easy handle: 1 when it was a redirect that x follows, its target now x's URL and the
   handle's, to be performed next; else 0, x done, and a redirect refused (sv_redirect: the one rule of both
   transports) ends it as SV_WIRE_FATAL (x->refused, the rule's message).  The exchange's timeout covers every hop. */
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
  x->started = x->body_to_file = x->too_big = 0;
  x->recv.len = 0;
  curl_easy_setopt(x->easy, CURLOPT_URL, x->url);
  if (x->timeout > 0) {
    double left = x->timeout - (sv_monotonic() - x->t0);
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, left > 0.001 ? sv_curl_ms(left) : 1L);
  }
  return 1;
}
