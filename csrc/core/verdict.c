/* The verdict on one exchange, whichever transport carried it: what the wire
   said (sv_wire) and what the server answered (sv_read_answer) become one
   error, or success.  Transport-free, so every transport reads answers alike. */
#include "sv_core.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const sv_op_names[] = { "create", "query", "download", "exchange", NULL };
const char *const sv_wire_names[] = { "none", "not_sent", "timeout", "broken", "garbled", "fatal", "io", NULL };

/* The key never appears in a message, whatever a server echoes back. */
static void scrub(const char *secret, char *msg) {
  size_t klen = secret ? strlen(secret) : 0;
  char *p;
  if (klen < 4) return;
  while ((p = strstr(msg, secret)) != NULL) {
    memmove(p + 3, p + klen, strlen(p + klen) + 1);
    memcpy(p, "***", 3);
  }
}

sv_wire sv_tunnel_refused(long status, const char *proxy, const char *target, char *msg, size_t n) {
  int auth = status == 401 || status == 407;
  snprintf(msg, n, "the proxy%s%s did not open a tunnel%s%s: answered %ld%s%s", proxy ? " " : "", proxy ? proxy : "",
           target ? " to " : "", target ? target : "", status, auth ? ": " : "", auth ? SV_PROXY_AUTH : "");
  return status < 500 ? SV_WIRE_FATAL : SV_WIRE_NOT_SENT;
}

void sv_too_long(double cap, int its_length, const char *url, char *msg, size_t n) {
  const char *p = url ? strstr(url, "://") : NULL, *at = p ? p + 3 + strcspn(p + 3, "/?#") : url;
  if (!url) {
    snprintf(msg, n, "the answer is larger than %.0f bytes", cap);
    return;
  }
  at += *at == '/';
  snprintf(msg, n, "the body is longer than the video can be: past %.0f bytes (%s) at /%.*s", cap,
           its_length ? "its length" : "max_video_bytes", (int)strcspn(at, "?#"), at);
}

const char *sv_exchange_name(const sv_exchange *x) { return x->what && *x->what ? x->what : sv_op_names[x->op]; }

static int wire_error(const sv_exchange *x, sv_error *err) {
  const char *what = sv_exchange_name(x), *msg = x->message && *x->message ? x->message : "no detail";
  switch (x->wire) {
  case SV_WIRE_TIMEOUT:
    return sv_error_set(err, SV_E_TIMEOUT, NULL, "%s: timed out: %s", what, msg);
  case SV_WIRE_GARBLED:
    return sv_error_set(err, SV_E_PROTOCOL, NULL, "%s: unusable answer: %s", what, msg);
  case SV_WIRE_IO:
    return sv_error_set(err, SV_E_IO, "path", "%s: %s", what, msg);
  case SV_WIRE_NOT_SENT:
    if (strstr(msg, "timed out")) return sv_error_set(err, SV_E_TIMEOUT, NULL, "%s: %s", what, msg);
    /* fall through */
  default:
    return sv_error_set(err, SV_E_NETWORK, NULL, "%s: network error: %s", what, msg);
  }
}

/* How an exchange's answer is read, by what it asked for (sv_readings): its range rule, before the wire is read
   (0, or -1 with err and *wire), then a whole answer (0, or -1 with err). */
typedef struct sv_reading {
  sv_reads reads;
  int (*range)(const sv_exchange *x, sv_error *err, sv_wire *wire);
  int (*answer)(const sv_exchange *x, double now, sv_error *err, sv_wire *wire);
} sv_reading;

static int no_range(const sv_exchange *x, sv_error *err, sv_wire *wire) { (void)x, (void)err, (void)wire; return 0; }

/* An error answer's body read as the server's words (never as a task). */
static int error_page(const sv_exchange *x, double now, sv_error *err) {
  sv_exchange a = *x;
  a.sink = NULL;
  return sv_read_answer(&a, now, err);
}

/* The service's: its answer read as a task (handed to the sink), or its error; a create's error answer whose body
   is a task (429, 503, 500...) is that task: the server made it, recorded and followed, never created again. */
static int task_answer(const sv_exchange *x, double now, sv_error *err, sv_wire *wire) {
  (void)wire;
  if (x->op == SV_OP_CREATE && x->status >= 300 && sv_answer_names_task(x)) return 0;
  return sv_read_answer(x, now, err);
}

/* A file's (a download's): the one range rule of both transports, its 206 goes on where it was asked to. */
static int file_range(const sv_exchange *x, sv_error *err, sv_wire *wire) {
  if (x->status != 206 || x->first == x->from) return 0;
  *wire = SV_WIRE_BROKEN; /* (asked again: the download goes on from what it has) */
  sv_error_set(err, SV_E_NETWORK, NULL, "%s: network error: the server's 206 does not start at byte %.0f, where the "
               "download asked to go on", sv_exchange_name(x), x->from);
  err->status = x->status;
  return -1;
}

