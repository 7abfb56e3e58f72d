/* Reading the service's answers and deciding on retries.  Transport-free: given a
   status, a body and a Retry-After value, say what the caller gets. */
#include "sv_core.h"

#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MEMBERS 64

double sv_parse_retry_after(const char *v, double now) {
  const char *p;
  time_t when;
  if (!v) return -1;
  while (*v == ' ' || *v == '\t') v++;
  if (*v == '\0') return -1;
  for (p = v; *p >= '0' && *p <= '9'; p++) {}
  if (p != v) {
    const char *q = p;
    while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n') q++;
    if (*q == '\0') {
      double s = strtod(v, NULL);
      return s > 86400.0 * 365 ? 86400.0 * 365 : s;
    }
  }
  when = curl_getdate(v, NULL); /* an HTTP date */
  if (when == (time_t)-1) return -1;
  return (double)when - now > 0 ? (double)when - now : 0;
}

static const sv_json_member *member(const sv_json_member *m, int n, const char *key) {
  int i;
  size_t klen = strlen(key);
  for (i = 0; i < n && i < MAX_MEMBERS; i++)
    if (m[i].key_len == klen && memcmp(m[i].key, key, klen) == 0) return &m[i];
  return NULL;
}

/* The server's own words: "error" as a string, or error.message, or "message". */
static void server_words(const char *body, size_t len, sv_buf *out) {
  sv_json_member m[MAX_MEMBERS], inner[MAX_MEMBERS];
  char why[128];
  int n = sv_json_scan(body, len, m, MAX_MEMBERS, why, sizeof why), k;
  const sv_json_member *e;
  if (n < 0) return;
  e = member(m, n, "error");
  if (e && e->type == 'o') {
    k = sv_json_scan(e->val, e->val_len, inner, MAX_MEMBERS, why, sizeof why);
    e = k > 0 ? member(inner, k, "message") : NULL;
  }
  if (!e || e->type != 's') e = member(m, n, "message");
  if (e && e->type == 's') sv_json_unescape(e->val, e->val_len, out);
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

/* A task id from a body that is not well-formed JSON: the first "id": "..." whose
   value holds only the characters ids are made of.  Best effort, to tell the
   caller which paid task a garbled create answer was about. */
static int lenient_id(const char *body, size_t len, char *out, size_t outlen) {
  size_t i, j;
  for (i = 0; i + 4 < len; i++) {
    if (memcmp(body + i, "\"id\"", 4) != 0) continue;
    j = i + 4;
    while (j < len && (body[j] == ' ' || body[j] == '\t' || body[j] == '\n' || body[j] == '\r')) j++;
    if (j >= len || body[j] != ':') continue;
    j++;
    while (j < len && (body[j] == ' ' || body[j] == '\t' || body[j] == '\n' || body[j] == '\r')) j++;
    if (j >= len || body[j] != '"') continue;
    for (i = ++j; j < len && j - i < outlen - 1; j++) {
      char c = body[j];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
            c == '-' || c == '.' || c == ':'))
        break;
    }
    if (j < len && body[j] == '"' && j > i) {
      memcpy(out, body + i, j - i);
      out[j - i] = '\0';
      return 0;
    }
    return -1;
  }
  return -1;
}

int sv_json_task_id(const char *body, size_t len, char *out, size_t outlen) {
  sv_json_member m[MAX_MEMBERS];
  char why[128];
  int n = sv_json_scan(body, len, m, MAX_MEMBERS, why, sizeof why);
  const sv_json_member *id = n > 0 ? member(m, n, "id") : NULL;
  sv_buf b;
  out[0] = '\0';
  if (n < 0) return lenient_id(body, len, out, outlen);
  if (!id || id->type != 's') return -1;
  sv_buf_init(&b);
  if (sv_json_unescape(id->val, id->val_len, &b) == 0 && b.len > 0 && b.len < outlen)
    memcpy(out, b.data, b.len + 1);
  sv_buf_free(&b);
  return out[0] ? 0 : -1;
}

