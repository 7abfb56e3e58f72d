/* The rate-limit fields of an answer, in every form servers send them: the IETF
   draft's RateLimit / RateLimit-Policy (structured fields, draft 08 on:
   `"default";r=0;t=5`, `"default";q=100;w=60`; draft 07's dictionary `limit=100,
   remaining=0, reset=5`; drafts 00-06's RateLimit-Limit / -Remaining / -Reset and
   `100;w=60`) and the common x-ratelimit-limit / -remaining / -reset (with or
   without -requests; a reset in seconds, as a duration such as 6m0s or 20ms, or as
   a time since 1970).  What cannot be read is left out, never an error. */
#include "sv_core.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#define LIMITS_MAX 1e15           /* a count past this is no count */
#define RESET_MAX (86400.0 * 366) /* a reset further off is held to this */
#define EPOCH_MIN 1e9             /* a reset this large is a time since 1970, not a delay */
#define EPOCH_MS 1e12             /* ... and this large, in milliseconds */

const char *const sv_limits_families[] = { "none", "ratelimit", "x-ratelimit", NULL };

typedef struct { const char *p, *end; } span;

static void trim(span *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t')) s->p++;
  while (s->end > s->p && (s->end[-1] == ' ' || s->end[-1] == '\t' || s->end[-1] == '\r')) s->end--;
}

/* A number (digits, an optional fraction) at s->p: its value, s->p past it; -1 when none. */
static double number(span *s) {
  const char *p = s->p;
  double v = 0, scale = 0.1;
  int digits = 0;
  for (; p < s->end && *p >= '0' && *p <= '9'; p++, digits++)
    if (v < LIMITS_MAX) v = v * 10 + (*p - '0');
  if (digits && p < s->end && *p == '.')
    for (p++; p < s->end && *p >= '0' && *p <= '9'; p++) v += (*p - '0') * scale, scale /= 10;
  if (!digits) return -1;
  s->p = p;
  return v > LIMITS_MAX ? LIMITS_MAX : v;
}

/* A whole value that is one number (blanks around), or -1. */
static double only_number(span s) {
  double v;
  trim(&s);
  v = number(&s);
  return s.p == s.end ? v : -1;
}

/* A reset: delay-seconds, a duration (1h2m3.5s, 6m0s, 20ms), or a time since 1970 (in s or ms). */
static double reset_of(span s, double now) {
  double total = 0, x;
  int units = 0;
  trim(&s);
  if (s.p == s.end) return -1;
  while (s.p < s.end && (x = number(&s)) >= 0) {
    if (s.end - s.p >= 2 && s.p[0] == 'm' && s.p[1] == 's') x /= 1000, s.p += 2, units = 1;
    else if (s.p < s.end && *s.p == 's') s.p++, units = 1;
    else if (s.p < s.end && *s.p == 'm') x *= 60, s.p++, units = 1;
    else if (s.p < s.end && *s.p == 'h') x *= 3600, s.p++, units = 1;
    else if (s.p < s.end) return -1;
    total += x;
  }
  if (s.p != s.end) return -1;
  if (!units && total >= EPOCH_MIN) { /* a time: the delay until it */
    if (!isfinite(now)) return -1;
    total = (total >= EPOCH_MS ? total / 1000 : total) - now;
    if (!(total > 0)) total = 0;
  }
  return total > RESET_MAX ? RESET_MAX : total;
}

/* The next member of a list (s: what is left), commas inside a quoted string kept. */
static int next_member(span *s, span *m) {
  int quoted = 0;
  const char *p = s->p;
  if (s->p >= s->end) return 0;
  for (; p < s->end && (quoted || *p != ','); p++) {
    if (*p == '\\' && quoted && p + 1 < s->end) p++;
    else if (*p == '"') quoted = !quoted;
  }
  m->p = s->p, m->end = p;
  s->p = p < s->end ? p + 1 : p;
  trim(m);
  return 1;
}

/* One item's parameters (`;r=0;t=5`): each of the letters asked for (keys) into vals[], -1 when absent. */
static void params(span m, const char *keys, double *vals) {
  size_t i, n = strlen(keys);
  int quoted = 0;
  for (i = 0; i < n; i++) vals[i] = -1;
  for (; m.p < m.end && (quoted || *m.p != ';'); m.p++) { /* past the bare item (a string, a token, a number) */
    if (*m.p == '\\' && quoted && m.p + 1 < m.end) m.p++;
    else if (*m.p == '"') quoted = !quoted;
  }
  while (m.p < m.end && *m.p == ';') {
    const char *k;
    size_t klen;
    span v;
    for (m.p++; m.p < m.end && *m.p == ' '; m.p++) {}
    for (k = m.p; m.p < m.end && *m.p != '=' && *m.p != ';'; m.p++) {}
    klen = (size_t)(m.p - k);
    if (m.p >= m.end || *m.p != '=') continue;
    for (v.p = ++m.p; m.p < m.end && *m.p != ';'; m.p++) {}
    v.end = m.p;
    for (i = 0; i < n; i++)
      if (klen == 1 && *k == keys[i]) vals[i] = keys[i] == 't' || keys[i] == 'w' ? reset_of(v, NAN) : only_number(v);
  }
}

