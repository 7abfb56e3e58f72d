/* The answer reader on any status, Retry-After value and body, and the verdict on
   a whole exchange (sv_verdict) with any way the wire ended.  Properties: a
   success is a 2xx whose body is one JSON object, without a duplicate key, with a
   usable string id and a string status; only the verdict says a create may have
   made a task: a refused create 2xx says maybe_created and names only an id that
   can be polled, a create's error answer (429, 503, 500...) whose body is a task
   (as a 2xx's would be, its status the lifecycle's) is that task; Retry-After
   is finite and clamped; messages are one line.  The parts of the body handed to a sink (what the binding builds the task table
   from) make one balanced value, nested 64 deep at most, with the members the
   scan counts, whole strings that unescape as sv_json_unescape does, numbers
   that are numbers, and the id the answer names. */
#include "fuzz.h"

#include <math.h>

#define YEAR (86400.0 * 365)

/* A sink that checks what it is handed, as the binding's table builder would use it. */
typedef struct checker {
  int depth, max_depth, opens, closes, top_keys, values;
  int key_is_id;       /* the last top-level key was "id" */
  sv_buf id;           /* the top-level "id" string, unescaped */
  int ids;
} checker;

static void unescaped(const char *val, size_t len, sv_buf *out) {
  char *into = malloc(len ? len : 1);
  size_t n;
  sv_buf ref;
  PROPERTY(into != NULL, "memory");
  PROPERTY(len >= 2 && val[0] == '"' && val[len - 1] == '"', "sink: a string comes whole, with its quotes");
  n = sv_json_unescape_into(val, len, into);
  PROPERTY(n != (size_t)-1 && n <= len - 2, "sink: a string unescaped is never longer");
  memset(&ref, 0, sizeof ref);
  PROPERTY(sv_json_unescape(val, len, &ref) == 0 && ref.len == n && (n == 0 || memcmp(ref.data, into, n) == 0),
           "sink: unescape_into gives what sv_json_unescape gives");
  sv_buf_free(&ref);
  if (out) sv_buf_add(out, into, n);
  free(into);
}

static void c_open(void *ctx, int array) {
  checker *c = ctx;
  (void)array;
  c->opens++;
  if (++c->depth > c->max_depth) c->max_depth = c->depth;
  c->key_is_id = 0;
}

static void c_close(void *ctx) {
  checker *c = ctx;
  PROPERTY(c->depth > 0, "sink: a close follows an open");
  c->depth--;
  c->closes++;
}

static void c_key(void *ctx, const char *val, size_t len, int escaped) {
  checker *c = ctx;
  sv_buf k;
  PROPERTY(c->depth > 0, "sink: a key is inside an object");
  PROPERTY(escaped || !memchr(val, '\\', len), "sink: a key without escapes says so");
  memset(&k, 0, sizeof k);
  unescaped(val, len, &k);
  if (c->depth == 1) {
    c->top_keys++;
    c->key_is_id = k.len == 2 && memcmp(k.data, "id", 2) == 0;
  }
  sv_buf_free(&k);
}

static void c_value(checker *c) {
  c->values++;
  if (c->depth == 1) c->key_is_id = 0;
}

static void c_string(void *ctx, const char *val, size_t len, int escaped) {
  checker *c = ctx;
  PROPERTY(escaped || !memchr(val, '\\', len), "sink: a string without escapes says so");
  if (c->depth == 1 && c->key_is_id) {
    c->ids++;
    c->id.len = 0;
    unescaped(val, len, &c->id);
  } else {
    unescaped(val, len, NULL);
  }
  c_value(c);
}

static void c_number(void *ctx, double v) {
  PROPERTY(v == v, "sink: a JSON number is never NaN");
  c_value(ctx);
}

static void c_literal(void *ctx, char type) {
  PROPERTY(type == 't' || type == 'f' || type == 'z', "sink: a literal is true, false or null");
  c_value(ctx);
}

/* What a create's error answer is taken for: the task, when its body would be one as a 2xx's (read the same
   way) and its status is of the task lifecycle's; else an error. */