/* A file's 200 or 206: whole when its bytes are its length; another status, an error page. */
static int file_answer(const sv_exchange *x, double now, sv_error *err, sv_wire *wire) {
  if (x->status != 200 && x->status != 206) return error_page(x, now, err);
  if (x->total < 0 || x->bytes == x->total) return 0;
  *wire = SV_WIRE_BROKEN;
  sv_error_set(err, SV_E_NETWORK, NULL, "%s: the transfer ended at byte %.0f of %.0f", sv_exchange_name(x),
               x->bytes, x->total);
  err->status = x->status;
  return -1;
}

/* Another host's (into memory): the range rule, its 200 or 206 holds the bytes from its first (else not its tail:
   never kept) and a 200 cut short is its wire's. */
static int bytes_range(const sv_exchange *x, sv_error *err, sv_wire *wire) {
  if (!(x->from > 0 && x->first != x->from && (x->status == 206 || (x->status == 200 && x->wire == SV_WIRE_NONE))))
    return 0;
  *wire = SV_WIRE_GARBLED;
  sv_error_set(err, SV_E_PROTOCOL, NULL, "%s: unusable answer: the server did not send the bytes from %.0f that were "
               "asked for", sv_exchange_name(x), x->from);
  err->status = x->status;
  return -1;
}

/* Another host's 2xx is a success as it is (a webhook taken, the media's bytes, a store's answer). */
static int bytes_answer(const sv_exchange *x, double now, sv_error *err, sv_wire *wire) {
  (void)wire;
  return x->status >= 200 && x->status <= 299 ? 0 : error_page(x, now, err);
}

static const sv_reading TASK = { SV_READS_TASK, no_range, task_answer },
                        FILE_ = { SV_READS_FILE, file_range, file_answer },
                        BYTES = { SV_READS_BYTES, bytes_range, bytes_answer };
static const sv_reading *const sv_readings[] = { [SV_OP_CREATE] = &TASK, [SV_OP_QUERY] = &TASK,
                                                 [SV_OP_DOWNLOAD] = &FILE_, [SV_OP_EXCHANGE] = &BYTES };

sv_reads sv_verdict_reads(const sv_exchange *x) { return sv_readings[x->op]->reads; }

int sv_verdict(const sv_exchange *x, double now, const char *secret, sv_error *err, sv_wire *wire) {
  const sv_reading *r = sv_readings[x->op];
  int rc;
  *wire = x->wire;
  sv_error_clear(err);
  if ((rc = r->range(x, err, wire)) == 0 && x->wire != SV_WIRE_NONE) {
    rc = wire_error(x, err);
    if (x->status > 0) err->status = x->status;
  } else if (rc == 0) {
    rc = r->answer(x, now, err, wire);
  }
  if (rc && x->op == SV_OP_CREATE) {
    /* did the server take it?  Only when the request surely never arrived, or the
       server refused it with a status that creates nothing, can we say no.  The
       one place this is decided (and the id of a task that may exist read) */
    int surely_not = x->wire == SV_WIRE_NOT_SENT || x->wire == SV_WIRE_FATAL ||
                     (x->wire == SV_WIRE_NONE && ((x->status >= 300 && x->status < 500) ||
                                              (x->status == 503 && err->retry_after >= 0)));
    if (!surely_not) {
      err->maybe_created = 1;
      if (!err->id[0] && x->body && x->body_len)
        sv_json_prefix_id(x->body, x->body_len, err->id, sizeof err->id);
    }
  }
  if (rc) err->transient = sv_transient(err->kind, *wire, err->status);
  scrub(secret, err->message);
  return rc;
}

int sv_retry_decide(sv_op op, sv_wire wire, sv_error *err, int attempt, const sv_retry_policy *p, double rnd,
                    double *delay) {
  int retryable;
  double d;
  if (op == SV_OP_CREATE) {
    /* money: resend only when nothing can have been created: a whole answer that created nothing (a 429
       cut short after its status line may have been a task's, sv_verdict's maybe_created) */
    retryable = wire == SV_WIRE_NOT_SENT ||
                (wire == SV_WIRE_NONE && (err->status == 429 || (err->status == 503 && err->retry_after >= 0)));
  } else {
    /* a download goes on from the bytes it has; an answer that is not HTTP
       where that is final (a download's, a ranged exchange's bytes not from
       where it asked: garbled_final) is not worth another attempt there */
    retryable = sv_transient(err->kind, wire, err->status) && !(wire == SV_WIRE_GARBLED && p->garbled_final);
  }
  if (!retryable || attempt > p->max_retries) return 0;
  if (err->retry_after >= 0) {
    if (err->retry_after > p->max_wait) return 0; /* the caller decides about long waits */
    *delay = err->retry_after;
    return 1;
  }
  d = p->backoff * pow(2.0, attempt > 1 ? attempt - 1 : 0);
  if (!(d <= p->max_backoff)) d = p->max_backoff;
  *delay = d * (0.5 + 0.5 * rnd);
  return 1;
}
