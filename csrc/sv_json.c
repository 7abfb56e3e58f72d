/* The little JSON the core needs on its own: writing strings into request bodies,
   and checking an answer is one well-formed object while listing its top-level
   members and handing its parts to a sink (the binding builds the Lua table from
   them, in the same pass). */
#include "sv_core.h"

#include <limits.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sv_json_string(sv_buf *out, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t i, run = 0;
  sv_buf_add(out, "\"", 1);
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7F) continue;
    sv_buf_add(out, s + run, i - run);
    run = i + 1;
    switch (c) {
    case '"': sv_buf_adds(out, "\\\""); break;
    case '\\': sv_buf_adds(out, "\\\\"); break;
    case '\n': sv_buf_adds(out, "\\n"); break;
    case '\r': sv_buf_adds(out, "\\r"); break;
    case '\t': sv_buf_adds(out, "\\t"); break;
    default: {
      char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
      sv_buf_add(out, u, 6);
    }
    }
  }
  sv_buf_add(out, s + run, len - run);
  sv_buf_add(out, "\"", 1);
}

/* The scan keeps its position in a local index that each step takes and gives
   back (SCAN_FAILED once why is written), so that the hot loops work in
   registers rather than on a field in memory. */
typedef struct scanner {
  const char *s;
  size_t len;
  char *why;
  size_t whylen;
  sv_json_visit visit; /* called for each complete top-level member, or NULL */
  void *ctx;
  sv_json_member *m;   /* sv_json_read's list: the first max members are written there */
  int max;
  int count;           /* top-level members seen */
  const sv_json_sink *sink; /* handed every part, or NULL */
  int escaped;         /* the last string scanned held a backslash */
} scanner;

#define MAX_DEPTH 64
/* What a step returns in place of a position once it has failed: no position is
   that large, since it is at most the length of text, an object in memory. */
#define SCAN_FAILED ((size_t)-1)

static size_t fail(const scanner *sc, size_t pos, const char *what) {
  if (pos >= sc->len)
    snprintf(sc->why, sc->whylen, "truncated: %s at the end of %zu bytes", what, sc->len);
  else
    snprintf(sc->why, sc->whylen, "%s at byte %zu", what, pos + 1);
  return SCAN_FAILED;
}

/* JSON's four whitespace bytes, as bits of a mask: all are at most ' ' */
#define WS_BITS ((UINT64_C(1) << ' ') | (UINT64_C(1) << '\t') | (UINT64_C(1) << '\n') | (UINT64_C(1) << '\r'))

/* The position past the whitespace at pos. */
static size_t skip_ws_run(const unsigned char *s, size_t len, size_t pos) {
  while (pos < len && s[pos] <= ' ' && (WS_BITS >> s[pos] & 1)) pos++;
  return pos;
}

/* The same, inlined where it is used as one test that usually ends it: the
   service's answers are compact, a byte above ' ' comes next. */
static inline size_t skip_ws(const unsigned char *s, size_t len, size_t pos) {
  return pos < len && s[pos] <= ' ' ? skip_ws_run(s, len, pos) : pos;
}

/* Whether the byte at *pos, past any whitespace (*pos moves past that), is c:
   the byte is tried before the whitespace, as compact text has none. */
static inline int next_is(const unsigned char *s, size_t len, size_t *pos, unsigned char c) {
  if (*pos < len && s[*pos] == c) return 1;
  *pos = skip_ws(s, len, *pos);
  return *pos < len && s[*pos] == c;
}

/* one unsigned compare: c is '0' .. '9' */
#define IS_DIGIT(c) ((unsigned)(c) - '0' <= 9u)

