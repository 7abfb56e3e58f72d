/* Shared by the libFuzzer targets: a reader of the fuzz bytes, and the check that
   turns a broken property into a crash libFuzzer keeps (abort, with the reason). */
#ifndef SV_FUZZ_H
#define SV_FUZZ_H

#include "../core/sv_core.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PROPERTY(cond, what)                                                        \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      fprintf(stderr, "property broken at %s:%d: %s (%s)\n", __FILE__, __LINE__,    \
              what, #cond);                                                         \
      abort();                                                                      \
    }                                                                               \
  } while (0)

typedef struct reader {
  const uint8_t *p;
  size_t left;
} reader;

static inline unsigned take_byte(reader *r) {
  if (!r->left) return 0;
  r->left--;
  return *r->p++;
}

/* Up to n bytes (fewer at the end); *got says how many. */
static inline const char *take_bytes(reader *r, size_t n, size_t *got) {
  const char *s = (const char *)r->p;
  if (n > r->left) n = r->left;
  r->p += n;
  r->left -= n;
  *got = n;
  return s;
}

/* A wall clock for a parser that reads times: usually 1.7e9, sometimes eight bytes of the input, sometimes a
   hostile value (0, negative, huge, infinite, NaN), as the first byte picks. */
static inline double take_clock(reader *r) {
  static const double odd[] = { 0, -1, 1e300, -1e300, HUGE_VAL, -HUGE_VAL, NAN, 4e18 };
  double now = 1.7e9;
  unsigned pick = take_byte(r);
  if (pick % 4 == 1 && r->left >= sizeof now) {
    memcpy(&now, r->p, sizeof now);
    r->p += sizeof now;
    r->left -= sizeof now;
  } else if (pick % 4 == 2) {
    now = odd[(pick / 4) % (sizeof odd / sizeof odd[0])];
  }
  return now;
}

/* A NUL-terminated copy of s[0..len), for APIs that want C strings. */
static inline char *dup_cstr(const char *s, size_t len) {
  char *c = malloc(len + 1);
  if (!c) abort();
  if (len) memcpy(c, s, len);
  c[len] = '\0';
  return c;
}

/* sv_json_duplicate_in over the top-level members of text: 1 (the key in dup, may be NULL), 0, -1 when text is
   not one well-formed object, -2 out of memory. */
static inline int duplicate_key(const char *text, size_t len, sv_buf *dup) {
  sv_buf ms = { 0 };
  int n = sv_json_read(text, len, NULL, &ms, NULL, 0);
  if (n >= 0) n = ms.oom ? -2 : sv_json_duplicate_in((const sv_json_member *)(void *)ms.data, (size_t)n, dup);
  sv_buf_free(&ms);
  return n;
}

#endif
