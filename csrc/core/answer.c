/* Reading the service's answers and deciding on retries.  Transport-free: given a
   status, a body and a Retry-After value, say what the caller gets. */
#include "sv_core.h"

#include <stdio.h>
#include <string.h>

#define RETRY_AFTER_MAX (86400.0 * 365) /* a year: longer is a server's mistake */
#define RETRY_AFTER_LEN 128              /* an HTTP date has 29 bytes */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static double days_from_civil(int y, int m, int d) {
  int era, yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return (double)era * 146097 + doe - 719468;
}

/* An HTTP date (RFC 9110 5.6.7) in seconds since the epoch: IMF-fixdate ("Sun,
   06 Nov 1994 08:49:37 GMT"), the obsolete RFC 850 form ("Sunday, 06-Nov-94
   08:49:37 GMT") or asctime's ("Sun Nov  6 08:49:37 1994"); -1 for anything else. */
double sv_http_date(const char *v) {
  static const char *const months = "JanFebMarAprMayJunJulAugSepOctNovDec";
  char wday[12], mon[4];
  int d = 0, y = 0, h = 0, mi = 0, sec = 0, end = -1, m;
  const char *at;
  while (*v == ' ' || *v == '\t') v++;
  if (sscanf(v, "%11[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", wday, &d, mon, &y, &h, &mi, &sec, &end) == 7
      && end > 0) {
  } else if (end = -1, sscanf(v, "%11[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n", wday, &d, mon, &y, &h, &mi,
                              &sec, &end) == 7 && end > 0) {
    y += y < 70 ? 2000 : 1900;
  } else if (end = -1, sscanf(v, "%11[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", wday, mon, &d, &h, &mi, &sec, &y,
                              &end) == 7 && end > 0) {
  } else {
    return -1;
  }
  while (v[end] == ' ' || v[end] == '\t' || v[end] == '\r' || v[end] == '\n') end++;
  if (v[end] != '\0' || strlen(mon) != 3) return -1;
  at = strstr(months, mon);
  if (!at || (at - months) % 3 != 0) return -1;
  m = (int)(at - months) / 3 + 1;
  if (y < 1 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || h < 0 || mi < 0 || sec < 0) return -1;
  return days_from_civil(y, m, d) * 86400.0 + h * 3600.0 + mi * 60.0 + sec;
}

double sv_parse_retry_after(const char *v, double now) {
  const char *p;
  double when, d = 0;
  if (!v) return -1;
  while (*v == ' ' || *v == '\t') v++;
  if (*v == '\0') return -1;
  for (p = v; *p >= '0' && *p <= '9'; p++)
    if (d < RETRY_AFTER_MAX) d = d * 10 + (*p - '0');
  if (p != v) {
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    if (*p == '\0') return d > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : d;
  }
  if (strnlen(v, RETRY_AFTER_LEN + 1) > RETRY_AFTER_LEN) return -1;
  when = sv_http_date(v);
  if (when < 0) return -1;
  d = when - now;
  if (!(d > 0)) return 0; /* a past date, or a clock that is not a number */
  return d > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : d;
}

/* The server's own words: "error" as a string, or error.message, or "message". */
static void server_words(const char *body, size_t len, sv_buf *out) {
  sv_json_member e;
  if (sv_json_get(body, len, "error", &e) <= 0) e.type = 0;
  if (e.type == 'o' && sv_json_get(e.val, e.val_len, "message", &e) <= 0) e.type = 0;
  if (e.type != 's' && sv_json_get(body, len, "message", &e) <= 0) e.type = 0;
  if (e.type == 's') {
    size_t i, start = out->len;
    sv_json_unescape(e.val, e.val_len, out);
    /* a message is one line: a server's newlines and escapes become spaces */
    for (i = start; i < out->len; i++)
      if ((unsigned char)out->data[i] < 0x20 || out->data[i] == 0x7F) out->data[i] = ' ';
  }
}

/* Where needle is in s[0, len), or NULL. */
static const char *find(const char *s, size_t len, const char *needle) {
  size_t n = strlen(needle), i;
  for (i = 0; n <= len && i <= len - n; i++)
    if (memcmp(s + i, needle, n) == 0) return s + i;
  return NULL;
}

/* An S3 error's words: "<Code>: <Message>" of its XML, each on one line (the rest of it may quote the request). */
static void xml_words(const char *body, size_t len, sv_buf *out) {
  static const char *const open[] = { "<Code>", "<Message>" }, *const close[] = { "</Code>", "</Message>" };
  int t;
  for (t = 0; t < 2; t++) {
    const char *a = find(body, len, open[t]), *z;
    size_t i;
    if (!a) continue;
    a += strlen(open[t]);
    z = find(a, len - (size_t)(a - body), close[t]);
    if (!z) continue;
    if (out->len) sv_buf_adds(out, ": ");
    for (i = 0; i < (size_t)(z - a) && i < 300; i++) {
      unsigned char c = (unsigned char)a[i];
      sv_buf_add(out, c < 0x20 || c == 0x7f ? " " : a + i, 1);
    }
  }
}