static int ishex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The four hex digits at pos, into *cp; 0 when they are not there. */
static int hex4(const scanner *sc, size_t pos, unsigned *cp) {
  size_t i;
  *cp = 0;
  for (i = 0; i < 4; i++) {
    char c;
    if (pos + i >= sc->len || !ishex(sc->s[pos + i])) return 0;
    c = sc->s[pos + i];
    *cp = *cp * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return 1;
}

/* The bytes that end a run of plain string bytes: '"', '\\' and control characters. */
static const unsigned char string_stop[256] = {
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  0, 0, 1, ['\\'] = 1
};

/* Eight string bytes at once (SWAR): a byte's 0x80 bit is set in the result when
   it is below 0x20 or '"' (the byte xor 2 is then below 0x21: xor 2 moves no
   other byte there) or '\\' (xor '\\' is 0).  Each test: the byte less the bound
   borrows, and the byte itself is below 0x80.  A borrow may also flag a byte above
   a true one, never one below: the lowest flagged byte is the first that stops. */
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

static inline uint64_t string_stops8(uint64_t w) {
  return (((w ^ ONES * 2) - ONES * 0x21) | ((w ^ ONES * '\\') - ONES)) & ~w & HIGHS;
}

/* The index of the lowest flagged byte of f (not 0): that flag alone, moved down
   to bit 0 of its byte, times a constant whose byte 7 - k is k brings k to the top. */
static inline size_t lowest_flag(uint64_t f) {
  return (size_t)(((f & (0 - f)) >> 7) * UINT64_C(0x0001020304050607) >> 56);
}

/* Whether a loaded word's lowest byte is its first in memory: a constant. */
static inline int little_endian(void) {
  const uint64_t one = 1;
  unsigned char first;
  memcpy(&first, &one, 1);
  return first == 1;
}

/* The escape whose backslash is at pos (two when a surrogate pair): the position
   of its last byte, or SCAN_FAILED.  Out of the string loop: escapes are rare. */
static size_t scan_escape(scanner *sc, size_t pos) {
  char e;
  sc->escaped = 1;
  if (++pos >= sc->len) return fail(sc, pos, "unterminated string");
  e = sc->s[pos];
  if (e == 'u') {
    unsigned cp;
    if (!hex4(sc, pos + 1, &cp)) return fail(sc, pos, "bad \\u escape");
    pos += 4;
    /* surrogates come in pairs, as lua-cjson demands */
    if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(sc, pos, "lone low surrogate in a \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      unsigned lo;
      if (pos + 2 >= sc->len || sc->s[pos + 1] != '\\' || sc->s[pos + 2] != 'u' || !hex4(sc, pos + 3, &lo) ||
          lo < 0xDC00 || lo > 0xDFFF)
        return fail(sc, pos, "lone high surrogate in a \\u escape");
      pos += 6;
    }
  } else if (e == '\0' || !strchr("\"\\/bfnrt", e)) { /* (strchr would find a NUL: its terminator) */
    return fail(sc, pos, "bad escape in a string");
  }
  return pos;
}

/* The end of the plain string bytes from pos: the first '"', '\\' or control
   byte, or len.  8 at a time while 8 remain, then one at a time (and there, on a
   machine where a word's lowest byte is not its first, the flagged word's). */
static inline size_t plain_run(const unsigned char *s, size_t len, size_t pos) {
  const size_t wide = len >= 8 ? len - 7 : 0; /* below it, 8 bytes remain */
  while (pos < wide) {
    uint64_t w, f;
    memcpy(&w, s + pos, 8);
    f = string_stops8(w);
    if (f) {
      if (little_endian()) return pos + lowest_flag(f);
      break;
    }
    pos += 8;
  }
  while (pos < len && !string_stop[s[pos]]) pos++;
  return pos;
}

/* A string is scanned where it is used: its first plain run (the whole string
   but its closing quote, as a rule), then, when that did not end at a '"', this:
   from the byte at pos that ended the run, the string's escapes and end, or why
   it fails; the position past the closing quote, sc->escaped set. */
static size_t scan_string_rest(scanner *sc, size_t pos) {
  const unsigned char *s = (const unsigned char *)sc->s;
  const size_t len = sc->len;
  sc->escaped = 0;
  for (;;) {
    if (pos >= len) return fail(sc, pos, "unterminated string");
    if (s[pos] == '"') return pos + 1;
    if (s[pos] < 0x20) return fail(sc, pos, "control character in a string");
    if ((pos = scan_escape(sc, pos)) == SCAN_FAILED) return SCAN_FAILED;
    pos = plain_run(s, len, pos + 1);
  }
}

static size_t scan_number(scanner *sc, size_t pos) {
  const unsigned char *s = (const unsigned char *)sc->s;
  const size_t len = sc->len, start = pos;
  if (s[pos] == '-') pos++;
  if (pos < len && s[pos] == '0') {
    pos++;
  } else {
    if (pos >= len || !IS_DIGIT(s[pos])) return fail(sc, pos, "bad number"); /* '0' was taken above */
    while (++pos < len && IS_DIGIT(s[pos])) {}
  }
  if (pos < len && s[pos] == '.') {
    if (++pos >= len || !IS_DIGIT(s[pos])) return fail(sc, pos, "bad number");
    while (++pos < len && IS_DIGIT(s[pos])) {}
  }
  if (pos < len && (s[pos] == 'e' || s[pos] == 'E')) {
    pos++;
    if (pos < len && (s[pos] == '+' || s[pos] == '-')) pos++;
    if (pos >= len || !IS_DIGIT(s[pos])) return fail(sc, pos, "bad number");
    while (++pos < len && IS_DIGIT(s[pos])) {}
  }
  if (sc->sink) sc->sink->number(sc->sink->ctx, sv_json_number(sc->s + start, pos - start));
  return pos;
}

/* word is n bytes long (a constant: memcmp becomes a compare or two) */
static inline size_t scan_literal(scanner *sc, size_t pos, const char *word, size_t n, char type) {
  if (sc->len - pos < n || memcmp(sc->s + pos, word, n) != 0) return fail(sc, pos, "unexpected character");
  if (sc->sink) sc->sink->literal(sc->sink->ctx, type);
  return pos + n;
}

/* The string whose opening quote is at pos (a key or a value): the position
   past its closing quote, sc->escaped set; or SCAN_FAILED.  Its first plain run,
   as a rule the whole string but its closing quote, is scanned here, inline. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((always_inline)) /* (two callers, both hot: gcc would otherwise call it) */
#endif
static inline size_t scan_string(scanner *sc, size_t pos) {
  size_t end = plain_run((const unsigned char *)sc->s, sc->len, pos + 1);
  if (end < sc->len && sc->s[end] == '"') {
    sc->escaped = 0;
    return end + 1;
  }
  return scan_string_rest(sc, end);
}

static size_t scan_container(scanner *sc, size_t pos, int depth);

/* The value at pos, after any whitespace (its caller has skipped that). */
static size_t scan_value(scanner *sc, size_t pos, int depth, char *type) {
  const char *text = sc->s;
  const size_t len = sc->len;
  size_t end;
  if (pos >= len) return fail(sc, pos, "expected a value");
  if (text[pos] == '"') { /* the commonest value, before the switch */
    *type = 's';
    if ((end = scan_string(sc, pos)) == SCAN_FAILED) return SCAN_FAILED;
    if (sc->sink) sc->sink->string(sc->sink->ctx, text + pos, end - pos, sc->escaped);
    return end;
  }
  switch (text[pos]) {
  case '{': *type = 'o'; return scan_container(sc, pos, depth);
  case '[': *type = 'a'; return scan_container(sc, pos, depth);
  case 't': *type = 't'; return scan_literal(sc, pos, "true", 4, 't');
  case 'f': *type = 'f'; return scan_literal(sc, pos, "false", 5, 'f');
  case 'n': *type = 'z'; return scan_literal(sc, pos, "null", 4, 'z');
  case '-': case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9':
    *type = 'n';
    return scan_number(sc, pos);
  default: return fail(sc, pos, "unexpected character");
  }
}

/* Objects and arrays.  At depth 0 (the top-level object) each member is listed and
   handed to the visitor as soon as its value is complete, before what follows is
   read: a prefix of a cut answer still gives the members it holds whole. */
static size_t scan_container(scanner *sc, size_t pos, int depth) {
  const char *text = sc->s;
  const unsigned char *s = (const unsigned char *)text;
  const size_t len = sc->len;
  const sv_json_sink *sink = sc->sink;
  const unsigned char close = s[pos] == '{' ? '}' : ']';
  const int is_obj = close == '}', top = depth == 0 && is_obj; /* top: its members are listed */
  if (depth >= MAX_DEPTH) return fail(sc, pos, "nesting too deep");
  if (sink) sink->open(sink->ctx, !is_obj);
  pos++;
  if (next_is(s, len, &pos, close)) {
    if (sink) sink->close(sink->ctx);
    return pos + 1;
  }
  for (;;) { /* at a member, or whitespace before it */
    size_t kstart = 0, klen = 0, vstart;
    char type;
    if (is_obj) {
      if (!next_is(s, len, &pos, '"')) return fail(sc, pos, "expected a key string");
      kstart = pos + 1;
      if ((pos = scan_string(sc, pos)) == SCAN_FAILED) return SCAN_FAILED;
      klen = pos - 1 - kstart;
      if (sink) sink->key(sink->ctx, text + kstart - 1, klen + 2, sc->escaped);
      if (!next_is(s, len, &pos, ':')) return fail(sc, pos, "expected ':'");
      pos++;
    }
    vstart = pos = skip_ws(s, len, pos);
    if ((pos = scan_value(sc, pos, depth + 1, &type)) == SCAN_FAILED) return SCAN_FAILED;
    if (top) {
      sv_json_member mm, *to;
      if (sc->count == INT_MAX) return fail(sc, pos, "too many members");
      to = sc->count < sc->max ? &sc->m[sc->count] : &mm; /* listed in place, not through a visitor */
      sc->count++;
      to->key = text + kstart;
      to->key_len = klen;
      to->val = text + vstart;
      to->val_len = pos - vstart;
      to->type = type;
      if (sc->visit) sc->visit(sc->ctx, to);
    }
    if (next_is(s, len, &pos, ',')) {
      pos++;
      continue;
    }
    if (pos >= len) return fail(sc, pos, "unterminated object or array");
    if (s[pos] == close) {
      if (sink) sink->close(sink->ctx);
      return pos + 1;
    }
    return fail(sc, pos, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

/* The scan behind the three: members handed to visit (may be NULL) and listed in
   m[0 .. max), parts to sink (may be NULL). */
static int each(const char *text, size_t len, sv_json_visit visit, void *ctx, sv_json_member *m, int max,
                const sv_json_sink *sink, char *why, size_t whylen) {
  scanner sc;
  size_t pos;
  sc.sink = sink;
  sc.escaped = 0;
  sc.s = text;
  sc.len = text ? len : 0;
  sc.why = why;
  sc.whylen = whylen;
  sc.visit = visit;
  sc.ctx = ctx;
  sc.m = m;
  sc.max = m ? max : 0;
  sc.count = 0;
  if (why && whylen) why[0] = '\0';
  pos = skip_ws((const unsigned char *)text, sc.len, 0);
  if (pos >= sc.len) return fail(&sc, pos, "empty body"), -1;
  if (text[pos] != '{') return fail(&sc, pos, "expected a JSON object"), -1;
  if ((pos = scan_container(&sc, pos, 0)) == SCAN_FAILED) return -1;
  pos = skip_ws((const unsigned char *)text, sc.len, pos);
  if (pos != sc.len) return fail(&sc, pos, "trailing data after the object"), -1;
  return sc.count;
}

int sv_json_each(const char *text, size_t len, sv_json_visit visit, void *ctx, char *why, size_t whylen) {
  return each(text, len, visit, ctx, NULL, 0, NULL, why, whylen);
}

int sv_json_read(const char *text, size_t len, sv_json_member *m, int max, const sv_json_sink *sink, char *why,
                 size_t whylen) {
  return each(text, len, NULL, NULL, m, max, sink, why, whylen);
}

int sv_json_scan(const char *text, size_t len, sv_json_member *m, int max, char *why, size_t whylen) {
  return sv_json_read(text, len, m, max, NULL, why, whylen);
}

/* A token of at most 15 digits (and a sign) is a whole number a double holds
   exactly: read here, as strtod would read it, for a fraction of its cost. */
double sv_json_number(const char *s, size_t len) {
  const char *end = s + len, *p = s, *point, *dot;
  char small[64], *copy;
  size_t plen;
  double v;
  int neg = p < end && *p == '-';
  if (neg) p++;
  if (end - p >= 1 && end - p <= 15) {
    const char *q;
    long long n = 0;
    for (q = p; q < end && *q >= '0' && *q <= '9'; q++) n = n * 10 + (*q - '0');
    if (q == end) return neg ? -(double)n : (double)n; /* -0 is -0.0 */
  }
  /* strtod reads the locale's decimal point: give it that one in place of '.' */
  point = localeconv()->decimal_point;
  plen = point && *point && strcmp(point, ".") != 0 ? strlen(point) : 0;
  copy = len + plen < sizeof small ? small : malloc(len + plen + 1);
  if (!copy) return strtod("nan", NULL); /* out of memory: not a number rather than a wrong one */
  dot = plen ? memchr(s, '.', len) : NULL;
  if (dot) {
    size_t at = (size_t)(dot - s);
    memcpy(copy, s, at);
    memcpy(copy + at, point, plen);
    memcpy(copy + at + plen, dot + 1, len - at - 1);
    copy[len - 1 + plen] = '\0';
  } else {
    memcpy(copy, s, len);
    copy[len] = '\0';
  }
  v = strtod(copy, NULL);
  if (copy != small) free(copy);
  return v;
}

static unsigned hexval(const char *p) {
  unsigned v = 0;
  int i;
  for (i = 0; i < 4; i++) {
    char c = p[i];
    v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return v;
}

/* cp as UTF-8 at u (room for 4 bytes): the bytes written. */
static size_t put_utf8(char *out, unsigned long cp) {
  unsigned char *u = (unsigned char *)out;
  size_t n;
  if (cp < 0x80) { u[0] = (unsigned char)cp; n = 1; }
  else if (cp < 0x800) { u[0] = (unsigned char)(0xC0 | (cp >> 6)); u[1] = (unsigned char)(0x80 | (cp & 0x3F)); n = 2; }
  else if (cp < 0x10000) {
    u[0] = (unsigned char)(0xE0 | (cp >> 12)); u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (unsigned char)(0x80 | (cp & 0x3F)); n = 3;
  } else {
    u[0] = (unsigned char)(0xF0 | (cp >> 18)); u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (unsigned char)(0x80 | (cp & 0x3F)); n = 4;
  }
  return n;
}

size_t sv_json_unescape_into(const char *val, size_t len, char *out) {
  size_t i, n = 0;
  if (len < 2 || val[0] != '"' || val[len - 1] != '"') return (size_t)-1;
  for (i = 1; i + 1 < len; i++) {
    const char *bs = memchr(val + i, '\\', len - 1 - i);
    size_t run = bs ? (size_t)(bs - (val + i)) : len - 1 - i;
    if (run) { memcpy(out + n, val + i, run); n += run; i += run - 1; continue; } /* the bytes up to an escape */
    if (++i + 1 >= len) return (size_t)-1;
    switch (val[i]) {
    case 'b': out[n++] = '\b'; break;
    case 'f': out[n++] = '\f'; break;
    case 'n': out[n++] = '\n'; break;
    case 'r': out[n++] = '\r'; break;
    case 't': out[n++] = '\t'; break;
    case 'u': {
      unsigned long cp;
      if (i + 5 > len - 1) return (size_t)-1;
      cp = hexval(val + i + 1);
      i += 4;
      if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < len - 1 && val[i + 1] == '\\' && val[i + 2] == 'u') {
        unsigned long lo = hexval(val + i + 3);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          i += 6;
        }
      }
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
      n += put_utf8(out + n, cp);
      break;
    }
    default: out[n++] = val[i];
    }
  }
  return n;
}

int sv_json_unescape(const char *val, size_t len, sv_buf *out) {
  size_t n, at = out->len;
  sv_buf_add(out, val, len); /* room: the text unescaped is never longer */
  if (out->oom) return -1;
  n = sv_json_unescape_into(val, len, out->data + at);
  out->len = at + (n == (size_t)-1 ? 0 : n);
  out->data[out->len] = '\0';
  return n == (size_t)-1 ? -1 : 0;
}

/* ------------------------------------------------ keys, duplicates, ids */

int sv_json_key_eq(const sv_json_member *m, const char *key, size_t len) {
  sv_buf b;
  int eq;
  if (!memchr(m->key, '\\', m->key_len)) return m->key_len == len && memcmp(m->key, key, len) == 0;
  if (m->key_len < len) return 0; /* an escape never makes a key longer */
  sv_buf_init(&b);
  /* the key's quotes are just outside key .. key + key_len */
  eq = sv_json_unescape(m->key - 1, m->key_len + 2, &b) == 0 && b.len == len &&
       (len == 0 || memcmp(b.data, key, len) == 0);
  sv_buf_free(&b);
  return eq;
}

typedef struct finding {
  const char *key;
  size_t len;
  int n;
  sv_json_member first;
} finding;

static void find_member(void *ctx, const sv_json_member *m) {
  finding *f = ctx;
  if (!sv_json_key_eq(m, f->key, f->len)) return;
  if (f->n == 0) f->first = *m;
  f->n++;
}

int sv_json_get(const char *text, size_t len, const char *key, sv_json_member *out) {
  finding f;
  int n;
  memset(&f, 0, sizeof f);
  f.key = key;
  f.len = strlen(key);
  n = sv_json_each(text, len, find_member, &f, NULL, 0);
  if (n < 0) return -1;
  if (f.n > 0 && out) *out = f.first;
  return f.n;
}

/* The duplicate check: every top-level key, unescaped, sorted; equal neighbours
   are duplicates.  O(n log n), so a 1 MB answer of tiny members stays cheap. */
typedef struct key_ref {
  const char *k;
  size_t len, index;
} key_ref;

static void collect_member(void *ctx, const sv_json_member *m) {
  sv_buf_add(ctx, m, sizeof *m);
}

static int key_cmp(const void *a, const void *b) {
  const key_ref *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = n ? memcmp(x->k, y->k, n) : 0;
  if (c) return c;
  if (x->len != y->len) return x->len < y->len ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

static int same_key(const key_ref *x, const key_ref *y) {
  return x->len == y->len && (x->len == 0 || memcmp(x->k, y->k, x->len) == 0);
}

int sv_json_duplicate_key(const char *text, size_t len, sv_buf *dup) {
  sv_buf members, keys;
  size_t *offs = NULL, i, j, n, best = (size_t)-1, best_at = 0;
  key_ref *refs = NULL;
  int rc = 0;
  sv_buf_init(&members);
  sv_buf_init(&keys);
  if (sv_json_each(text, len, collect_member, &members, NULL, 0) < 0) {
    sv_buf_free(&members);
    return -1;
  }
  n = members.len / sizeof(sv_json_member);
  if (n < 2) { sv_buf_free(&members); return 0; }
  if (members.oom) { sv_buf_free(&members); return -2; }
  offs = malloc(n * sizeof *offs);
  refs = malloc(n * sizeof *refs);
  if (!offs || !refs) { rc = -2; goto done; }
  for (i = 0; i < n; i++) {
    const sv_json_member *m = (const sv_json_member *)(void *)members.data + i;
    offs[i] = keys.len;
    if (sv_json_unescape(m->key - 1, m->key_len + 2, &keys)) { rc = -2; goto done; }
  }
  if (keys.oom) { rc = -2; goto done; }
  for (i = 0; i < n; i++) {
    refs[i].k = keys.data ? keys.data + offs[i] : "";
    refs[i].len = (i + 1 < n ? offs[i + 1] : keys.len) - offs[i];
    refs[i].index = i;
  }
  qsort(refs, n, sizeof *refs, key_cmp);
  /* equal keys are neighbours, in text order: report the key whose second
     appearance comes first in the text */
  for (i = 0; i < n; i = j) {
    for (j = i + 1; j < n && same_key(&refs[i], &refs[j]); j++) {}
    if (j - i >= 2 && refs[i + 1].index < best) {
      best = refs[i + 1].index;
      best_at = i + 1;
    }
  }
  if (best != (size_t)-1) {
    rc = 1;
    if (dup) sv_buf_add(dup, refs[best_at].k, refs[best_at].len);
  }
done:
  free(offs);
  free(refs);
  sv_buf_free(&members);
  sv_buf_free(&keys);
  return rc;
}

typedef struct id_search {
  int found;
  sv_json_member m;
} id_search;

static void find_id(void *ctx, const sv_json_member *m) {
  id_search *s = ctx;
  if (!s->found && m->type == 's' && sv_json_key_eq(m, "id", 2)) {
    s->found = 1;
    s->m = *m;
  }
}

int sv_json_prefix_id(const char *body, size_t len, char *out, size_t outlen) {
  id_search s;
  sv_buf b;
  int rc = -1;
  if (outlen) out[0] = '\0';
  if (!body) return -1;
  if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) { body += 3; len -= 3; } /* a BOM */
  memset(&s, 0, sizeof s);
  sv_json_each(body, len, find_id, &s, NULL, 0); /* the members before any error count */
  if (!s.found) return -1;
  sv_buf_init(&b);
  if (sv_json_unescape(s.m.val, s.m.val_len, &b) == 0 && sv_task_id_ok(b.data, b.len) &&
      b.len < outlen) {
    memcpy(out, b.data, b.len + 1);
    rc = 0;
  }
  sv_buf_free(&b);
  return rc;
}
