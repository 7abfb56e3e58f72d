/* The little JSON the core needs on its own: writing strings into request bodies,
   and checking an answer is one well-formed object while listing its top-level
   members and handing its parts to a sink (the binding builds the Lua table from
   them, in the same pass). */
#include "sv_core.h"

#include <limits.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *sv_json_put(char *w, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t i, run = 0;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7F) continue;
    memcpy(w, s + run, i - run);
    w += i - run;
    run = i + 1;
    *w++ = '\\';
    switch (c) {
    case '"': *w++ = '"'; break;
    case '\\': *w++ = '\\'; break;
    case '\n': *w++ = 'n'; break;
    case '\r': *w++ = 'r'; break;
    case '\t': *w++ = 't'; break;
    default: memcpy(w, "u00", 3), w[3] = hex[c >> 4], w[4] = hex[c & 15], w += 5;
    }
  }
  memcpy(w, s + run, len - run);
  return w + (len - run);
}

void sv_json_string(sv_buf *out, const char *s, size_t len) {
  char *w = sv_buf_reserve(out, len > ((size_t)-1 - 2) / 6 ? (size_t)-1 : len * 6 + 2);
  if (!w) return;
  *w++ = '"';
  w = sv_json_put(w, s, len);
  *w++ = '"';
  sv_buf_commit(out, w);
}

/* The double a JSON number token means, as strtod reads it in the "C" locale
   (whatever the process's locale): 1e400 is HUGE_VAL, -0 is -0.0. */
static double number(const char *s, size_t len) {
  const char *point = localeconv()->decimal_point, *dot;
  char small[64], *copy;
  size_t plen, at;
  double v;
  /* strtod reads the locale's decimal point: give it that one in place of '.' */
  plen = point && *point && strcmp(point, ".") != 0 ? strlen(point) : 0;
  copy = len + plen < sizeof small ? small : malloc(len + plen + 1);
  if (!copy) return strtod("nan", NULL); /* out of memory: not a number rather than a wrong one */
  dot = plen ? memchr(s, '.', len) : NULL;
  at = dot ? (size_t)(dot - s) : len;
  memcpy(copy, s, at);
  if (dot) {
    memcpy(copy + at, point, plen);
    memcpy(copy + at + plen, dot + 1, len - at - 1);
  }
  copy[dot ? len - 1 + plen : len] = '\0';
  v = strtod(copy, NULL);
  if (copy != small) free(copy);
  return v;
}

typedef struct scanner {
  const char *s;
  size_t len, pos;
  char *why;
  size_t whylen;
  sv_json_visit visit; /* called for each complete top-level member, or NULL */
  void *ctx;
  int count;           /* top-level members seen */
  const sv_json_sink *sink; /* handed every part, or NULL */
  int escaped;         /* the last string scanned held a backslash */
} scanner;

#define MAX_DEPTH 64

static int fail(scanner *sc, const char *what) {
  if (sc->pos >= sc->len)
    snprintf(sc->why, sc->whylen, "truncated: %s at the end of %zu bytes", what, sc->len);
  else
    snprintf(sc->why, sc->whylen, "%s at byte %zu", what, sc->pos + 1);
  return -1;
}

static void skip_ws(scanner *sc) {
  while (sc->pos < sc->len && memchr(" \t\n\r", sc->s[sc->pos], 4)) sc->pos++;
}

/* Whether the byte at the position is one of the bytes of set. */
static int at(const scanner *sc, const char *set) {
  return sc->pos < sc->len && sc->s[sc->pos] != '\0' && strchr(set, sc->s[sc->pos]);
}

/* Whether the byte past any whitespace is c (the position is left on it). */
static int next_is(scanner *sc, char c) {
  skip_ws(sc);
  return sc->pos < sc->len && sc->s[sc->pos] == c;
}

/* One digit or more, the position moved past them. */
static int digits(scanner *sc) {
  if (!at(sc, "0123456789")) return fail(sc, "bad number");
  while (at(sc, "0123456789")) sc->pos++;
  return 0;
}

/* The four hex digits at p (avail bytes there), into *cp; 0 when they are not there. */
static int hex4(const char *p, size_t avail, unsigned *cp) {
  size_t i;
  *cp = 0;
  for (i = 0; i < 4; i++) {
    char c = i < avail ? p[i] : 0;
    if (c >= '0' && c <= '9') *cp = *cp * 16 + (unsigned)(c - '0');
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') *cp = *cp * 16 + (unsigned)((c | 0x20) - 'a' + 10);
    else return 0;
  }
  return 1;
}