/* A short printable excerpt of a body that is not JSON (a proxy's HTML page, say). */
static void excerpt(const char *body, size_t len, sv_buf *out) {
  size_t i, shown = 0;
  int space = 0;
  for (i = 0; i < len && shown < 80; i++) {
    unsigned char c = (unsigned char)body[i];
    if (c < 0x20 || c == 0x7F || c == ' ') { space = shown > 0; continue; }
    if (space) { sv_buf_add(out, " ", 1); shown++; space = 0; }
    if (c >= 0x80) c = '?';
    sv_buf_add(out, &c, 1);
    shown++;
  }
  if (i < len) sv_buf_adds(out, "...");
}

static sv_kind kind_of_status(long status) {
  if (status == 401 || status == 403 || status == 407) return SV_E_AUTH; /* 407: the proxy's credentials */
  if (status == 404 || status == 410) return SV_E_NOT_FOUND; /* 410: gone, an expired URL */
  if (status == 408) return SV_E_TIMEOUT;
  if (status == 429) return SV_E_RATE_LIMITED;
  if (status >= 500) return SV_E_SERVER;
  if (status >= 400) return SV_E_INVALID;
  return SV_E_PROTOCOL;
}

int sv_transient(sv_kind kind, sv_wire wire, long status) {
  if (wire == SV_WIRE_NOT_SENT || wire == SV_WIRE_TIMEOUT || wire == SV_WIRE_BROKEN || wire == SV_WIRE_GARBLED) return 1;
  if (status == 408 || status == 429 || (status >= 500 && status <= 599)) return 1;
  return wire == SV_WIRE_NONE && status == 0 &&
         (kind == SV_E_NETWORK || kind == SV_E_TIMEOUT || kind == SV_E_RATE_LIMITED || kind == SV_E_SERVER);
}

static const char *type_name(char t) {
  static const char types[] = "snoatf";
  static const char *const names[] = { "a string", "a number", "an object", "an array", "a boolean", "a boolean" };
  const char *at = t ? strchr(types, t) : NULL;
  return at ? names[at - types] : "null";
}

/* Whether body (len bytes) is XML: '<' first, after a UTF-8 BOM and blanks. */
static int xml_body(const char *body, size_t len) {
  size_t i = len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
  while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n')) i++;
  return i < len && body[i] == '<';
}

/* An answer other than 2xx: the error its status says, in the server's words. */
static int answer_refused(const sv_exchange *a, const char *body, size_t len, sv_error *err) {
  char why[160];
  sv_buf words = {0};
  if (a->status == 407) sv_buf_adds(&words, SV_PROXY_AUTH); /* the proxy's page says no more */
  else if (xml_body(body, len)) xml_words(body, len, &words); /* (a store's <Error>, a video host's) */
  if (words.len == 0) server_words(body, len, &words);
  if (words.len == 0 && len > 0 && sv_json_scan(body, len, why, sizeof why) < 0) {
    sv_buf_adds(&words, "non-JSON body: ");
    excerpt(body, len, &words);
  }
  if (words.len == 0) sv_buf_adds(&words, "no explanation in the body");
  sv_error_set(err, kind_of_status(a->status), NULL, "%s: HTTP %ld: %s", sv_exchange_name(a), a->status,
               sv_buf_cstr(&words));
  sv_buf_free(&words);
  return -1;
}

/* A status of the task lifecycle's (the member's text, with its quotes). */
static int lifecycle(const sv_json_member *st) {
  static const char *const names[] = { "\"queued\"", "\"processing\"", "\"completed\"", "\"failed\"" };
  size_t i;
  for (i = 0; i < sizeof names / sizeof names[0]; i++)
    if (st->val_len == strlen(names[i]) && memcmp(st->val, names[i], st->val_len) == 0) return 1;
  return 0;
}

/* A 2xx answer's n top-level members (oom: they could not all be listed) make
   a task: no key twice (decoders disagree on which one wins, so trust neither),
   a string id that is a task id, a string status (with `strict`, one of the
   lifecycle's: an error answer's).  0, or -1 with err. */
