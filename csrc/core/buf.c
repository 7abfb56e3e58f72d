/* The core's growable buffer (sv_buf): it notes running out of memory instead
   of failing each call. */
#include "sv_core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sv_buf_free(sv_buf *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
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

char *sv_buf_reserve(sv_buf *b, size_t n) { return grow(b, n) ? NULL : b->data + b->len; }

void sv_buf_commit(sv_buf *b, char *end) {
  b->len = (size_t)(end - b->data);
  b->data[b->len] = '\0';
}

void sv_buf_addf(sv_buf *b, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || grow(b, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

const char *sv_buf_cstr(sv_buf *b) { return b->data ? b->data : ""; }
