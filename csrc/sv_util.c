/* Buffers, errors, quoting and UTF-8 for the starvideos core. */
#include "sv_core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void sv_buf_init(sv_buf *b) { memset(b, 0, sizeof *b); }

void sv_buf_free(sv_buf *b) {
  free(b->data);
  sv_buf_init(b);
}

static int grow(sv_buf *b, size_t extra) {
  size_t need, cap;
  char *p;
  if (b->oom) return -1;
  if (extra > (size_t)-1 / 2 - b->len) { b->oom = 1; return -1; }
  need = b->len + extra + 1;
  if (need <= b->cap) return 0;
  cap = b->cap ? b->cap : 64;
  while (cap < need) cap *= 2;
  p = realloc(b->data, cap);
  if (!p) { b->oom = 1; return -1; }
  b->data = p;
  b->cap = cap;
  return 0;
}

void sv_buf_add(sv_buf *b, const void *p, size_t n) {
  if (n == 0 || grow(b, n)) return;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void sv_buf_adds(sv_buf *b, const char *s) { sv_buf_add(b, s, strlen(s)); }

void sv_buf_addf(sv_buf *b, const char *fmt, ...) {
  va_list ap;
  int n;
  char small[256];
  va_start(ap, fmt);
  n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) { sv_buf_add(b, small, (size_t)n); return; }
  if (grow(b, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

const char *sv_buf_cstr(sv_buf *b) { return b->data ? b->data : ""; }

static const char *const kind_names[] = {
  "ok", "invalid_request", "auth", "not_found", "rate_limited", "server",
  "network", "timeout", "task_failed", "protocol", "io"
};

const char *sv_kind_name(sv_kind k) {
  if ((unsigned)k >= sizeof kind_names / sizeof kind_names[0]) return "protocol";
  return kind_names[k];
}

void sv_error_clear(sv_error *e) {
  memset(e, 0, sizeof *e);
  e->retry_after = -1;
}

int sv_error_set(sv_error *e, sv_kind k, const char *field, const char *fmt, ...) {
  va_list ap;
  e->kind = k;
  snprintf(e->field, sizeof e->field, "%s", field ? field : "");
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  return -1;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t left) {
  unsigned c = s[0];
  size_t n, i;
  unsigned long cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; }
  else return 0;
  if (left < n) return 0;
  for (i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  return n;
}

long sv_utf8_count(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  long count = 0;
  while (i < len) {
    size_t n = utf8_seq(p + i, len - i);
    if (!n) return -1;
    i += n;
    count++;
  }
  return count;
}

void sv_quote(sv_buf *out, const char *s, size_t len, size_t max) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  sv_buf_add(out, "\"", 1);
  while (i < len) {
    size_t n = utf8_seq(p + i, len - i);
    if (i >= max) { sv_buf_adds(out, "..."); break; }
    if (n == 1 && p[i] >= 0x20 && p[i] != 0x7F && p[i] != '"' && p[i] != '\\') {
      sv_buf_add(out, p + i, 1);
    } else if (n > 1) {
      sv_buf_add(out, p + i, n);
    } else if (p[i] == '"' || p[i] == '\\') {
      sv_buf_addf(out, "\\%c", p[i]);
      n = 1;
    } else {
      sv_buf_addf(out, "\\x%02X", p[i]);
      n = 1;
    }
    i += n;
  }
  sv_buf_add(out, "\"", 1);
}

double sv_monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double sv_wallclock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