static int answer_task(const sv_exchange *a, const sv_json_member *ms, int n, int oom, int strict, sv_error *err) {
  const char *what = sv_exchange_name(a);
  sv_json_member id, st;
  sv_buf b = {0};
  int dup = oom ? -2 : sv_json_duplicate_in(ms, (size_t)n, &b), rc = -1;
  if (dup == 1) {
    sv_buf q = {0};
    sv_quote(&q, b.data ? b.data : "", b.len, 60);
    sv_error_set(err, SV_E_PROTOCOL, NULL, "%s: HTTP %ld with duplicate key %s in the answer", what, a->status,
                 sv_buf_cstr(&q));
    sv_buf_free(&q);
  } else if (dup != 0) {
    sv_error_set(err, SV_E_PROTOCOL, NULL, "%s: HTTP %ld: out of memory reading the answer", what, a->status);
  } else if (sv_json_find(ms, (size_t)n, "id", &id) <= 0) {
    sv_error_set(err, SV_E_PROTOCOL, NULL, "%s: HTTP %ld but the answer has no task id", what, a->status);
  } else if (id.type != 's') {
    sv_error_set(err, SV_E_PROTOCOL, NULL, "%s: HTTP %ld but the task id is not a string (got %s)", what, a->status,
                 type_name(id.type));
  } else if (sv_json_unescape(id.val, id.val_len, &b) != 0) {
    sv_error_set(err, SV_E_PROTOCOL, NULL, "%s: HTTP %ld: out of memory reading the answer", what, a->status);
  } else if (b.len == 0) {
    sv_error_set(err, SV_E_PROTOCOL, NULL, "%s: HTTP %ld but the task id is empty", what, a->status);
  } else if (b.len > SV_ID_MAX) {
    sv_error_set(err, SV_E_PROTOCOL, NULL, "%s: HTTP %ld but the task id has %zu bytes (at most %d)", what,
                 a->status, b.len, SV_ID_MAX);
  } else if (!sv_task_id_ok(b.data, b.len)) {
    sv_buf q = {0};
    sv_quote(&q, b.data, b.len, 60);
    sv_error_set(err, SV_E_PROTOCOL, NULL, "%s: HTTP %ld but the task id has a control character: %s", what,
                 a->status, sv_buf_cstr(&q));
    sv_buf_free(&q);
  } else if (sv_json_find(ms, (size_t)n, "status", &st) <= 0 || st.type != 's' || (strict && !lifecycle(&st))) {
    sv_error_set(err, SV_E_PROTOCOL, NULL, "%s: HTTP %ld but the answer has no task status", what, a->status);
  } else {
    rc = 0;
  }
  sv_buf_free(&b);
  return rc;
}

int sv_read_answer(const sv_exchange *a, double now, sv_error *err) {
  char why[160];
  const char *body = a->body ? a->body : "";
  size_t len = a->body ? a->body_len : 0;
  sv_buf b = {0}, members = {0};
  int n, rc = -1;
  sv_error_clear(err);
  err->status = a->status;
  err->retry_after = sv_parse_retry_after(a->retry_after, now);
  if (a->status < 200 || a->status > 299) return answer_refused(a, body, len, err);
  /* a 2xx we cannot use is a protocol error; the one pass that checks the JSON lists the top-level members */
  n = sv_json_read(body, len, a->sink, &members, why, sizeof why);
  if (n < 0) {
    excerpt(body, len, &b);
    sv_error_set(err, SV_E_PROTOCOL, NULL, "%s: HTTP %ld with a body that is not a JSON object (%s): %s",
                 sv_exchange_name(a), a->status, why, len ? sv_buf_cstr(&b) : "empty");
    sv_buf_free(&b);
  } else {
    rc = answer_task(a, (const sv_json_member *)(void *)members.data, n, members.oom, 0, err);
  }
  sv_buf_free(&members);
  return rc;
}

int sv_answer_names_task(const sv_exchange *a) {
  char why[160];
  sv_buf members = {0};
  sv_error scratch;
  int n, rc = 0;
  if (!a->body || a->body_len == 0) return 0;
  n = sv_json_read(a->body, a->body_len, a->sink, &members, why, sizeof why);
  if (n >= 0) rc = answer_task(a, (const sv_json_member *)(void *)members.data, n, members.oom, 1, &scratch) == 0;
  sv_buf_free(&members);
  return rc;
}

/* The digits of v from *i (1 to 15 of them) as a number, *i past them; -1 when there are none or too many. */
static double digits(const char *v, size_t n, size_t *i) {
  double d = 0;
  size_t start = *i;
  while (*i < n && v[*i] >= '0' && v[*i] <= '9' && *i - start < 15) d = d * 10 + (v[(*i)++] - '0');
  return *i == start || (*i < n && v[*i] >= '0' && v[*i] <= '9') ? -1 : d;
}

int sv_content_range(const char *v, size_t n, double *start, double *total) {
  size_t i = 5;
  double a, b, t;
  if (!v || n < 6 || memcmp(v, "bytes", 5) != 0 || (v[5] != ' ' && v[5] != '\t')) return -1;
  while (i < n && (v[i] == ' ' || v[i] == '\t')) i++;
  if ((a = digits(v, n, &i)) < 0 || i >= n || v[i++] != '-' || (b = digits(v, n, &i)) < 0 || i >= n ||
      v[i++] != '/' || (t = digits(v, n, &i)) < 0 || !(b >= a && t > b))
    return -1;
  while (i < n && (v[i] == ' ' || v[i] == '\t')) i++;
  if (i < n) return -1; /* (nothing after it) */
  *start = a, *total = t;
  return 0;
}