/* The escape whose backslash is at the position (two when a surrogate pair),
   left on its last byte. */
static int scan_escape(scanner *sc) {
  char e;
  sc->escaped = 1;
  if (++sc->pos >= sc->len) return fail(sc, "unterminated string");
  e = sc->s[sc->pos];
  if (e == 'u') {
    unsigned cp, lo;
    if (!hex4(sc->s + sc->pos + 1, sc->len - sc->pos - 1, &cp)) return fail(sc, "bad \\u escape");
    sc->pos += 4;
    /* surrogates come in pairs, as lua-cjson demands */
    if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(sc, "lone low surrogate in a \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (sc->pos + 2 >= sc->len || sc->s[sc->pos + 1] != '\\' || sc->s[sc->pos + 2] != 'u' ||
          !hex4(sc->s + sc->pos + 3, sc->len - sc->pos - 3, &lo) || lo < 0xDC00 || lo > 0xDFFF)
        return fail(sc, "lone high surrogate in a \\u escape");
      sc->pos += 6;
    }
  } else if (e == '\0' || !strchr("\"\\/bfnrt", e)) { /* (strchr would find a NUL: its terminator) */
    return fail(sc, "bad escape in a string");
  }
  return 0;
}

/* The string whose opening quote is at the position (a key or a value): the
   position moves past its closing quote, sc->escaped set. */
static int scan_string(scanner *sc) {
  sc->escaped = 0;
  for (sc->pos++;; sc->pos++) {
    unsigned char c;
    if (sc->pos >= sc->len) return fail(sc, "unterminated string");
    c = (unsigned char)sc->s[sc->pos];
    if (c == '"') break;
    if (c < 0x20) return fail(sc, "control character in a string");
    if (c == '\\' && scan_escape(sc)) return -1;
  }
  sc->pos++;
  return 0;
}

static int scan_number(scanner *sc) {
  size_t start = sc->pos;
  if (at(sc, "-")) sc->pos++;
  if (at(sc, "0")) sc->pos++;
  else if (digits(sc)) return -1;
  if (at(sc, ".")) {
    sc->pos++;
    if (digits(sc)) return -1;
  }
  if (at(sc, "eE")) {
    sc->pos++;
    if (at(sc, "+-")) sc->pos++;
    if (digits(sc)) return -1;
  }
  if (sc->sink) sc->sink->number(sc->sink->ctx, number(sc->s + start, sc->pos - start));
  return 0;
}

static int scan_literal(scanner *sc, const char *word, char type) {
  size_t n = strlen(word);
  if (sc->len - sc->pos < n || memcmp(sc->s + sc->pos, word, n) != 0) return fail(sc, "unexpected character");
  if (sc->sink) sc->sink->literal(sc->sink->ctx, type);
  sc->pos += n;
  return 0;
}

static int scan_value(scanner *sc, int depth, char *type);
static int scan_container(scanner *sc, int depth);

/* An object member's key and its ':' (m->key, m->key_len). */
static int scan_key(scanner *sc, sv_json_member *m) {
  const sv_json_sink *sink = sc->sink;
  if (!next_is(sc, '"')) return fail(sc, "expected a key string");
  m->key = sc->s + sc->pos + 1;
  if (scan_string(sc)) return -1;
  m->key_len = (size_t)(sc->s + sc->pos - 1 - m->key);
  if (sink) sink->key(sink->ctx, m->key - 1, m->key_len + 2, sc->escaped);
  if (!next_is(sc, ':')) return fail(sc, "expected ':'");
  sc->pos++;
  return 0;
}

/* One member of an object or array (an object's with its key); at depth 0 an
   object's member is handed to the visitor as soon as its value is complete. */
static int scan_member(scanner *sc, int depth, int is_obj) {
  sv_json_member m = {0};
  if (is_obj && scan_key(sc, &m)) return -1;
  skip_ws(sc);
  m.val = sc->s + sc->pos;
  if (scan_value(sc, depth + 1, &m.type)) return -1;
  m.val_len = (size_t)(sc->s + sc->pos - m.val);
  if (depth == 0 && is_obj) {
    if (sc->count == INT_MAX) return fail(sc, "too many members");
    sc->count++;
    if (sc->visit) sc->visit(sc->ctx, &m);
  }
  return 0;
}