static int names_task(const sv_exchange *a) {
  static const char *const lifecycle[] = { "\"queued\"", "\"processing\"", "\"completed\"", "\"failed\"" };
  sv_exchange ok2xx = *a;
  sv_error e;
  sv_json_member st;
  size_t i;
  ok2xx.status = 200;
  ok2xx.sink = NULL;
  ok2xx.retry_after = NULL;
  if (sv_read_answer(&ok2xx, 1.7e9, &e) != 0) return 0;
  PROPERTY(sv_json_get(a->body, a->body_len, "status", &st) == 1 && st.type == 's', "a task has its status");
  for (i = 0; i < sizeof lifecycle / sizeof lifecycle[0]; i++)
    if (st.val_len == strlen(lifecycle[i]) && memcmp(st.val, lifecycle[i], st.val_len) == 0) return 1;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader r = { data, size };
  sv_exchange a;
  sv_error err;
  checker chk;
  sv_json_sink sink = { c_open, c_close, c_key, c_string, c_number, c_literal, NULL };
  const char *ra, *nl;
  char *ra_copy;
  size_t ra_len, i;
  int rc;

  int first;
  memset(&a, 0, sizeof a);
  first = take_byte(&r);
  a.op = (sv_op)(first % 3);
  a.status = (long)((take_byte(&r) << 8 | take_byte(&r)) % 600);
  /* the Retry-After value runs to the first newline (none: no header) */
  nl = memchr(r.p, '\n', r.left);
  ra = take_bytes(&r, nl ? (size_t)(nl - (const char *)r.p) : 0, &ra_len);
  ra_copy = nl ? dup_cstr(ra, ra_len) : NULL;
  if (nl) take_byte(&r);
  a.retry_after = ra_copy;
  a.body = take_bytes(&r, r.left, &a.body_len);

  memset(&chk, 0, sizeof chk);
  memset(&chk.id, 0, sizeof chk.id);
  sink.ctx = &chk;
  a.sink = &sink;
  rc = sv_read_answer(&a, 1.7e9, &err);
  PROPERTY(chk.max_depth <= 64, "sink: nested 64 deep at most");
  if (a.status < 200 || a.status > 299) PROPERTY(chk.opens == 0, "sink: only a 2xx body is handed over");
  PROPERTY(rc == 0 || rc == -1, "0 or -1");
  PROPERTY(err.status == a.status, "the status is kept");
  PROPERTY(isfinite(err.retry_after) && (err.retry_after == -1 || (err.retry_after >= 0 && err.retry_after <= YEAR)),
           "Retry-After is -1 or finite within a year");
  PROPERTY(memchr(err.message, '\0', sizeof err.message) && memchr(err.id, '\0', sizeof err.id),
           "strings are terminated");
  for (i = 0; err.message[i]; i++)
    PROPERTY((unsigned char)err.message[i] >= 0x20 && err.message[i] != 0x7f, "a message is one printable line");

  if (rc == 0) {
    sv_json_member id, st;
    sv_buf b;
    char why[128], pid[SV_ID_MAX + 1];
    int members;
    PROPERTY(a.status >= 200 && a.status <= 299, "only a 2xx succeeds");
    PROPERTY(err.kind == SV_OK && !err.maybe_created && !err.id[0], "a success carries no error");
    members = sv_json_scan(a.body, a.body_len, why, sizeof why);
    PROPERTY(members >= 0, "a success is one JSON object");
    PROPERTY(chk.depth == 0 && chk.opens == chk.closes && chk.opens >= 1, "sink: one balanced value");
    PROPERTY(chk.top_keys == members, "sink: the members the scan counts");
    PROPERTY(chk.ids == 1 && chk.id.len >= 1, "sink: the top-level id, once");
    PROPERTY(duplicate_key(a.body, a.body_len, NULL) == 0, "a success has no duplicate key");
    PROPERTY(sv_json_get(a.body, a.body_len, "id", &id) == 1 && id.type == 's', "a success has one string id");
    PROPERTY(sv_json_get(a.body, a.body_len, "status", &st) == 1 && st.type == 's', "a success has one string status");
    memset(&b, 0, sizeof b);
    PROPERTY(sv_json_unescape(id.val, id.val_len, &b) == 0 && sv_task_id_ok(b.data, b.len), "its id can be polled");
    PROPERTY(sv_json_prefix_id(a.body, a.body_len, pid, sizeof pid) == 0 && strlen(pid) == b.len &&
                 memcmp(pid, b.data, b.len) == 0,
             "the id a cut answer would give is the id of the whole");
    PROPERTY(chk.id.len == b.len && memcmp(chk.id.data, b.data, b.len) == 0, "sink: the id handed over is the task's");
    sv_buf_free(&b);
  } else {
    PROPERTY(err.kind != SV_OK && err.message[0], "a failure says what it is");
    if (a.status >= 200 && a.status <= 299) PROPERTY(err.kind == SV_E_PROTOCOL, "a refused 2xx is a protocol error");
    PROPERTY(!err.maybe_created && !err.id[0], "the reading never decides what a create made: the verdict does");
  }
  sv_buf_free(&chk.id);

  /* the verdict: the same reading when a whole answer came; a broken wire is a
     failure; a create the server may have taken says so and keeps the id a cut
     answer names; the key never reaches a message */
  {
    sv_exchange x;
    sv_error v;
    sv_wire wire;
    static const char secret[] = "sk-fuzz-secret-1234";
    int vr;
    memset(&x, 0, sizeof x);
    x.op = a.op;
    x.status = a.status;
    x.body = a.body;
    x.body_len = a.body_len;
    x.retry_after = a.retry_after;
    x.wire = (sv_wire)((first / 3) % 7);
    x.message = secret; /* a wire message that echoes the key */
    x.bytes = (double)a.body_len;
    x.total = (double)(a.body_len + (size_t)(first & 1));
    vr = sv_verdict(&x, 1.7e9, secret, &v, &wire);
    PROPERTY(vr == 0 || vr == -1, "verdict: 0 or -1");
    if (vr == -1 && x.op == SV_OP_CREATE && x.wire == SV_WIRE_NONE && x.status >= 200 && x.status <= 299)
      PROPERTY(v.maybe_created && v.kind == SV_E_PROTOCOL, "verdict: a refused create 2xx may have created");
    if (x.op != SV_OP_CREATE) PROPERTY(!v.maybe_created && !v.id[0], "verdict: only a create may have created");
    if (v.id[0]) {
      char pid[SV_ID_MAX + 1];
      PROPERTY(v.maybe_created, "verdict: an id is kept only for a create that may have created");
      PROPERTY(sv_task_id_ok(v.id, strlen(v.id)), "verdict: an id kept can be polled");
      PROPERTY(sv_json_prefix_id(a.body, a.body_len, pid, sizeof pid) == 0 && strcmp(pid, v.id) == 0,
               "verdict: the id kept is the first top-level string id");
    }
    PROPERTY(strstr(v.message, secret) == NULL, "verdict: the key never reaches a message");
    if (x.wire != SV_WIRE_NONE) PROPERTY(vr == -1, "verdict: a broken wire is a failure");
    if (x.wire == SV_WIRE_NONE && x.op == SV_OP_CREATE && x.status >= 300) {
      /* an error answer that names a task is that task (the server made it): never an error, never resent */
      PROPERTY(vr == (names_task(&x) ? 0 : -1), "verdict: a create's error answer is a success when it is a task");
      if (vr == -1) PROPERTY(v.kind == err.kind, "verdict: a create's other error answers read as sv_read_answer does");
    } else if (x.wire == SV_WIRE_NONE && x.op != SV_OP_DOWNLOAD) {
      PROPERTY(vr == rc && v.kind == err.kind, "verdict: a whole answer reads as sv_read_answer reads it");
    }
    if (vr == -1 && x.op == SV_OP_CREATE &&
        (x.wire == SV_WIRE_TIMEOUT || x.wire == SV_WIRE_BROKEN || x.wire == SV_WIRE_GARBLED))
      PROPERTY(v.maybe_created, "verdict: a create cut off after sending may have created");
    if (x.wire == SV_WIRE_NOT_SENT || x.wire == SV_WIRE_FATAL)
      PROPERTY(!v.maybe_created, "verdict: nothing sent, nothing created");
    if (v.id[0] && x.wire != SV_WIRE_NONE) {
      char pid[SV_ID_MAX + 1];
      PROPERTY(sv_json_prefix_id(a.body, a.body_len, pid, sizeof pid) == 0 && strcmp(pid, v.id) == 0,
               "verdict: the id kept from a cut answer is its first top-level string id");
    }
  }
  free(ra_copy);
  return 0;
}