/* RateLimit: draft 08's items (the one with the fewest left, then the latest reset), or draft 07's dictionary. */
static void ratelimit_field(span v, sv_limits *l) {
  span m;
  double best_r = -1, best_t = -1, rt[2];
  while (next_member(&v, &m)) {
    size_t n = (size_t)(m.end - m.p);
    span val = { memchr(m.p, '=', n), m.end };
    if (val.p && m.p[0] != '"' && !memchr(m.p, ';', (size_t)(val.p - m.p))) { /* a key=: limit, remaining, reset */
      size_t klen = (size_t)(val.p - m.p);
      val.p++;
      if (klen == 5 && !strncasecmp(m.p, "limit", 5)) l->limit = only_number(val);
      else if (klen == 9 && !strncasecmp(m.p, "remaining", 9)) l->remaining = only_number(val);
      else if (klen == 5 && !strncasecmp(m.p, "reset", 5)) l->reset = reset_of(val, NAN);
      continue; /* (an item is a name, then its ;-parameters: a token's too) */
    }
    params(m, "rt", rt);
    if (rt[0] < 0) continue;
    if (best_r < 0 || rt[0] < best_r || (rt[0] == best_r && rt[1] > best_t)) best_r = rt[0], best_t = rt[1];
  }
  if (best_r >= 0) l->remaining = best_r, l->reset = best_t;
}

/* RateLimit-Policy: the smallest quota (q=, or draft 06's leading number) and its window (w=). */
static void policy_field(span v, sv_limits *l) {
  span m;
  double qw[2], q;
  while (next_member(&v, &m)) {
    span lead = m;
    params(m, "qw", qw);
    q = qw[0] >= 0 ? qw[0] : number(&lead);
    if (q < 0 || (l->limit >= 0 && (l->limit < q || (l->limit == q && l->window >= 0)))) continue;
    l->limit = q;
    l->window = qw[1];
  }
}

typedef struct { const char *name; int family; char field; } field_name;

static const field_name names[] = {
  { "ratelimit", SV_LIMITS_IETF, 'R' }, { "ratelimit-policy", SV_LIMITS_IETF, 'P' },
  { "ratelimit-limit", SV_LIMITS_IETF, 'l' }, { "ratelimit-remaining", SV_LIMITS_IETF, 'r' },
  { "ratelimit-reset", SV_LIMITS_IETF, 't' }, { "x-ratelimit-limit", SV_LIMITS_X, 'l' },
  { "x-ratelimit-remaining", SV_LIMITS_X, 'r' }, { "x-ratelimit-reset", SV_LIMITS_X, 't' },
  { "x-ratelimit-limit-requests", SV_LIMITS_X, 'l' }, { "x-ratelimit-remaining-requests", SV_LIMITS_X, 'r' },
  { "x-ratelimit-reset-requests", SV_LIMITS_X, 't' }, { NULL, 0, 0 }
};

/* One header line into its family's fields. */
static void one_line(span line, double now, sv_limits fam[3]) {
  const char *colon = memchr(line.p, ':', (size_t)(line.end - line.p));
  span name = { line.p, colon }, v = { colon ? colon + 1 : NULL, line.end };
  const field_name *f;
  sv_limits *l;
  if (!colon) return;
  trim(&name);
  trim(&v);
  for (f = names; f->name; f++)
    if (strlen(f->name) == (size_t)(name.end - name.p) && !strncasecmp(f->name, name.p, strlen(f->name))) break;
  if (!f->name) return;
  l = &fam[f->family];
  switch (f->field) {
  case 'R': ratelimit_field(v, l); break;
  case 'P': policy_field(v, l); break;
  case 'l': { span lead = v; double x = number(&lead); if (x >= 0) l->limit = x; break; } /* (100, 100;w=60) */
  case 'r': l->remaining = only_number(v); break;
  default: l->reset = reset_of(v, now); break;
  }
}

static void clear(sv_limits *l) {
  l->limit = l->remaining = l->reset = l->window = -1;
  l->family = SV_LIMITS_NONE;
}

int sv_read_limits(const char *lines, size_t len, double now, sv_limits *out) {
  sv_limits fam[3];
  span all = { lines, lines ? lines + len : NULL }, line;
  int i;
  for (i = 0; i < 3; i++) clear(&fam[i]);
  clear(out);
  while (lines && all.p < all.end) {
    const char *nl = memchr(all.p, '\n', (size_t)(all.end - all.p));
    line.p = all.p, line.end = nl ? nl : all.end;
    all.p = nl ? nl + 1 : all.end;
    one_line(line, now, fam);
  }
  for (i = SV_LIMITS_IETF; i <= SV_LIMITS_X; i++) {
    sv_limits *l = &fam[i];
    if (l->limit < 0 && l->remaining < 0 && l->reset < 0) continue;
    *out = *l;
    out->family = i;
    return 1;
  }
  return 0;
}