static sv_kind kind_of_status(long status) {
  if (status == 401 || status == 403) return SV_E_AUTH;
  if (status == 404 || status == 410) return SV_E_NOT_FOUND; /* 410: gone, an expired URL */
  if (status == 408) return SV_E_TIMEOUT;
  if (status == 429) return SV_E_RATE_LIMITED;
  if (status >= 500) return SV_E_SERVER;
  if (status >= 400) return SV_E_INVALID;
  return SV_E_PROTOCOL;
}

int sv_read_answer(const sv_answer *a, double now, sv_error *err) {
  sv_json_member m[MAX_MEMBERS];
  char why[160];
  int n;
  const char *what = a->op == SV_OP_CREATE ? "create" : a->op == SV_OP_QUERY ? "query" : "download";

  sv_error_clear(err);
  err->status = a->status;
  err->retry_after = sv_parse_retry_after(a->retry_after, now);

  if (a->status < 200 || a->status > 299) {
    sv_buf words;
    sv_buf_init(&words);
    server_words(a->body, a->body_len, &words);
    if (words.len == 0 && a->body_len > 0) {
      sv_json_member tmp[1];
      if (sv_json_scan(a->body, a->body_len, tmp, 0, why, sizeof why) < 0) {
        sv_buf_adds(&words, "non-JSON body: ");
        excerpt(a->body, a->body_len, &words);
      }
    }
    if (words.len == 0) sv_buf_adds(&words, "no explanation in the body");
    sv_error_set(err, kind_of_status(a->status), NULL, "%s: HTTP %ld: %s", what, a->status, sv_buf_cstr(&words));
    sv_buf_free(&words);
    return -1;
  }

  n = sv_json_scan(a->body, a->body_len, m, MAX_MEMBERS, why, sizeof why);
  if (n < 0) {
    sv_buf ex;
    sv_buf_init(&ex);
    excerpt(a->body, a->body_len, &ex);
    sv_error_set(err, SV_E_PROTOCOL, NULL, "%s: HTTP %ld with a body that is not a JSON object (%s): %s",
                 what, a->status, why, a->body_len ? sv_buf_cstr(&ex) : "empty");
    sv_buf_free(&ex);
    if (a->op == SV_OP_CREATE) sv_json_task_id(a->body, a->body_len, err->id, sizeof err->id);
    return -1;
  }
  {
    const sv_json_member *id = member(m, n, "id"), *st = member(m, n, "status");
    if (!id || id->type != 's' || id->val_len <= 2)
      return sv_error_set(err, SV_E_PROTOCOL, NULL, "%s: HTTP %ld but the answer has no task id", what, a->status);
    if (!st || st->type != 's') {
      sv_json_task_id(a->body, a->body_len, err->id, sizeof err->id);
      return sv_error_set(err, SV_E_PROTOCOL, NULL, "%s: HTTP %ld but the answer has no task status", what, a->status);
    }
  }
  return 0;
}

int sv_retry_decide(sv_op op, sv_transport tr, sv_error *err, int attempt, int max_retries,
                    double backoff, double max_wait, double rnd, double *delay) {
  int retryable;
  if (op == SV_OP_CREATE) {
    /* money: resend only when nothing can have been created */
    retryable = tr == SV_TR_NOT_SENT || err->status == 429 ||
                (err->status == 503 && err->retry_after >= 0);
    if (!retryable && tr != SV_TR_FATAL && (tr != SV_TR_NONE || err->status >= 500 ||
                                            (err->status >= 200 && err->status <= 299)))
      err->maybe_created = 1;
  } else {
    retryable = (tr != SV_TR_NONE && tr != SV_TR_FATAL) || err->status == 429 ||
                err->status == 408 || (err->status >= 500 && err->status <= 599);
  }
  if (!retryable || attempt > max_retries) return 0;
  if (err->retry_after >= 0) {
    if (err->retry_after > max_wait) return 0; /* the caller decides about long waits */
    *delay = err->retry_after;
  } else {
    double d = backoff * pow(2.0, attempt - 1);
    if (d > 30) d = 30;
    *delay = d * (0.5 + 0.5 * rnd); /* "equal jitter": never less than half */
  }
  return 1;
}