/* The value at the position (whitespace skipped already); its type in *type. */
static int scan_value(scanner *sc, int depth, char *type) {
  size_t start = sc->pos;
  if (sc->pos >= sc->len) return fail(sc, "expected a value");
  switch (sc->s[sc->pos]) {
  case '"':
    *type = 's';
    if (scan_string(sc)) return -1;
    if (sc->sink) sc->sink->string(sc->sink->ctx, sc->s + start, sc->pos - start, sc->escaped);
    return 0;
  case '{': *type = 'o'; return scan_container(sc, depth);
  case '[': *type = 'a'; return scan_container(sc, depth);
  case 't': *type = 't'; return scan_literal(sc, "true", 't');
  case 'f': *type = 'f'; return scan_literal(sc, "false", 'f');
  case 'n': *type = 'z'; return scan_literal(sc, "null", 'z');
  default:
    *type = 'n';
    if (sc->s[sc->pos] == '-' || (sc->s[sc->pos] >= '0' && sc->s[sc->pos] <= '9')) return scan_number(sc);
    return fail(sc, "unexpected character");
  }
}

/* Objects and arrays, member by member (scan_member): a prefix of a cut answer
   still gives the top-level members it holds whole. */
static int scan_container(scanner *sc, int depth) {
  const sv_json_sink *sink = sc->sink;
  const char close = sc->s[sc->pos] == '{' ? '}' : ']';
  const int is_obj = close == '}';
  if (depth >= MAX_DEPTH) return fail(sc, "nesting too deep");
  if (sink) sink->open(sink->ctx, !is_obj);
  sc->pos++;
  if (!next_is(sc, close)) {
    for (;;) {
      if (scan_member(sc, depth, is_obj)) return -1;
      if (!next_is(sc, ',')) break;
      sc->pos++;
    }
    if (sc->pos >= sc->len) return fail(sc, "unterminated object or array");
    if (sc->s[sc->pos] != close) return fail(sc, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
  }
  if (sink) sink->close(sink->ctx);
  sc->pos++;
  return 0;
}

/* The scan behind the others: members handed to visit (may be NULL), parts to
   sink (may be NULL). */
static int each(const char *text, size_t len, sv_json_visit visit, void *ctx, const sv_json_sink *sink, char *why,
                size_t whylen) {
  scanner sc = { .s = text, .len = text ? len : 0, .why = why, .whylen = whylen,
                 .visit = visit, .ctx = ctx, .sink = sink };
  if (why && whylen) why[0] = '\0';
  if (!next_is(&sc, '{')) return fail(&sc, sc.pos >= sc.len ? "empty body" : "expected a JSON object");
  if (scan_container(&sc, 0)) return -1;
  skip_ws(&sc);
  if (sc.pos != sc.len) return fail(&sc, "trailing data after the object");
  return sc.count;
}

int sv_json_each(const char *text, size_t len, sv_json_visit visit, void *ctx, char *why, size_t whylen) {
  return each(text, len, visit, ctx, NULL, why, whylen);
}

static void collect_member(void *ctx, const sv_json_member *m) {
  sv_buf_add(ctx, m, sizeof *m);
}

int sv_json_read(const char *text, size_t len, const sv_json_sink *sink, sv_buf *members, char *why, size_t whylen) {
  return each(text, len, members ? collect_member : NULL, members, sink, why, whylen);
}

int sv_json_scan(const char *text, size_t len, char *why, size_t whylen) {
  return each(text, len, NULL, NULL, NULL, why, whylen);
}

/* cp as UTF-8 at out (room for 4 bytes): the bytes written. */
static size_t put_utf8(char *out, unsigned long cp) {
  static const unsigned char lead[] = { 0, 0, 0xC0, 0xE0, 0xF0 };
  size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4, i;
  for (i = n - 1; i > 0; i--, cp >>= 6) out[i] = (char)(0x80 | (cp & 0x3F));
  out[0] = (char)(lead[n] | cp);
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
      unsigned cp, lo;
      if (!hex4(val + i + 1, len - 2 - i, &cp)) return (size_t)-1;
      i += 4;
      if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < len - 1 && val[i + 1] == '\\' && val[i + 2] == 'u' &&
          hex4(val + i + 3, 4, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        i += 6;
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
  sv_buf b = {0};
  int eq;
  if (!memchr(m->key, '\\', m->key_len)) return m->key_len == len && memcmp(m->key, key, len) == 0;
  if (m->key_len < len) return 0; /* an escape never makes a key longer */
  /* the key's quotes are just outside key .. key + key_len */
  eq = sv_json_unescape(m->key - 1, m->key_len + 2, &b) == 0 && b.len == len &&
       (len == 0 || memcmp(b.data, key, len) == 0);
  sv_buf_free(&b);
  return eq;
}

int sv_json_find(const sv_json_member *ms, size_t n, const char *key, sv_json_member *out) {
  size_t i, len = strlen(key);
  int found = 0;
  for (i = 0; i < n; i++) {
    if (!sv_json_key_eq(&ms[i], key, len)) continue;
    if (found == 0 && out) *out = ms[i];
    found++;
  }
  return found;
}

/* A text's top-level members into ms (zeroed; the caller frees them), or -1 when
   it is not one well-formed object, -2 out of memory. */
static int members_of(const char *text, size_t len, sv_buf *ms) {
  int n = sv_json_read(text, len, NULL, ms, NULL, 0);
  if (n >= 0 && ms->oom) n = -2;
  if (n < 0) sv_buf_free(ms);
  return n;
}

int sv_json_get(const char *text, size_t len, const char *key, sv_json_member *out) {
  sv_buf ms = {0};
  int n = members_of(text, len, &ms);
  if (n < 0) return n == -2 ? -1 : n;
  n = sv_json_find((const sv_json_member *)(void *)ms.data, (size_t)n, key, out);
  sv_buf_free(&ms);
  return n;
}

/* The duplicate check: every top-level key, unescaped, sorted; equal neighbours
   are duplicates.  O(n log n), so a 1 MB answer of tiny members stays cheap.
   The key reported is the one whose second appearance comes first in the text. */
typedef struct key_ref {
  const char *k;
  size_t len, index, off; /* off: where its unescaped text is in keys */
} key_ref;

/* By key, then by place in the text. */
static int key_cmp(const void *a, const void *b) {
  const key_ref *x = a, *y = b;
  int c = memcmp(x->k, y->k, x->len < y->len ? x->len : y->len);
  if (c) return c;
  if (x->len != y->len) return x->len < y->len ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* refs[0..n) in text order: the index in refs of the duplicate to report, or -1. */
static long first_duplicate(key_ref *refs, size_t n) {
  size_t i, j, best = (size_t)-1;
  long at = -1;
  qsort(refs, n, sizeof *refs, key_cmp);
  for (i = 0; i < n; i = j) {
    for (j = i + 1; j < n && refs[j].len == refs[i].len && memcmp(refs[j].k, refs[i].k, refs[i].len) == 0; j++) {}
    if (j - i >= 2 && refs[i + 1].index < best) {
      best = refs[i + 1].index;
      at = (long)i + 1;
    }
  }
  return at;
}

int sv_json_duplicate_in(const sv_json_member *ms, size_t n, sv_buf *dup) {
  sv_buf keys = {0};
  key_ref *refs;
  size_t i;
  long at = -1;
  int rc = 0;
  if (n < 2) return 0;
  refs = malloc(n * sizeof *refs);
  if (!refs) return -2;
  for (i = 0; i < n && rc == 0; i++) { /* each key unescaped into keys (-1: out of memory) */
    refs[i].index = i;
    refs[i].off = keys.len;
    if (sv_json_unescape(ms[i].key - 1, ms[i].key_len + 2, &keys)) rc = -2;
    refs[i].len = keys.len - refs[i].off;
  }
  for (i = 0; rc == 0 && i < n; i++) refs[i].k = sv_buf_cstr(&keys) + refs[i].off;
  if (rc == 0) at = first_duplicate(refs, n);
  if (at >= 0) {
    rc = 1;
    if (dup) sv_buf_add(dup, refs[at].k, refs[at].len);
  }
  free(refs);
  sv_buf_free(&keys);
  return rc;
}

/* The first member named "id" with a string value, into ctx (a member whose key
   is NULL until then). */
static void find_id(void *ctx, const sv_json_member *m) {
  sv_json_member *id = ctx;
  if (!id->key && m->type == 's' && sv_json_key_eq(m, "id", 2)) *id = *m;
}

int sv_json_prefix_id(const char *body, size_t len, char *out, size_t outlen) {
  sv_json_member id = {0};
  sv_buf b = {0};
  int rc = -1;
  if (outlen) out[0] = '\0';
  if (!body) return -1;
  if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) { body += 3; len -= 3; } /* a BOM */
  sv_json_each(body, len, find_id, &id, NULL, 0); /* the members before any error count */
  if (!id.key) return -1;
  if (sv_json_unescape(id.val, id.val_len, &b) == 0 && sv_task_id_ok(b.data, b.len) &&
      b.len < outlen) {
    memcpy(out, b.data, b.len + 1);
    rc = 0;
  }
  sv_buf_free(&b);
  return rc;
}
