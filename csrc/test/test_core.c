/* The C core tested from C alone (no Lua): the validator, request building, the
   JSON scanner, answer reading and the retry policy.  Prints TAP; exit 1 on any
   failure.  spec/core/core_c_spec.lua runs it as part of `make test`. */
#include "../core/sv_core.h"
#include "tap.h"

#include <errno.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static sv_value S(const char *s) {
  sv_value v;
  memset(&v, 0, sizeof v);
  v.type = SV_V_STRING;
  v.str = s;
  v.len = strlen(s);
  return v;
}

static sv_value N(double d) {
  sv_value v;
  memset(&v, 0, sizeof v);
  v.type = SV_V_NUMBER;
  v.num = d;
  return v;
}

static sv_value L(const sv_value *items, size_t n) {
  sv_value v;
  memset(&v, 0, sizeof v);
  v.type = SV_V_LIST;
  v.items = items;
  v.n = n;
  return v;
}

static sv_value FILE_(const char *path, size_t len) {
  sv_value v;
  memset(&v, 0, sizeof v);
  v.type = SV_V_FILE;
  v.str = path;
  v.len = len;
  return v;
}

static sv_field F(const char *name, sv_value v) {
  sv_field f;
  f.name = name;
  f.name_len = strlen(name);
  f.value = v;
  return f;
}

/* validate fields; expect ok (field NULL) or an error naming `field` */
static void check(const char *name, const sv_field *f, size_t n, const char *field) {
  sv_params p;
  sv_error err;
  int rc;
  memset(&p, 0, sizeof p);
  p.fields = f;
  p.n = n;
  rc = sv_validate(&p, NULL, &err);
  if (!field) {
    ok(rc == 0, name, err.message);
  } else {
    char detail[700];
    snprintf(detail, sizeof detail, "got rc=%d field=%s message=%s", rc, err.field, err.message);
    ok(rc == -1 && err.kind == SV_E_INVALID && strcmp(err.field, field) == 0 &&
           strncmp(err.message, field, strlen(field)) == 0,
       name, detail);
  }
}

static void validator(void) {
  sv_value imgs[8], vid[1];
  int i;
  for (i = 0; i < 8; i++) imgs[i] = S("https://example.com/a.png");
  vid[0] = S("https://example.com/v.mp4");
  {
    sv_field f[] = { F("model", S("videos")), F("prompt", S("a cat")), F("duration", N(5)) };
    check("a text-to-video request on videos is valid", f, 3, NULL);
  }
  {
    sv_field f[] = { F("model", S("videos")), F("prompt", S("a cat")) };
    check("videos requires a duration", f, 2, "duration");
  }
  {
    sv_field f[] = { F("model", S("starvideos_o3")), F("prompt", S("a cat")) };
    check("starvideos_o3 does not require a duration", f, 2, NULL);
  }
  {
    sv_field f[] = { F("model", S("videos")), F("prompt", S("a cat")), F("duration", N(5.5)) };
    check("a fractional duration is refused", f, 3, "duration");
  }
  {
    sv_field f[] = { F("model", S("videos")), F("prompt", S("a cat")), F("duration", N(NAN)) };
    check("a NaN duration is refused", f, 3, "duration");
  }
  {
    sv_field f[] = { F("model", S("videos_fast")), F("prompt", S("x")), F("duration", N(5)), F("ratio", S("21:9")) };
    check("videos_fast refuses 21:9", f, 4, "ratio");
  }
  {
    sv_field f[] = { F("model", S("starvideos_o3")), F("prompt", S("x")), F("referenceImages", L(imgs, 7)) };
    check("starvideos_o3 takes 7 images alone", f, 3, NULL);
  }
  {
    sv_field f[] = { F("model", S("starvideos_o3")), F("prompt", S("x")), F("referenceImages", L(imgs, 5)),
                     F("referenceVideos", L(vid, 1)) };
    check("starvideos_o3 takes only 4 images with a video", f, 4, "referenceImages");
  }
  {
    sv_value bad[2];
    sv_field f[] = { F("model", S("videos")), F("prompt", S("x")), F("duration", N(5)), F("referenceImages", L(bad, 2)) };
    bad[0] = S("https://example.com/a.png");
    bad[1] = S("./cat.png");
    f[3] = F("referenceImages", L(bad, 2));
    check("a relative URL names its 1-based list element", f, 4, "referenceImages[2]");
  }
  {
    sv_field f[] = { F("model", S("videos")), F("prompt", S("x")), F("duration", N(5)),
                     F("first_image", S("https://e.com/1.png")) };
    check("a lone first_image names last_image", f, 4, "last_image");
  }
  {
    sv_field f[] = { F("model", S("videos")), F("prompt", S("x")), F("duration", N(5)),
                     F("first_image", S("https://e.com/1.png")), F("image", S("https://e.com/2.png")) };
    check("a legacy alias conflict names the legacy field", f, 5, "image");
  }
  {
    sv_field f[] = { F("model", S("videos")), F("prompt", S("\xff\xfe")), F("duration", N(5)) };
    check("a prompt that is not UTF-8 is refused", f, 3, "prompt");
  }
  {
    sv_field f[] = { F("model", S("videos")), F("prompt", S("x")), F("duration", N(5)), F("reference_images", L(imgs, 1)) };
    check("an unknown field is named", f, 4, "reference_images");
  }
  {
    sv_field f[] = { F("model", S("starvideos_o3")), F("prompt", S("x")), F("resolution", S("720p")) };
    check("resolution is unknown on starvideos_o3", f, 3, "resolution");
  }
  {
    sv_field f[] = { F("model", S("sora")), F("prompt", S("x")) };
    check("an unknown model is refused", f, 2, "model");
  }
}

static void building(void) {
  sv_field f[] = { F("model", S("videos")), F("prompt", S("say \"hi\"\n")), F("duration", N(5)),
                   F("image", S("https://e.com/1.png")), F("lastFrameImage", S("https://e.com/2.png")) };
  sv_params p;
  sv_buf body, path;
  sv_error err;
  const char *ep = NULL;
  memset(&p, 0, sizeof p);
  p.fields = f;
  p.n = 5;
  memset(&body, 0, sizeof body);
  ok(sv_build_create(&p, &body, &ep, &err) == 0 && strcmp(ep, "/v1/videos/videos") == 0, "a create is built for its endpoint", err.message);
  ok(strcmp(sv_buf_cstr(&body), "{\"model\":\"videos\",\"prompt\":\"say \\\"hi\\\"\\n\",\"duration\":5,"
                                  "\"first_image\":\"https://e.com/1.png\",\"last_image\":\"https://e.com/2.png\"}") == 0,
     "the body escapes the prompt and sends legacy aliases under their current names", sv_buf_cstr(&body));
  sv_buf_free(&body);
  memset(&path, 0, sizeof path);
  sv_result_path("../a/b?c=1", 10, &path, &err);
  ok(strcmp(sv_buf_cstr(&path), "/v1/result/%2E%2E%2Fa%2Fb%3Fc%3D1") == 0, "a task id cannot leave the result path",
     sv_buf_cstr(&path));
  sv_buf_free(&path);
}

static void answers(void) {
  sv_error err;
  sv_exchange a;
  char why[128];
  sv_json_member m[8];
  double d = 0;
  sv_retry_policy pol;
  memset(&a, 0, sizeof a);
  a.op = SV_OP_QUERY;
  a.status = 200;
  a.body = "{\"id\":\"t1\",\"status\":\"queued\",\"video_url\":null}";
  a.body_len = strlen(a.body);
  ok(sv_read_answer(&a, 0, &err) == 0, "a task answer is accepted", err.message);
  a.body = "{\"id\":\"t1\",\"sta";
  a.body_len = strlen(a.body);
  ok(sv_read_answer(&a, 0, &err) == -1 && err.kind == SV_E_PROTOCOL, "a truncated answer is a protocol error", err.message);
  a.status = 502;
  a.body = "<html><body>Bad Gateway</body></html>";
  a.body_len = strlen(a.body);
  ok(sv_read_answer(&a, 0, &err) == -1 && err.kind == SV_E_SERVER && strstr(err.message, "Bad Gateway") != NULL,
     "an HTML 502 is a server error quoting the page", err.message);
  a.status = 429;
  a.body = "{\"error\":{\"message\":\"slow down\"}}";
  a.body_len = strlen(a.body);
  a.retry_after = "7";
  ok(sv_read_answer(&a, 0, &err) == -1 && err.kind == SV_E_RATE_LIMITED && err.retry_after == 7 &&
         strstr(err.message, "slow down") != NULL,
     "a 429 is rate_limited with the server's words and Retry-After", err.message);
  ok(fabs(sv_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111767.0) - 10) < 1e-6,
     "Retry-After as an HTTP date counts from now", NULL);
  {
    const char *doc = "{\"a\":[1,{\"b\":2e3}],\"c\":\"\\u00e9\"}";
    ok(sv_json_scan(doc, strlen(doc), why, sizeof why) == 2 && sv_json_get(doc, strlen(doc), "c", &m[1]) == 1 &&
       m[1].type == 's', "the scanner counts top-level members", why);
  }
  ok(sv_json_scan("[1]", 3, why, sizeof why) == -1, "the scanner wants an object", why);
  { /* a backslash before a NUL byte is no escape (strchr would find the NUL as its list's end) */
    static const char doc[] = "{\"id\":\"a\",\"status\":\"q\\\0x\"}";
    ok(sv_json_scan(doc, sizeof doc - 1, why, sizeof why) == -1 && strstr(why, "bad escape") != NULL,
       "a backslash and a NUL byte in a string is refused", why);
  }

  /* the retry policy */
  memset(&pol, 0, sizeof pol); /* (garbled_final and any field to come: 0) */
  pol.max_retries = 2;
  pol.backoff = 0.5;
  pol.max_backoff = 30;
  pol.max_wait = 60;
  sv_error_clear(&err);
  err.status = 500;
  ok(!sv_retry_decide(SV_OP_CREATE, SV_WIRE_NONE, &err, 1, &pol, 0.5, &d) && !err.maybe_created,
     "a create is not resent after a 500 (whether it may exist is the verdict's word)", NULL);
  sv_error_clear(&err);
  ok(!sv_retry_decide(SV_OP_CREATE, SV_WIRE_TIMEOUT, &err, 1, &pol, 0.5, &d) && !err.maybe_created,
     "a create is not resent after a timeout", NULL);
  sv_error_clear(&err);
  ok(sv_retry_decide(SV_OP_CREATE, SV_WIRE_NOT_SENT, &err, 1, &pol, 0.5, &d) && !err.maybe_created,
     "a create that never connected is resent", NULL);
  sv_error_clear(&err);
  err.status = 503;
  err.retry_after = 2;
  ok(sv_retry_decide(SV_OP_CREATE, SV_WIRE_NONE, &err, 1, &pol, 0.5, &d) && d == 2,
     "a create is resent after a 503 with Retry-After, after that delay", NULL);
  sv_error_clear(&err);
  err.status = 503;
  ok(sv_retry_decide(SV_OP_QUERY, SV_WIRE_NONE, &err, 2, &pol, 0.0, &d) && d >= 0.5 && d <= 1.0,
     "a query backs off exponentially with jitter", NULL);
  ok(!sv_retry_decide(SV_OP_QUERY, SV_WIRE_NONE, &err, 3, &pol, 0.0, &d), "a query gives up after max_retries", NULL);
  pol.max_retries = 20;
  pol.max_backoff = 3;
  ok(sv_retry_decide(SV_OP_QUERY, SV_WIRE_NONE, &err, 12, &pol, 0.999, &d) && d <= 3 && d >= 2.99,
     "the doubling stops at max_backoff", NULL);
  ok(sv_retry_decide(SV_OP_DOWNLOAD, SV_WIRE_BROKEN, &err, 12, &pol, 0.0, &d) && d == 1.5,
     "a download's delay is capped alike, and never under half of it", NULL);
  sv_error_clear(&err);
  err.status = 503;
  err.retry_after = 2;
  ok(sv_retry_decide(SV_OP_DOWNLOAD, SV_WIRE_NONE, &err, 1, &pol, 0.3, &d) && d == 2,
     "a download honours Retry-After", NULL);
  err.retry_after = 61;
  ok(!sv_retry_decide(SV_OP_DOWNLOAD, SV_WIRE_NONE, &err, 1, &pol, 0.3, &d),
     "a download gives up on a Retry-After beyond max_wait", NULL);
  sv_error_clear(&err);
  ok(!sv_retry_decide(SV_OP_DOWNLOAD, SV_WIRE_IO, &err, 1, &pol, 0.3, &d),
     "a download whose file cannot be written is not tried again", NULL);
  pol.garbled_final = 1; /* (a download's policy: download.lua's INTO.final) */
  ok(!sv_retry_decide(SV_OP_DOWNLOAD, SV_WIRE_GARBLED, &err, 1, &pol, 0.3, &d),
     "nor one whose answer is not HTTP", NULL);
  pol.garbled_final = 0;
  ok(sv_retry_decide(SV_OP_QUERY, SV_WIRE_GARBLED, &err, 1, &pol, 0.3, &d),
     "a query's garbled answer is asked again (its policy: not final)", NULL);
}

/* ---------------------------------------------------------- hardening */

static sv_value B(int b) {
  sv_value v;
  memset(&v, 0, sizeof v);
  v.type = SV_V_BOOL;
  v.boolean = b;
  return v;
}

/* build with fields and extra text; rc, the body in *body (caller frees) */
static int build(const sv_field *f, size_t n, const char *extra, size_t extra_len, sv_buf *body,
                 sv_error *err) {
  sv_params p;
  const char *ep = NULL;
  memset(&p, 0, sizeof p);
  p.fields = f;
  p.n = n;
  p.extra_json = extra;
  p.extra_len = extra_len;
  memset(body, 0, sizeof *body);
  return sv_build_create(&p, body, &ep, err);
}

static int is_one_object(const char *s, size_t len) {
  char why[128];
  return sv_json_scan(s, len, why, sizeof why) >= 0;
}

/* sv_json_duplicate_in over the top-level members of text (sv_json_read's): as answer.c and models.c call it */
static int dupk_len(const char *text, size_t len, sv_buf *key) {
  sv_buf ms = { 0 };
  int n = sv_json_read(text, len, NULL, &ms, NULL, 0);
  if (n >= 0) n = ms.oom ? -2 : sv_json_duplicate_in((const sv_json_member *)(void *)ms.data, (size_t)n, key);
  sv_buf_free(&ms);
  return n;
}

static void duplicate_fields(void) {
  sv_error err;
  sv_buf body;
  char detail[900];
  int rc;
  {
    sv_field f[] = { F("model", S("videos")), F("prompt", S("\xff\xfe")), F("duration", N(5)),
                     F("prompt", S("a cat")) };
    check("a field given twice is refused, naming it", f, 4, "prompt");
    {
      sv_params p;
      memset(&p, 0, sizeof p);
      p.fields = f;
      p.n = 4;
      sv_validate(&p, NULL, &err);
      ok(strstr(err.message, "twice") != NULL, "the message says the field is given twice", err.message);
    }
    rc = build(f, 4, NULL, 0, &body, &err);
    snprintf(detail, sizeof detail, "rc=%d body=%s", rc, sv_buf_cstr(&body));
    ok(rc == -1 && strcmp(err.field, "prompt") == 0, "a prompt given twice never reaches a body", detail);
    sv_buf_free(&body);
  }
  {
    sv_field f[] = { F("model", S("videos")), F("prompt", S("a cat")), F("duration", N(1e308)),
                     F("duration", N(5)) };
    rc = build(f, 4, NULL, 0, &body, &err);
    snprintf(detail, sizeof detail, "rc=%d field=%s body=%s", rc, err.field, sv_buf_cstr(&body));
    ok(rc == -1 && err.kind == SV_E_INVALID && strcmp(err.field, "duration") == 0 &&
           strstr(sv_buf_cstr(&body), "-2147483648") == NULL,
       "a duration of 1e308 given before a valid one is refused, not sent as an int", detail);
    sv_buf_free(&body);
  }
  {
    sv_field f[] = { F("model", S("videos")), F("model", S("sora")), F("prompt", S("x")), F("duration", N(5)) };
    check("the model given twice is refused", f, 4, "model");
  }
  {
    sv_field f[] = { F("model", S("videos")), F("prompt", S("x")), F("duration", N(5)),
                     F("ratio", S("16:9")), F("ratio", S("16:9")) };
    check("a field given twice is refused even with the same value", f, 5, "ratio");
  }
  {
    static const double hostile[] = { 1e308, -1e308, 2147483648.0, -2147483649.0, 4294967301.0,
                                      HUGE_VAL, -HUGE_VAL, NAN, 1e-300, -0.0 };
    size_t i;
    for (i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
      sv_field f[] = { F("model", S("videos")), F("prompt", S("x")), F("duration", N(0)) };
      char name[96];
      f[2] = F("duration", N(hostile[i]));
      snprintf(name, sizeof name, "a duration of %g is refused before any conversion", hostile[i]);
      check(name, f, 3, "duration");
    }
  }
  {
    sv_field f[] = { F("model", S("starvideos_o3")), F("prompt", S("x")), F("duration", B(1)) };
    check("a boolean duration is refused", f, 3, "duration");
  }
}

static void extra_json(void) {
  static const struct { const char *text; size_t len; const char *field; const char *name; } cases[] = {
    { NULL, 5, "extra", "extra text NULL with a length is refused" },
    { "", 0, "extra", "empty extra text is refused" },
    { "[]", 2, "extra", "extra text that is an array is refused" },
    { "{} {}", 5, "extra", "two objects in extra are refused" },
    { "{\"a\":1}x", 8, "extra", "extra text with trailing garbage is refused" },
    { "{\"a\":1", 6, "extra", "truncated extra text is refused" },
    { "{\"a\":1,\"a\":2}", 13, "extra", "a key given twice in extra is refused" },
    { "{\"model\":\"sora\"}", 16, "extra.model", "an extra key that is a real field is refused" },
    { "{\"seed\":1,\"mod\\u0065l\":\"sora\"}", 30, "extra.model", "an escaped extra key that is a real field is refused" },
    { "{\"prompt\":\"x\"}", 14, "extra.prompt", "extra cannot add a second prompt" },
    { "{\"first_image\":\"https://e.com/1.png\"}", 37, "extra.first_image", "extra cannot add a frame" },
    { "\"{}\"", 4, "extra", "a JSON string in extra is refused" },
    { "{\"\":1}", 6, "extra", "an empty key in extra is refused (not a name)" },
    { "{\"seed\":1,\"12\":2}", 17, "extra", "a key of digits in extra is refused (a Lua list index, not a name)" },
  };
  static const struct { const char *text; const char *tail; const char *name; } good[] = {
    { "{}", "\"duration\":5}", "extra {} adds nothing" },
    { "{ }", "\"duration\":5}", "extra { } adds nothing and the body stays valid JSON" },
    { " {\n} \n", "\"duration\":5}", "extra with only whitespace inside adds nothing" },
    { "{ \"seed\" : 42 ,\n\"watermark\":false }", "\"duration\":5,\"seed\":42,\"watermark\":false}",
      "extra members are spliced whatever their whitespace" },
    { "{\"nested\":{\"model\":\"x\"},\"list\":[1,{\"a\":null}]}", "\"duration\":5,\"nested\":{\"model\":\"x\"},\"list\":[1,{\"a\":null}]}",
      "nested extra values may use any key" },
  };
  size_t i;
  sv_field f[] = { F("model", S("videos")), F("prompt", S("a cat")), F("duration", N(5)) };
  sv_buf body;
  sv_error err;
  char detail[900];
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = build(f, 3, cases[i].text, cases[i].len, &body, &err);
    snprintf(detail, sizeof detail, "rc=%d field=%s message=%s body=%s", rc, err.field, err.message,
             sv_buf_cstr(&body));
    ok(rc == -1 && err.kind == SV_E_INVALID && strcmp(err.field, cases[i].field) == 0 &&
           strncmp(err.message, cases[i].field, strlen(cases[i].field)) == 0,
       cases[i].name, detail);
    sv_buf_free(&body);
  }
  for (i = 0; i < sizeof good / sizeof good[0]; i++) {
    int rc = build(f, 3, good[i].text, strlen(good[i].text), &body, &err);
    size_t tl = strlen(good[i].tail);
    snprintf(detail, sizeof detail, "rc=%d message=%s body=%s", rc, err.message, sv_buf_cstr(&body));
    ok(rc == 0 && is_one_object(body.data, body.len) && dupk_len(body.data, body.len, NULL) == 0 &&
           body.len >= tl && memcmp(body.data + body.len - tl, good[i].tail, tl) == 0,
       good[i].name, detail);
    sv_buf_free(&body);
  }
  {
    /* validation alone refuses bad extra text too (the Lua side calls it first) */
    sv_params p;
    memset(&p, 0, sizeof p);
    p.fields = f;
    p.n = 3;
    p.extra_json = "{ ";
    p.extra_len = 2;
    ok(sv_validate(&p, NULL, &err) == -1 && strcmp(err.field, "extra") == 0, "sv_validate refuses bad extra text", err.message);
  }
  {
    /* extra has one form, its text: a field named extra is refused, not dropped */
    sv_field g[] = { F("model", S("videos")), F("prompt", S("a cat")), F("duration", N(5)), F("extra", S("{}")) };
    int rc = build(g, 4, NULL, 0, &body, &err);
    ok(rc == -1 && strcmp(err.field, "extra") == 0 && strstr(err.message, "JSON text") != NULL,
       "a field named extra is refused, pointing at the JSON text", err.message);
    sv_buf_free(&body);
  }
}

static int dupk(const char *text, sv_buf *key) { return dupk_len(text, strlen(text), key); }

static void duplicate_keys(void) {
  sv_buf key;
  char many[4096];
  size_t n = 0;
  int i;
  memset(&key, 0, sizeof key);
  ok(dupk("{\"a\":1,\"b\":2,\"a\":3}", &key) == 1 && strcmp(sv_buf_cstr(&key), "a") == 0,
     "a duplicate top-level key is found and named", sv_buf_cstr(&key));
  sv_buf_free(&key);
  ok(dupk("{\"id\":\"x\",\"\\u0069d\":\"y\"}", &key) == 1 && strcmp(sv_buf_cstr(&key), "id") == 0,
     "keys are compared after unescaping", sv_buf_cstr(&key));
  sv_buf_free(&key);
  ok(dupk("{\"b\":1,\"a\":2,\"b\":3,\"a\":4}", &key) == 1 && strcmp(sv_buf_cstr(&key), "b") == 0,
     "the key named is the one whose second appearance comes first", sv_buf_cstr(&key));
  sv_buf_free(&key);
  ok(dupk("{\"\":1,\"\":2}", &key) == 1 && key.len == 0, "two empty keys are a duplicate", NULL);
  ok(dupk("{\"a\":{\"a\":1},\"b\":[{\"b\":1,\"b\":2}]}", NULL) == 0,
     "nested keys do not count as top-level duplicates", NULL);
  ok(dupk("{\"a\":1,\"A\":2,\"a \":3,\"a\\u0000\":4}", NULL) == 0, "keys that differ are not duplicates", NULL);
  ok(dupk("[1,1]", NULL) == -1, "an array is not an object for the duplicate check", NULL);
  ok(dupk("{\"a\":1", NULL) == -1, "a truncated object is not checked for duplicates", NULL);
  n += (size_t)snprintf(many + n, sizeof many - n, "{");
  for (i = 0; i < 300; i++) n += (size_t)snprintf(many + n, sizeof many - n, "%s\"k%d\":%d", i ? "," : "", i, i);
  snprintf(many + n, sizeof many - n, "}");
  ok(dupk(many, NULL) == 0, "300 different keys are no duplicate", many + n - 20);
  snprintf(many + n, sizeof many - n, ",\"k7\":0}");
  ok(dupk(many, &key) == 1 && strcmp(sv_buf_cstr(&key), "k7") == 0,
     "a duplicate after 300 keys is found", sv_buf_cstr(&key));
  sv_buf_free(&key);
  snprintf(many + n, sizeof many - n, ",\"k9\":0,\"k7\":0}");
  ok(dupk(many, &key) == 1 && strcmp(sv_buf_cstr(&key), "k9") == 0,
     "among many keys too, the one whose second appearance comes first is named", sv_buf_cstr(&key));
  sv_buf_free(&key);
}

/* A whole 200 to a create, read by the verdict (which alone says whether a
   create that failed may have made a task, and which). */
static int read_create(const char *body, sv_error *err) {
  sv_exchange x;
  sv_wire wire;
  memset(&x, 0, sizeof x);
  x.op = SV_OP_CREATE;
  x.status = 200;
  x.body = body;
  x.body_len = body ? strlen(body) : 0;
  x.wire = SV_WIRE_NONE;
  x.total = -1;
  return sv_verdict(&x, 0, NULL, err, &wire);
}

/* A 2xx answer is read in one pass over its members; answers with many members
   or escaped keys are read by the general functions: both give the same verdict. */
static void answers_in_one_pass(void) {
  static const struct { const char *body; int rc; const char *words; const char *name; } cases[] = {
    { "{\"id\":\"t1\",\"status\":\"queued\",\"error\":null}", 0, "", "a plain task answer is taken" },
    { "{\"status\":\"queued\",\"x\":1,\"\\u0069d\":\"t1\"}", 0, "",
      "an escaped \"id\" key names the task" },
    { "{\"id\":\"t1\",\"status\":\"queued\",\"\\u0069d\":\"t2\"}", -1, "duplicate key \"id\"",
      "an escaped key that repeats another is a duplicate" },
    { "{\"b\":1,\"a\":2,\"b\":3,\"a\":4,\"id\":\"t\",\"status\":\"queued\"}", -1, "duplicate key \"b\"",
      "the duplicate named is the one whose second appearance comes first" },
    { "{\"a\":2,\"b\":1,\"b\":3,\"a\":4,\"id\":\"t\",\"status\":\"queued\"}", -1, "duplicate key \"b\"",
      "the duplicate named is the one whose second appearance comes first (again)" },
    { "{\"\":1,\"id\":\"t\",\"status\":\"queued\",\"\":2}", -1, "duplicate key \"\"",
      "two empty keys are a duplicate" },
    { "{\"id\":\"t\",\"status\":\"queued\",\"x\":{\"id\":1,\"id\":2}}", 0, "",
      "nested duplicates do not count" },
    { "{\"id\":\"t\",\"x\":{\"status\":\"queued\"}}", -1, "no task status", "a nested status does not count" },
    { "{\"id\":\"t\",\"status\":5}", -1, "no task status", "a status that is not a string does not count" },
  };
  char big[4096], detail[1400];
  size_t i, n;
  sv_error err;
  sv_exchange a;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc;
    memset(&a, 0, sizeof a);
    a.op = SV_OP_QUERY;
    a.status = 200;
    a.body = cases[i].body;
    a.body_len = strlen(cases[i].body);
    rc = sv_read_answer(&a, 0, &err);
    snprintf(detail, sizeof detail, "rc=%d message=%s", rc, err.message);
    ok(rc == cases[i].rc && (rc == 0 || (err.kind == SV_E_PROTOCOL && strstr(err.message, cases[i].words))),
       cases[i].name, detail);
  }
  /* more members than one pass lists: id and status after the 40th, a duplicate at the end */
  n = (size_t)snprintf(big, sizeof big, "{");
  for (i = 0; i < 40; i++) n += (size_t)snprintf(big + n, sizeof big - n, "\"k%zu\":%zu,", i, i);
  n += (size_t)snprintf(big + n, sizeof big - n, "\"id\":\"t40\",\"status\":\"completed\"}");
  memset(&a, 0, sizeof a);
  a.op = SV_OP_QUERY;
  a.status = 200;
  a.body = big;
  a.body_len = n;
  ok(sv_read_answer(&a, 0, &err) == 0, "an answer with 42 members names its task", err.message);
  snprintf(big + n - 1, sizeof big - (n - 1), ",\"k3\":0}");
  a.body_len = strlen(big);
  ok(sv_read_answer(&a, 0, &err) == -1 && strstr(err.message, "duplicate key \"k3\"") != NULL,
     "a duplicate after 42 members is found", err.message);
  snprintf(big, sizeof big, "{\"status\":\"completed\"");
  for (i = 0, n = strlen(big); i < 40; i++) n += (size_t)snprintf(big + n, sizeof big - n, ",\"k%zu\":%zu", i, i);
  snprintf(big + n, sizeof big - n, "}");
  a.body_len = strlen(big);
  ok(sv_read_answer(&a, 0, &err) == -1 && strstr(err.message, "no task id") != NULL,
     "an answer with 41 members and no id has no task id", err.message);
}

static void create_answers(void) {
  static const struct { const char *body; const char *id; const char *words; const char *name; } cases[] = {
    { "{\"id\":\"t1\",\"status\":\"queued\",\"id\":\"t2\"}", "t1", "duplicate key \"id\"",
      "a create answer with the id twice is refused, keeping the first id" },
    { "{\"id\":5,\"status\":\"queued\",\"id\":\"t9\"}", "t9", "duplicate key \"id\"",
      "the id kept is the first id that is a string" },
    { "{\"id\":\"t1\",\"status\":\"queued\",\"status\":\"failed\"}", "t1", "duplicate key \"status\"",
      "a create answer with the status twice is refused" },
    { "{\"status\":\"queued\"}", "", "no task id", "a create answer without an id may have created" },
    { "{\"id\":\"\",\"status\":\"queued\"}", "", "empty", "a create answer with an empty id may have created" },
    { "{\"id\":12,\"status\":\"queued\"}", "", "not a string", "a create answer with a number id may have created" },
    { "", "", "empty", "an empty create answer may have created" },
    { "{\"x\":{\"id\":\"no\"},\"status\":\"que", "", "not a JSON object",
      "a nested id is not taken for the task id of a cut answer" },
    { "{\"x\":{\"id\":\"no\"},\"id\":\"yes\",\"status\":\"que", "yes", "not a JSON object",
      "the top-level id of a cut answer is kept" },
    { "{\"id\":\"t\\n1\",\"status\":\"queued\"}", "", "control character",
      "a create answer whose id has a control character is refused" },
    { "{\"id\":\"t3\"}", "t3", "no task status", "a create answer without a status keeps the id" },
    { "\xef\xbb\xbf{\"id\":\"t4\",\"status\":\"queued\"}", "t4", "not a JSON object",
      "the id is kept from an answer with a byte-order mark" },
  };
  size_t i;
  sv_error err;
  char detail[1200];
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = read_create(cases[i].body, &err);
    snprintf(detail, sizeof detail, "rc=%d kind=%s maybe=%d id=%s message=%s", rc, sv_kind_name(err.kind),
             err.maybe_created, err.id, err.message);
    ok(rc == -1 && err.kind == SV_E_PROTOCOL && err.maybe_created && strcmp(err.id, cases[i].id) == 0 &&
           strstr(err.message, cases[i].words) != NULL,
       cases[i].name, detail);
  }
  {
    /* ids up to SV_ID_MAX bytes are taken; longer ones are refused */
    char body[1200], id[600];
    int rc;
    memset(id, 'a', sizeof id);
    id[512] = '\0';
    snprintf(body, sizeof body, "{\"id\":\"%s\",\"status\":\"queued\"}", id);
    rc = read_create(body, &err);
    ok(rc == 0, "a create answer with a 512-byte id is taken", err.message);
    id[512] = 'a';
    id[513] = '\0';
    snprintf(body, sizeof body, "{\"id\":\"%s\",\"status\":\"queued\"}", id);
    rc = read_create(body, &err);
    snprintf(detail, sizeof detail, "rc=%d maybe=%d message=%s", rc, err.maybe_created, err.message);
    ok(rc == -1 && err.kind == SV_E_PROTOCOL && err.maybe_created && strstr(err.message, "513 bytes") != NULL,
       "a create answer with a 513-byte id is a protocol error that may have created", detail);
  }
  {
    /* the id is found among many members, not only the first 64 */
    char body[8192];
    size_t n = 0;
    int k;
    n += (size_t)snprintf(body + n, sizeof body - n, "{\"status\":\"queued\"");
    for (k = 0; k < 100; k++) n += (size_t)snprintf(body + n, sizeof body - n, ",\"f%d\":%d", k, k);
    snprintf(body + n, sizeof body - n, ",\"id\":\"late\"}");
    ok(read_create(body, &err) == 0, "an answer with its id after 100 other members is taken", err.message);
  }
  {
    sv_exchange a;
    memset(&a, 0, sizeof a);
    a.op = SV_OP_QUERY;
    a.status = 200;
    a.body = "{\"id\":\"t1\",\"status\":\"queued\",\"status\":\"succeeded\"}";
    a.body_len = strlen(a.body);
    ok(sv_read_answer(&a, 0, &err) == -1 && err.kind == SV_E_PROTOCOL && !err.maybe_created &&
           strstr(err.message, "duplicate key \"status\"") != NULL,
       "a query answer with a duplicate key is a protocol error", err.message);
    a.body = "{\"id\":\"\",\"status\":\"queued\"}";
    a.body_len = strlen(a.body);
    ok(sv_read_answer(&a, 0, &err) == -1 && err.kind == SV_E_PROTOCOL && !err.maybe_created,
       "a query answer with an empty id is a protocol error", err.message);
    a.status = 500;
    a.body = "{\"error\":{\"message\":\"line one\\nX-Injected: 1\\u0000\"}}";
    a.body_len = strlen(a.body);
    ok(sv_read_answer(&a, 0, &err) == -1 && err.kind == SV_E_SERVER && strchr(err.message, '\n') == NULL &&
           strstr(err.message, "line one X-Injected: 1") != NULL,
       "the server's words are kept on one line", err.message);
  }
}

static void prefix_ids(void) {
  static const struct { const char *body; const char *id; const char *name; } cases[] = {
    { "{\"id\":\"task_1\",\"status\":\"que", "task_1", "the id of a cut answer is read" },
    { "{\"x\":{\"id\":\"no\"},\"id\":\"yes\"", "yes", "the id read is the top-level one" },
    { "{\"id\":\"task_", NULL, "an id cut inside its string gives nothing" },
    { "{\"id\":\"task_1", NULL, "an id without its closing quote gives nothing" },
    { "{\"id\":12,\"id\":\"b\"", "b", "the first id that is a string is read" },
    { " \n{ \"id\" :\t\"a\\\"b\\u00e9\"", "a\"b\xc3\xa9", "an escaped id is unescaped" },
    { "{\"a\":[1,2,{\"id\":\"n\"}],\"id\":\"y\",", "y", "ids inside arrays do not count" },
    { "[{\"id\":\"x\"}]", NULL, "an array gives nothing" },
    { "{\"id\":\"x\\u0000y\"}", NULL, "an id with a NUL gives nothing" },
    { "{\"i\\u0064\":\"esc\"", "esc", "an escaped key \"id\" counts" },
    { "{\"a\":tru,\"id\":\"after\"}", NULL, "nothing after a syntax error is read" },
    { "", NULL, "an empty body gives nothing" },
  };
  size_t i;
  char out[SV_ID_MAX + 1];
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = sv_json_prefix_id(cases[i].body, strlen(cases[i].body), out, sizeof out);
    char detail[700];
    snprintf(detail, sizeof detail, "rc=%d out=%s", rc, rc == 0 ? out : "");
    ok(cases[i].id ? rc == 0 && strcmp(out, cases[i].id) == 0 : rc == -1, cases[i].name, detail);
  }
  ok(sv_json_prefix_id("{\"id\":\"abcdef\"", 14, out, 4) == -1, "an id that does not fit gives nothing", NULL);
  ok(sv_json_prefix_id("{\"x\":{\"id\":\"no\"}} junk", 22, out, sizeof out) == -1,
     "a nested id is not taken, even before junk", out);
}

static void result_paths(void) {
  char id[600];
  sv_buf out;
  sv_error err;
  memset(id, 'x', sizeof id);
  memset(&out, 0, sizeof out);
  ok(sv_result_path(id, 512, &out, &err) == 0 && out.len == 11 + 512, "a 512-byte id can be polled", err.message);
  sv_buf_free(&out);
  ok(sv_result_path(id, 513, &out, &err) == -1 && err.kind == SV_E_INVALID && strcmp(err.field, "id") == 0,
     "a 513-byte id is refused", NULL);
  sv_buf_free(&out);
  ok(sv_result_path("", 0, &out, &err) == -1, "an empty id is refused", NULL);
  sv_buf_free(&out);
}

/* An X-Request-Id: "8-4-4-4-12" lowercase hex digits, version 4, the RFC's variant. */
static int uuid4_form(const char *s) {
  size_t i;
  if (strlen(s) != 36 || s[14] != '4' || !strchr("89ab", s[19])) return 0;
  for (i = 0; i < 36; i++) {
    int dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i])) return 0;
  }
  return 1;
}

static void request_ids(void) {
  static char ids[200][37];
  int i, j, form = 1, distinct = 1;
  for (i = 0; i < 200; i++) {
    sv_request_id(ids[i]);
    form = form && uuid4_form(ids[i]);
    for (j = 0; j < i; j++) distinct = distinct && strcmp(ids[i], ids[j]) != 0;
  }
  ok(form, "a request id is a random UUID (v4): 8-4-4-4-12 lowercase hex digits", ids[0]);
  ok(distinct, "200 request ids are 200 different ones", NULL);
}

static void headers_and_urls(void) {
  static const struct { const char *url; const char *found; const char *name; } bad[] = {
    { "", "nothing", "an empty base_url is refused" },
    { "ftp://example.com", "\"ftp\"", "an ftp base_url is refused" },
    { "example.com", "no scheme", "a base_url without a scheme is refused" },
    { "http://", "no host", "a base_url without a host is refused" },
    { "https:///v1", "no host", "a base_url with an empty host is refused" },
    { "http://exa mple.com", "a space", "a base_url with a space is refused" },
    { "http://example.com/v1\r\nX-Evil: 1", "a control character", "a base_url with CRLF is refused" },
    { "http://example.com/v1?key=1", "'?'", "a base_url with a query is refused" },
    { "http://example.com/v1#top", "'#'", "a base_url with a fragment is refused" },
    { "http://user:secret@example.com", "'@'", "a base_url with credentials is refused" },
    { "http://example.com:", "an empty port", "an empty port is refused" },
    { "http://example.com:0", "port 0", "port 0 is refused" },
    { "http://example.com:65536", "port 65536", "port 65536 is refused" },
    { "http://example.com:99999999999999999999", "a port", "a huge port is refused" },
    { "http://example.com:8x", "'x'", "a port with a letter is refused" },
    { "http://exa_mple.com\x7f", "a control character", "DEL is refused" },
    { "http://example.com/%zz", "'%'", "a bad percent escape is refused" },
    { "http://[::1/", "'['", "an unclosed IPv6 literal is refused" },
    { "http://ex\xc3\xa9.com", "a non-ASCII byte", "a non-ASCII host is refused" },
    { "http://example.com\\evil", "'\\'", "a backslash is refused" },
  };
  static const char *const goodurls[] = {
    "http://127.0.0.1:8080", "https://api.example.com", "https://api.example.com/", "HTTPS://API.example.com/v1//",
    "http://[::1]:9000/base", "http://localhost:1", "http://h:65535/a/b-c_d.e~f/%2F", "http://a-b.example/x;y=1,z",
  };
  size_t i;
  sv_error err;
  ok(sv_header_value_ok("sk-abc 123", 10) == 1, "a printable header value is fine", NULL);
  ok(sv_header_value_ok("sk-abc\r\nX: 1", 12) == 0, "CRLF in a header value is refused", NULL);
  ok(sv_header_value_ok("a\tb", 3) == 0, "a tab in a header value is refused", NULL);
  ok(sv_header_value_ok("a\x7f", 2) == 0, "DEL in a header value is refused", NULL);
  ok(sv_header_value_ok("a\0b", 3) == 0, "NUL in a header value is refused", NULL);
  ok(sv_header_value_ok("caf\xc3\xa9", 5) == 1, "UTF-8 in a header value is not a control character", NULL);
  ok(sv_header_value_ok(NULL, 3) == 0, "NULL with a length is refused", NULL);
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc;
    char detail[800];
    sv_error_clear(&err);
    rc = sv_url_check(bad[i].url, strlen(bad[i].url), "base_url", SV_URL_BASE, &err);
    snprintf(detail, sizeof detail, "rc=%d field=%s message=%s", rc, err.field, err.message);
    ok(rc == -1 && err.kind == SV_E_INVALID && strcmp(err.field, "base_url") == 0 &&
           strncmp(err.message, "base_url: ", 10) == 0 && strstr(err.message, bad[i].found) != NULL &&
           strstr(err.message, "secret") == NULL,
       bad[i].name, detail);
  }
  for (i = 0; i < sizeof goodurls / sizeof goodurls[0]; i++) {
    char name[200];
    sv_error_clear(&err);
    snprintf(name, sizeof name, "base_url %s is accepted", goodurls[i]);
    ok(sv_url_check(goodurls[i], strlen(goodurls[i]), "base_url", SV_URL_BASE, &err) == 0, name, err.message);
  }
  ok(sv_url_check("http://example.com\0/x", 21, "base_url", SV_URL_BASE, &err) == -1, "a NUL inside base_url is refused", err.message);
  /* the other form: a video's URL may carry a signed query */
  {
    static const char *const signed_url = "https://cdn.example/v/a@2x.mp4?X-Sig=ab%2Fcd&e=1&p=/x?y#t";
    sv_error_clear(&err);
    ok(sv_url_check(signed_url, strlen(signed_url), "video_url", SV_URL_ANY, &err) == 0,
       "a signed video URL (query, '@' in the path, fragment) is accepted", err.message);
    ok(sv_url_check(signed_url, strlen(signed_url), "base_url", SV_URL_BASE, &err) == -1,
       "the same URL is no base URL", err.message);
  }
  {
    /* every byte, in a host and in a path, against the rule written out here
       (csrc/core/url.c reads it from a table): a host takes letters, digits and
       "-._"; a path RFC 3986's pchar and '/', '@' '?' '#' in a video's URL */
    int c, host_bad = 0, path_bad = 0, base_bad = 0;
    for (c = 1; c < 256; c++) {
      char url[64];
      int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      int in_host = alnum || (c && strchr("-._", c) != NULL);
      int in_path = alnum || (c && strchr("-._~!$&'()*+,;=:/", c) != NULL);
      snprintf(url, sizeof url, "http://h%cx.example/v", c);
      sv_error_clear(&err);
      /* ':' starts a port, '/' '?' '#' end the host: a byte the host does not take */
      if (!strchr(":/?#", c) && (sv_url_check(url, strlen(url), "url", SV_URL_ANY, &err) == 0) != in_host) host_bad = c;
      snprintf(url, sizeof url, "http://h.example/a%cb", c);
      sv_error_clear(&err);
      if (c != '%' && (sv_url_check(url, strlen(url), "url", SV_URL_ANY, &err) == 0) !=
                          (in_path || c == '@' || c == '?' || c == '#')) path_bad = c;
      sv_error_clear(&err);
      if (c != '%' && (sv_url_check(url, strlen(url), "base_url", SV_URL_BASE, &err) == 0) != in_path) base_bad = c;
    }
    ok(host_bad == 0, "each byte of 1-255 in a host: accepted exactly when a letter, a digit or -._", NULL);
    ok(path_bad == 0, "each byte of 1-255 in a path: accepted exactly when RFC 3986 pchar, '/', '@', '?' or '#'",
       NULL);
    ok(base_bad == 0, "each byte of 1-255 in a base URL's path: pchar or '/', never '@', '?' or '#'", NULL);
  }
  sv_error_clear(&err);
  ok(sv_url_check("http://u:secret@cdn.example/v.mp4", 33, "video_url", SV_URL_ANY, &err) == -1 &&
         strcmp(err.field, "video_url") == 0 && strncmp(err.message, "video_url: expected ", 20) == 0 &&
         strstr(err.message, "secret") == NULL,
     "credentials in a video URL are refused, naming the field", err.message);
  sv_error_clear(&err);
  ok(sv_url_check("http://?x=1", 11, NULL, SV_URL_ANY, &err) == -1 && strcmp(err.field, "url") == 0 &&
         strstr(err.message, "no host") != NULL,
     "a query without a host is refused; the field is \"url\" unless named", err.message);
  sv_error_clear(&err);
  ok(sv_url_check("http://cdn.example/v.mp4?a=b c", 30, "url", SV_URL_ANY, &err) == -1 &&
         strstr(err.message, "a space at byte 29") != NULL,
     "a space in a query is refused, with its place", err.message);
  {
    /* the one redirect rule (sv_redirect): where a Location leads, and which hops are refused */
    static const struct { const char *base, *loc, *want; long status; int hops, pub; } hops[] = {
      { "http://a.example:81/s/v/t1/v.mp4?sig=1", "https://b.example/x.mp4", "https://b.example/x.mp4", 302, 0, 0 },
      { "http://a.example:81/s/v/t1/v.mp4?sig=1", "file:///etc/passwd", "!found the scheme \"file\"", 301, 0, 0 },
      { "https://a.example/s/v.mp4", "//c.example:8443/y", "https://c.example:8443/y", 303, 4, 0 },
      { "http://a.example:81/s/v/t1/v.mp4?sig=1", "/other/w.mp4", "http://a.example:81/other/w.mp4", 307, 0, 1 },
      { "http://a.example:81/s/v/t1/v.mp4?sig=/x/y", "w.mp4?k=2", "http://a.example:81/s/v/t1/w.mp4?k=2", 308, 0, 0 },
      { "http://a.example", "w.mp4", "http://a.example/w.mp4", 302, 0, 0 },
      { "http://a.example/s/v.mp4", "/a b", "!found a space at byte", 302, 0, 0 },
      { "http://a.example/s/v.mp4", "1x:y", "http://a.example/s/1x:y", 302, 0, 0 },
      { "http://a.example/s/v.mp4", "/w.mp4", "!more than 5 redirects", 302, 5, 0 },
      { "http://a.example/s/v.mp4", "http://127.0.0.1/w", "http://127.0.0.1/w", 302, 0, 0 },
      { "http://a.example/s/v.mp4", "http://127.0.0.1/w", "!127.0.0.1 is a loopback address", 302, 0, 1 },
      { "http://a.example/s/v.mp4", "/w.mp4", NULL, 200, 0, 0 },
      { "http://a.example/s/v.mp4", "/w.mp4", NULL, 304, 0, 0 },
      { "http://a.example/s/v.mp4", "", NULL, 302, 0, 0 },
    };
    size_t k;
    for (k = 0; k < sizeof hops / sizeof hops[0]; k++) {
      sv_buf out;
      char name[300];
      const char *want = hops[k].want;
      int rc;
      memset(&out, 0, sizeof out);
      sv_error_clear(&err);
      snprintf(name, sizeof name, "a %ld to %s from %s after %d hops%s: %s", hops[k].status, hops[k].loc,
               hops[k].base, hops[k].hops, hops[k].pub ? ", public" : "", want ? want : "no redirect");
      rc = sv_redirect(hops[k].base, hops[k].status, hops[k].loc, strlen(hops[k].loc), hops[k].hops, hops[k].pub,
                       &out, &err);
      ok(!want ? rc == 0 : *want == '!' ? rc == -1 && strstr(err.message, want + 1) != NULL
                                        : rc == 1 && strcmp(sv_buf_cstr(&out), want) == 0,
         name, rc < 0 ? err.message : sv_buf_cstr(&out));
      sv_buf_free(&out);
    }
  }
}

/* What both transports say of a refused CONNECT (sv_tunnel_refused) and a download past its cap (sv_too_long). */
static void transport_words(void) {
  char msg[512];
  ok(sv_tunnel_refused(407, "p.example:3128", "a.example:443", msg, sizeof msg) == SV_WIRE_FATAL &&
         strstr(msg, "the proxy p.example:3128 did not open a tunnel to a.example:443: answered 407: the proxy asks "
                     "for a user name and password") == msg,
     "a 407 to a CONNECT: final, naming the proxy, the target and what it asks", msg);
  ok(sv_tunnel_refused(403, NULL, NULL, msg, sizeof msg) == SV_WIRE_FATAL &&
         strcmp(msg, "the proxy did not open a tunnel: answered 403") == 0,
     "a 403 with neither named (libcurl's): final", msg);
  ok(sv_tunnel_refused(502, NULL, NULL, msg, sizeof msg) == SV_WIRE_NOT_SENT &&
         strcmp(msg, "the proxy did not open a tunnel: answered 502") == 0,
     "a 502: not sent (tried again)", msg);
  {
    static const struct { const char *v; double start, total; } ranges[] = {
      { "bytes 190000-255535/255536", 190000, 255536 }, { "bytes\t0-0/1", 0, 1 }, { "bytes 5-9/*", -1, -1 },
      { "bytes190000-255535/255536", -1, -1 }, { "bytes +1-2/3", -1, -1 }, { "bytes 9-5/10", -1, -1 },
      { "bytes 0-9/10x", -1, -1 }, { "bytes 0-9/9", -1, -1 }, { "Bytes 0-9/10", -1, -1 },
      { "bytes 1234567890123456-1234567890123457/1234567890123458", -1, -1 },
    };
    size_t k;
    for (k = 0; k < sizeof ranges / sizeof ranges[0]; k++) {
      double a = -1, t = -1;
      char name[160];
      int rc = sv_content_range(ranges[k].v, strlen(ranges[k].v), &a, &t);
      snprintf(name, sizeof name, "Content-Range \"%s\": %s", ranges[k].v, ranges[k].start < 0 ? "not whole" : "read");
      ok((ranges[k].start < 0 ? rc == -1 : rc == 0) && a == ranges[k].start && t == ranges[k].total, name, "");
    }
  }
  sv_too_long(5e6, 1, "https://cdn.example/v/1.mp4?X-Amz-Signature=secret#f", msg, sizeof msg);
  ok(strcmp(msg, "the body is longer than the video can be: past 5000000 bytes (its length) at /v/1.mp4") == 0,
     "a download past its length: its path named, never its query", msg);
  sv_too_long(1024, 0, "http://h:1", msg, sizeof msg);
  ok(strcmp(msg, "the body is longer than the video can be: past 1024 bytes (max_video_bytes) at /") == 0,
     "past max_video_bytes, a URL without a path", msg);
  sv_too_long(65536, 0, NULL, msg, sizeof msg);
  ok(strcmp(msg, "the answer is larger than 65536 bytes") == 0, "another answer past its max_body", msg);
}

/* A proxy's URL: the credentials apart and decoded; every refusal without them. */
static void proxy_urls(void) {
  static const struct { const char *url, *want_url, *user, *password; } good[] = {
    { "http://127.0.0.1:3128", "http://127.0.0.1:3128", NULL, NULL },
    { "HTTP://proxy.example:8080/", "HTTP://proxy.example:8080", NULL, NULL },
    { "http://alice:s3cret@proxy.example:8080", "http://proxy.example:8080", "alice", "s3cret" },
    { "http://a%40b:p%3Aq%25r%2F@[::1]:3128", "http://[::1]:3128", "a@b", "p:q%r/" },
    { "http://alice:pa:ss@h:1", "http://h:1", "alice", "pa:ss" },
    { "http://token@h:1", "http://h:1", "token", "" },
  };
  static const struct { const char *url, *found; } bad[] = {
    { "http://alice:s3cret@h", "found no port in \"http://alice:***@h\"" },
    { "https://alice:s3cret@h:1", "found an https URL" },
    { "http://alice:s3cret@h:1/p", "found a path in \"http://alice:***@h:1/p\"" },
    { "http://s3cret@h", "found no port in \"http://***@h\"" },
    { "http://alice:s3 cret@h:1", "found credentials (before the last '@') with a byte to percent-encode" },
    { "http://alice:s3cret@x@h:1", "found credentials" },
    { "http://alice:s3cret%0A@h:1", "found credentials" },
    { "http://alice:s3cret%4@h:1", "found credentials" },
    { "http://alice:s3cret@h:99999", "found port 99999 at byte 23" },
    { "http://alice:s3cret@h:1?q", "found '?' at byte 24" },
    { "socks5://alice:s3cret@h:1", "found the scheme \"socks5\"" },
    { "alice:s3cret@h:1", "found no scheme" },
    { "", "found nothing" },
  };
  size_t k;
  char name[300];
  sv_error err;
  for (k = 0; k < sizeof good / sizeof good[0]; k++) {
    sv_proxy p;
    int rc = sv_proxy_parse(good[k].url, strlen(good[k].url), &p, &err);
    snprintf(name, sizeof name, "the proxy %s is %s, user %s", good[k].url, good[k].want_url,
             good[k].user ? good[k].user : "none");
    ok(rc == 0 && strcmp(sv_buf_cstr(&p.url), good[k].want_url) == 0 && p.has_user == (good[k].user != NULL) &&
           (!good[k].user || (strcmp(sv_buf_cstr(&p.user), good[k].user) == 0 &&
                              strcmp(sv_buf_cstr(&p.password), good[k].password) == 0)),
       name, rc ? err.message : sv_buf_cstr(&p.url));
    if (rc == 0) sv_proxy_free(&p);
  }
  for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    sv_error_clear(&err);
    snprintf(name, sizeof name, "the proxy %s is refused: %s, naming proxy, never the password", bad[k].url,
             bad[k].found);
    ok(sv_proxy_parse(bad[k].url, strlen(bad[k].url), NULL, &err) == -1 && strcmp(err.field, "proxy") == 0 &&
           strncmp(err.message, "proxy: expected http://[user:password@]host:port, ", 50) == 0 &&
           strstr(err.message, bad[k].found) != NULL && strstr(err.message, "s3") == NULL,
       name, err.message);
  }
}

/* The three rate-limit families, as servers send them; what cannot be read is left out, never an error. */
static void rate_limits(void) {
  static const struct { const char *lines; int family; double limit, remaining, reset, window; const char *name; } cases[] = {
    { "RateLimit: \"default\";r=0;t=5\nRateLimit-Policy: \"default\";q=100;w=60\n", SV_LIMITS_IETF, 100, 0, 5, 60,
      "draft 08 on: items with r, t and the policy's q, w" },
    { "ratelimit: \"a\";r=7;t=1, \"b\";r=0;t=30\n", SV_LIMITS_IETF, -1, 0, 30, -1, "two policies: the one with none left" },
    { "RateLimit: limit=100, remaining=0, reset=5\n", SV_LIMITS_IETF, 100, 0, 5, -1, "draft 07's dictionary" },
    { "RateLimit-Limit: 10, 10;w=1\r\nRateLimit-Remaining: 3\r\nRateLimit-Reset: 2\r\nRateLimit-Policy: 10;w=1\n",
      SV_LIMITS_IETF, 10, 3, 2, 1, "drafts 00-06: a field each" },
    { "x-ratelimit-limit: 60\nx-ratelimit-remaining: 0\nx-ratelimit-reset: 1700000005\n", SV_LIMITS_X, 60, 0, 5, -1,
      "x-ratelimit with a reset in seconds since 1970" },
    { "X-RateLimit-Limit-Requests: 500\nX-RateLimit-Remaining-Requests: 1\nX-RateLimit-Reset-Requests: 1m0.5s\n",
      SV_LIMITS_X, 500, 1, 60.5, -1, "OpenAI's -requests, the reset a duration" },
    { "x-ratelimit-remaining: 2\nx-ratelimit-reset: 20ms\n", SV_LIMITS_X, -1, 2, 0.02, -1, "a reset in milliseconds" },
    { "x-ratelimit-remaining: 0\nRateLimit: \"d\";r=4;t=9\n", SV_LIMITS_IETF, -1, 4, 9, -1, "the IETF field first" },
    { "RateLimit: \"d\";r=x;t=5\nx-ratelimit-remaining: -1\nx-ratelimit-reset: soon\n", SV_LIMITS_NONE, -1, -1, -1, -1,
      "malformed values are left out" },
    { "RateLimit: \"a,b\";r=0;t=3\n", SV_LIMITS_IETF, -1, 0, 3, -1, "a comma inside a policy's name" },
    { "RateLimit\nRateLimit:\n:\n\n", SV_LIMITS_NONE, -1, -1, -1, -1, "empty and nameless lines" },
    { "RateLimit: abc;r=0;t=5\n", SV_LIMITS_IETF, -1, 0, 5, -1, "an item named by a token of 3 letters" },
    { "RateLimit: abcdefg;r=1;t=5\n", SV_LIMITS_IETF, -1, 1, 5, -1, "an item named by a token of 7 letters" },
  };
  size_t i;
  sv_limits l;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int got = sv_read_limits(cases[i].lines, strlen(cases[i].lines), 1700000000.0, &l);
    ok(got == (cases[i].family != SV_LIMITS_NONE) && l.family == cases[i].family && l.limit == cases[i].limit &&
       l.remaining == cases[i].remaining && fabs(l.reset - cases[i].reset) < 1e-9 && l.window == cases[i].window,
       cases[i].name, cases[i].lines);
  }
  ok(sv_read_limits(NULL, 0, 0, &l) == 0 && l.remaining == -1, "no header lines", "");
  ok(sv_read_limits("x-ratelimit-reset: 1700000005\n", 30, NAN, &l) == 0, "a time with no clock is unread", "");
}

static void retry_after(void) {
  static const struct { const char *v; double lo, hi; const char *name; } cases[] = {
    { "Fri, 31 Dec 9999 23:59:59 GMT", 0, 86400.0 * 365, "a date in year 9999 is clamped to a year" },
    { "999999999999999999999999999999999999999999999999999", 86400.0 * 365, 86400.0 * 365, "a huge delay is clamped to a year" },
    { "-5", -1, -1, "a negative delay is unreadable" },
    { "1e400", -1, -1, "1e400 is unreadable" },
    { "nan", -1, -1, "nan is unreadable" },
    { "inf", -1, -1, "inf is unreadable" },
    { "5.5", -1, -1, "a fractional delay is unreadable" },
    { "0x10", -1, -1, "a hex delay is unreadable" },
    { " 7 ", 7, 7, "a delay with spaces around is read" },
    { "Thu, 01 Jan 1970 00:00:00 GMT", 0, 0, "a date in the past means now" },
    { "Sun, 06 Nov 1994 08:49:37 GMT", 0, 0, "IMF-fixdate in the past means now" },
    { "Wed, 15 Nov 2023 22:13:30 GMT", 10, 10, "an IMF-fixdate 10 s ahead" },
    { "Wednesday, 15-Nov-23 22:13:30 GMT", 10, 10, "an RFC 850 date 10 s ahead" },
    { "Wed Nov 15 22:13:30 2023", 10, 10, "an asctime date 10 s ahead" },
    { "Wed, 15 Nov 2023 22:13:30 GMT  ", 10, 10, "a date with trailing spaces" },
    { "Wed, 15 Nov 2023 22:13:30", -1, -1, "a date without GMT is unreadable" },
    { "Wed, 15 Xyz 2023 22:13:30 GMT", -1, -1, "an unknown month is unreadable" },
    { "Wed, 15 ovD 2023 22:13:30 GMT", -1, -1, "a month name across two months is unreadable" },
    { "Wed, 32 Nov 2023 22:13:30 GMT", -1, -1, "day 32 is unreadable" },
    { "Wed, 15 Nov 2023 24:13:30 GMT", -1, -1, "hour 24 is unreadable" },
    { "Wed, 15 Nov 2023 22:13:30 GMT x", -1, -1, "a date with more after it is unreadable" },
    { "tomorrow", -1, -1, "a word is unreadable" },
  };
  size_t i;
  char longv[3000];
  double d;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char detail[100];
    d = sv_parse_retry_after(cases[i].v, strstr(cases[i].v, "2023") || strstr(cases[i].v, "-23 ") ? 1700086400.0 : 1.7e9);
    snprintf(detail, sizeof detail, "got %g", d);
    ok(isfinite(d) && d >= cases[i].lo && d <= cases[i].hi, cases[i].name, detail);
  }
  memset(longv, '9', sizeof longv - 1);
  longv[sizeof longv - 1] = '\0';
  d = sv_parse_retry_after(longv, 1.7e9);
  ok(isfinite(d) && d <= 86400.0 * 365, "a 3000-digit delay is finite and clamped", NULL);
  for (i = 0; i + 30 < sizeof longv; i += 30) memcpy(longv + i, "Sun, 06 Nov 1994 08:49:37 GMT", 30);
  longv[i] = '\0';
  d = sv_parse_retry_after(longv, 1.7e9);
  ok(isfinite(d) && d <= 86400.0 * 365, "an overlong date is finite and clamped", NULL);
  d = sv_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", NAN);
  ok(isfinite(d) && d >= 0 && d <= 86400.0 * 365, "a NaN clock gives a finite delay", NULL);
  d = sv_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", -HUGE_VAL);
  ok(isfinite(d) && d >= 0 && d <= 86400.0 * 365, "a clock at minus infinity gives a finite delay", NULL);
}

/* What make fuzz found in the code before these fixes (inputs kept in
   csrc/fuzz/corpus/build/found_* and corpus/answer/found_*), as the params decoded. */
static void found_by_fuzzing(void) {
  sv_buf body;
  sv_error err;
  char detail[900];
  int rc;
  {
    sv_field f[] = { F("model", S("starvideos_o3")), F("prompt", S("720p")), F("duration", N(3)) };
    rc = build(f, 3, "{ }", 3, &body, &err);
    snprintf(detail, sizeof detail, "rc=%d body=%s", rc, sv_buf_cstr(&body));
    ok(rc == 0 && is_one_object(body.data, body.len), "fuzz: extra \"{ }\" on starvideos_o3 gives a valid body", detail);
    sv_buf_free(&body);
  }
  {
    sv_field f[] = { F("model", S("videos")), F("prompt", S("videos")), F("duration", N(15)) };
    rc = build(f, 3, "{\"extra\":{}}", 12, &body, &err);
    snprintf(detail, sizeof detail, "rc=%d field=%s body=%s", rc, err.field, sv_buf_cstr(&body));
    ok(rc == -1 && strcmp(err.field, "extra.extra") == 0, "fuzz: extra text cannot hold a key named extra", detail);
    sv_buf_free(&body);
  }
  {
    sv_value nil;
    sv_field f[6];
    memset(&nil, 0, sizeof nil);
    nil.type = SV_V_NIL;
    f[0] = F("model", S("videos_fast"));
    f[1] = F("prompt", S("https://"));
    f[2] = F("duration", N(4294967301.0));
    f[3] = F("duration", N(4));
    f[4] = F("model", nil);
    f[5] = F("model", nil);
    rc = build(f, 6, NULL, 0, &body, &err);
    snprintf(detail, sizeof detail, "rc=%d field=%s body=%s", rc, err.field, sv_buf_cstr(&body));
    ok(rc == -1 && strcmp(err.field, "duration") == 0 && body.len == 0,
       "fuzz: a duration of 4294967301 then 4 is refused, never cast", detail);
    sv_buf_free(&body);
  }
  {
    sv_error e;
    ok(read_create("", &e) == -1 && e.maybe_created, "fuzz: an empty 200 to a create may have created", e.message);
  }
}

/* The verdict on a whole exchange, whichever transport carried it. */
static sv_exchange exch(sv_op op, long status, const char *body, sv_wire wire, const char *msg) {
  sv_exchange x;
  memset(&x, 0, sizeof x);
  x.op = op;
  x.status = status;
  x.body = body;
  x.body_len = body ? strlen(body) : 0;
  x.wire = wire;
  x.message = msg;
  x.total = -1;
  return x;
}

static void verdicts(void) {
  sv_error e;
  sv_wire wire;
  sv_exchange x = exch(SV_OP_CREATE, 200, "{\"id\":\"task_1\",\"status\":\"queued\"}", SV_WIRE_BROKEN,
                       "transfer closed with 167 bytes remaining");
  ok(sv_verdict(&x, 0, NULL, &e, &wire) == -1 && e.kind == SV_E_NETWORK && e.maybe_created &&
         strcmp(e.id, "task_1") == 0 && wire == SV_WIRE_BROKEN,
     "verdict: a create answer cut short keeps its id and may have created", e.message);
  x = exch(SV_OP_CREATE, 200, "{\"id\":\"task_2\",\"status\":\"que", SV_WIRE_GARBLED, "over the cap");
  ok(sv_verdict(&x, 0, NULL, &e, &wire) == -1 && e.kind == SV_E_PROTOCOL && e.maybe_created &&
         strcmp(e.id, "task_2") == 0,
     "verdict: an answer over the cap keeps the id its start names", e.message);
  x = exch(SV_OP_CREATE, 0, NULL, SV_WIRE_NOT_SENT, "Couldn't connect to server");
  ok(sv_verdict(&x, 0, NULL, &e, &wire) == -1 && e.kind == SV_E_NETWORK && !e.maybe_created && !e.id[0],
     "verdict: a create never sent created nothing", e.message);
  x = exch(SV_OP_QUERY, 0, NULL, SV_WIRE_TIMEOUT, "Operation timed out");
  ok(sv_verdict(&x, 0, NULL, &e, &wire) == -1 && e.kind == SV_E_TIMEOUT && !e.maybe_created,
     "verdict: a query that timed out is kind timeout", e.message);
  x = exch(SV_OP_CREATE, 503, "{\"error\":\"busy\"}", SV_WIRE_NONE, NULL);
  x.retry_after = "5";
  ok(sv_verdict(&x, 0, NULL, &e, &wire) == -1 && e.kind == SV_E_SERVER && !e.maybe_created && e.retry_after == 5,
     "verdict: a 503 with Retry-After created nothing", e.message);
  x = exch(SV_OP_CREATE, 500, "{\"error\":\"bad key sk-secret-1234\"}", SV_WIRE_NONE, NULL);
  ok(sv_verdict(&x, 0, "sk-secret-1234", &e, &wire) == -1 && e.maybe_created && !strstr(e.message, "sk-secret-1234") &&
         strstr(e.message, "***"),
     "verdict: a 500 to a create may have created, and the key is scrubbed from the message", e.message);
  x = exch(SV_OP_DOWNLOAD, 200, "", SV_WIRE_NONE, NULL);
  x.bytes = 100;
  x.total = 200;
  ok(sv_verdict(&x, 0, NULL, &e, &wire) == -1 && wire == SV_WIRE_BROKEN && e.kind == SV_E_NETWORK,
     "verdict: a download that ended short of its size counts as broken (resumable)", e.message);
  x.bytes = 200;
  ok(sv_verdict(&x, 0, NULL, &e, &wire) == 0, "verdict: a whole download succeeds", e.message);
  x = exch(SV_OP_DOWNLOAD, 0, NULL, SV_WIRE_IO, "cannot write the file: No space left on device");
  ok(sv_verdict(&x, 0, NULL, &e, &wire) == -1 && e.kind == SV_E_IO && strcmp(e.field, "path") == 0,
     "verdict: a file that cannot be written is kind io", e.message);
  x = exch(SV_OP_EXCHANGE, 206, "\x89PNG", SV_WIRE_NONE, NULL);
  ok(sv_verdict(&x, 0, NULL, &e, &wire) == 0, "verdict: an exchange's 206 is its bytes, not an answer to read",
     e.message);
  x = exch(SV_OP_EXCHANGE, 404, "<html>gone</html>", SV_WIRE_NONE, NULL);
  x.what = "media";
  ok(sv_verdict(&x, 0, NULL, &e, &wire) == -1 && e.kind == SV_E_NOT_FOUND && e.status == 404 && !e.maybe_created &&
         strncmp(e.message, "media: HTTP 404", 15) == 0,
     "verdict: a media URL's 404 is not_found, named by the exchange's word", e.message);
  x = exch(SV_OP_EXCHANGE, 403, "<Error><Code>AccessDenied</Code><Message>no</Message></Error>", SV_WIRE_NONE, NULL);
  ok(sv_verdict(&x, 0, NULL, &e, &wire) == -1 && e.kind == SV_E_AUTH &&
         strcmp(e.message, "exchange: HTTP 403: AccessDenied: no") == 0,
     "verdict: an exchange's XML error is read for its Code and Message (no word: the op's name)", e.message);
  x = exch(SV_OP_EXCHANGE, 500, "{\"error\":\"down\"}", SV_WIRE_NONE, NULL);
  ok(sv_verdict(&x, 0, NULL, &e, &wire) == -1 && strcmp(e.message, "exchange: HTTP 500: down") == 0,
     "verdict: an exchange's JSON error gives the server's words", e.message);
  x = exch(SV_OP_EXCHANGE, 200, "", SV_WIRE_GARBLED, "the server did not send the bytes from 190000 that were asked for");
  {
    sv_retry_policy pol = { 3, 0.5, 30, 60, 1 };
    double d = 0;
    ok(sv_verdict(&x, 0, NULL, &e, &wire) == -1 && e.kind == SV_E_PROTOCOL &&
           !sv_retry_decide(SV_OP_EXCHANGE, wire, &e, 1, &pol, 0.5, &d),
       "retry: a ranged exchange's bytes from elsewhere than asked are not asked again", e.message);
    pol.garbled_final = 0;
    ok(sv_retry_decide(SV_OP_EXCHANGE, wire, &e, 1, &pol, 0.5, &d),
       "retry: another exchange's garbled answer is asked again", e.message);
  }
}

/* A sink that counts the values it is handed at the top level and keeps the "id" string's text. */
typedef struct seen_task { int depth, tops; int id_next; char id[64]; } seen_task;
static void st_open(void *ctx, int array) { seen_task *s = ctx; (void)array; if (s->depth++ == 0) s->tops++; }
static void st_close(void *ctx) { ((seen_task *)ctx)->depth--; }
static void st_key(void *ctx, const char *val, size_t len, int escaped) {
  seen_task *s = ctx;
  (void)escaped;
  s->id_next = s->depth == 1 && len == 4 && memcmp(val, "\"id\"", 4) == 0;
}
static void st_string(void *ctx, const char *val, size_t len, int escaped) {
  seen_task *s = ctx;
  (void)escaped;
  if (s->id_next && len >= 2 && len - 2 < sizeof s->id) { memcpy(s->id, val + 1, len - 2); s->id[len - 2] = 0; }
  s->id_next = 0;
}
static void st_number(void *ctx, double v) { (void)v; ((seen_task *)ctx)->id_next = 0; }
static void st_literal(void *ctx, char type) { (void)type; ((seen_task *)ctx)->id_next = 0; }

/* A create answered with an error status whose body is a task: the server made it, and the answer is that task
   (issue 55, item 4: a 429 with {"id": .., "status": "queued"} was created again, the first in no record). */
static void error_answers_naming_a_task(void) {
  static const struct { long status; const char *retry_after, *body; int task; const char *what; } cases[] = {
    { 429, NULL, "{\"id\":\"task_429\",\"status\":\"queued\"}", 1, "a 429 whose body is a task is that task" },
    { 503, "5", "{\"id\":\"task_503\",\"status\":\"queued\",\"error\":null}", 1,
      "a 503 with Retry-After whose body is a task is that task (not resent)" },
    { 500, NULL, "{\"status\":\"processing\",\"id\":\"task_500\",\"model\":\"m\"}", 1,
      "a 500 whose body is a task is that task (not maybe_created)" },
    { 409, NULL, "{\"id\":\"task_409\",\"status\":\"completed\"}", 1, "a 409 whose body is a task is that task" },
    { 429, NULL, "{\"id\":\"req_1\",\"status\":\"error\",\"error\":\"slow down\"}", 0,
      "a 429 whose status is not the lifecycle's is not a task (an error's own id)" },
    { 429, NULL, "{\"id\":\"req_1\",\"status\":429}", 0, "a 429 whose status is a number is not a task" },
    { 429, NULL, "{\"error\":\"slow\",\"status\":\"queued\"}", 0, "a 429 without an id is not a task" },
    { 429, NULL, "{\"id\":\"t1\",\"status\":\"queued\",\"id\":\"t2\"}", 0, "a 429 with an id twice is not a task" },
    { 429, NULL, "{\"id\":\"t\\n1\",\"status\":\"queued\"}", 0, "a 429 whose id cannot be polled is not a task" },
    { 429, NULL, "{\"id\":\"t1\",\"status\":\"queued\"", 0, "a 429 with a cut task is not a task" },
    { 429, NULL, "<html>{\"id\":\"t1\",\"status\":\"queued\"}</html>", 0, "a 429 of HTML is not a task" },
  };
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    seen_task st;
    sv_json_sink sink = { st_open, st_close, st_key, st_string, st_number, st_literal, NULL };
    sv_exchange x = exch(SV_OP_CREATE, cases[i].status, cases[i].body, SV_WIRE_NONE, NULL);
    sv_error e;
    sv_wire wire;
    char name[200], detail[800];
    int rc;
    memset(&st, 0, sizeof st);
    sink.ctx = &st;
    x.sink = &sink;
    x.retry_after = cases[i].retry_after;
    rc = sv_verdict(&x, 0, NULL, &e, &wire);
    snprintf(name, sizeof name, "verdict: %s", cases[i].what);
    snprintf(detail, sizeof detail, "rc=%d tops=%d id=%s maybe=%d message=%s", rc, st.tops, st.id, e.maybe_created,
             e.message);
    if (cases[i].task) /* (the id handed to the sink: the one the body names, "task_<its status>") */
      ok(rc == 0 && wire == SV_WIRE_NONE && st.tops == 1 && st.depth == 0 && strncmp(st.id, "task_", 5) == 0 &&
             atol(st.id + 5) == cases[i].status,
         name, detail);
    else
      ok(rc == -1 && e.status == cases[i].status && (e.kind == SV_E_RATE_LIMITED) && !e.maybe_created, name, detail);
  }
  { /* a query's error answer is an error, whatever its body: it is retried, nothing is paid */
    sv_exchange x = exch(SV_OP_QUERY, 429, "{\"id\":\"task_q\",\"status\":\"queued\"}", SV_WIRE_NONE, NULL);
    sv_error e;
    sv_wire wire;
    ok(sv_verdict(&x, 0, NULL, &e, &wire) == -1 && e.kind == SV_E_RATE_LIMITED && e.transient,
       "verdict: a query's 429 is rate_limited whatever its body", e.message);
  }
  { /* a 429 cut short after its status line may be a task's answer: it may have created, and is not resent */
    sv_retry_policy pol = { 3, 0.5, 30, 60, 0 };
    sv_exchange x = exch(SV_OP_CREATE, 429, "{\"id\":\"task_cut\",\"status\":\"que", SV_WIRE_BROKEN,
                         "transfer closed with 20 bytes remaining");
    sv_error e;
    sv_wire wire;
    double d = 0;
    ok(sv_verdict(&x, 0, NULL, &e, &wire) == -1 && e.maybe_created && strcmp(e.id, "task_cut") == 0 &&
           !sv_retry_decide(SV_OP_CREATE, wire, &e, 1, &pol, 0.5, &d),
       "retry: a create's 429 cut short (its task's id read) may have created and is not resent", e.message);
    x = exch(SV_OP_CREATE, 429, "{\"error\":\"slow down\"}", SV_WIRE_NONE, NULL);
    ok(sv_verdict(&x, 0, NULL, &e, &wire) == -1 && !e.maybe_created &&
           sv_retry_decide(SV_OP_CREATE, wire, &e, 1, &pol, 0.5, &d),
       "retry: a create's whole 429 without a task is resent", e.message);
  }
}

/* One record through an inline writer (each put written before it returns): 0, or -1 and why. */
static int append_inline(const char *path, const char *rec, int sync, sv_buf *why) {
  sv_jwriter *w = sv_jwriter_new(path, 1);
  sv_jfail *fails;
  size_t n = 1;
  if (w && sv_jwriter_put(w, rec, strlen(rec), sync, -1) && sv_jwriter_poll(w, &fails, &n) && n) {
    sv_buf_adds(why, fails[0].why);
    free(fails);
  }
  sv_jwriter_free(w);
  return n ? -1 : 0;
}

/* Journal appends: whole records, a torn last line ended first. */
static void file_appends(void) {
  char path[] = "/tmp/starvideos-test-XXXXXX";
  int fd = mkstemp(path);
  sv_buf why, got;
  FILE *f;
  char line[256];
  memset(&why, 0, sizeof why);
  memset(&got, 0, sizeof got);
  if (fd >= 0) close(fd);
  ok(fd >= 0 && append_inline(path, "{\"a\":1}", 1, &why) == 0, "append: a record", sv_buf_cstr(&why));
  f = fopen(path, "a");
  if (f) { fputs("{\"torn", f); fclose(f); }
  ok(append_inline(path, "{\"b\":2}\n", 0, &why) == 0, "append: after a torn line", sv_buf_cstr(&why));
  f = fopen(path, "r");
  while (f && fgets(line, sizeof line, f)) sv_buf_adds(&got, line);
  if (f) fclose(f);
  ok(strcmp(sv_buf_cstr(&got), "{\"a\":1}\n{\"torn\n{\"b\":2}\n") == 0,
     "append: the torn line is ended, each record stands on its own line", sv_buf_cstr(&got));
  unlink(path);
  why.len = 0;
  ok(append_inline("/nonexistent-dir/j.jsonl", "x", 0, &why) == -1 && strstr(sv_buf_cstr(&why), "cannot open"),
     "append: an unwritable journal says why", sv_buf_cstr(&why));
  why.len = 0;
  ok(append_inline("/tmp", "x", 0, &why) == -1 && strstr(sv_buf_cstr(&why), "/tmp"),
     "append: a directory is not a journal", sv_buf_cstr(&why));
  sv_buf_free(&why);
  sv_buf_free(&got);
}

/* Leases (sv_file_try_lock) and appends under one hold (sv_file_lock + _held). */
static void file_leases(void) {
  char dir[] = "/tmp/starvideos-test-XXXXXX", lease[128], journal[128], line[64];
  int a, b, held;
  sv_buf why;
  FILE *f;
  memset(&why, 0, sizeof why);
  if (!mkdtemp(dir)) { ok(0, "lease: a folder", strerror(errno)); return; }
  snprintf(lease, sizeof lease, "%s/j.owners/x", dir);
  snprintf(journal, sizeof journal, "%s/j.jsonl", dir);
  ok(sv_file_try_lock(lease, 0, &why) == SV_LOCK_MISSING, "lease: none there yet", sv_buf_cstr(&why));
  a = sv_file_try_lock(lease, 1, &why);
  ok(a >= 0, "lease: made with its folder", sv_buf_cstr(&why));
  f = fopen(lease, "r");
  ok(f && fgets(line, sizeof line, f) && atol(line) == (long)getpid(), "lease: holds its process id", line);
  if (f) fclose(f);
  ok(sv_file_try_lock(lease, 0, &why) == SV_LOCK_BUSY, "lease: busy for another descriptor", sv_buf_cstr(&why));
  if (a >= 0) close(a);
  b = sv_file_try_lock(lease, 0, &why);
  ok(b >= 0, "lease: free once its descriptor is closed", sv_buf_cstr(&why));
  if (b >= 0) close(b);
  held = sv_file_lock(journal, 1, &why);
  ok(held >= 0 && sv_file_append_held(held, journal, "{\"c\":3}", 7, 1, &why) == 0,
     "lock: made, then appended to under the hold", sv_buf_cstr(&why));
  if (held >= 0) close(held);
  f = fopen(journal, "r");
  ok(f && fgets(line, sizeof line, f) && strcmp(line, "{\"c\":3}\n") == 0, "lock: the record, whole", line);
  if (f) fclose(f);
  unlink(lease);
  unlink(journal);
  snprintf(lease, sizeof lease, "%s/j.owners", dir);
  rmdir(lease);
  rmdir(dir);
  sv_buf_free(&why);
}

/* A helper thread's shape (sv_work, work.c): run on a thread of its own; poll never waits and says when run
   returned; the owner's close while run works calls stop once and returns at once, the thread then frees the
   state (free once); a work never started is freed by its close. */
typedef struct test_job {
  int fd;     /* run reads it until its end: the test's pipe */
  int result; /* run's */
} test_job;

static pthread_mutex_t test_work_mu = PTHREAD_MUTEX_INITIALIZER;
static int test_stops, test_frees;

static void test_work_run(sv_work *w, void *data) {
  test_job *j = data;
  char c;
  (void)w;
  while (j->fd >= 0 && read(j->fd, &c, 1) == 1) continue;
  j->result = 42;
}

static void test_work_stop(void *data) {
  (void)data;
  pthread_mutex_lock(&test_work_mu);
  test_stops++;
  pthread_mutex_unlock(&test_work_mu);
}

static void test_work_free(void *data) {
  test_job *j = data;
  if (j->fd >= 0) close(j->fd);
  pthread_mutex_lock(&test_work_mu);
  test_frees++;
  pthread_mutex_unlock(&test_work_mu);
}

static const sv_work_kind test_kind = { test_work_run, test_work_stop, test_work_free };

static int test_work_count(const int *n) {
  int v;
  pthread_mutex_lock(&test_work_mu);
  v = *n;
  pthread_mutex_unlock(&test_work_mu);
  return v;
}

/* Waits for the thread to free its work (each step 1 ms; at most 10 s, for a machine that does not run it). */
static int test_work_freed(int frees) {
  struct timespec ms = { 0, 1000000 };
  int i;
  for (i = 0; i < 10000 && test_work_count(&test_frees) < frees; i++) nanosleep(&ms, NULL);
  return test_work_count(&test_frees) == frees;
}

static void helper_work(void) {
  int fd[2], threaded;
  sv_work *w = sv_work_new(&test_kind, sizeof(test_job));
  test_job *j;
  struct timespec ms = { 0, 1000000 };
  int i;
  ok(w != NULL, "work: made", NULL);
  if (!w || pipe(fd) != 0) return;
  j = sv_work_data(w);
  j->fd = fd[0];
  threaded = sv_work_start(w, 1);
  ok(threaded == 1, "work: run on a thread of its own", NULL);
  ok(sv_work_poll(w) == 1, "work: poll says it works while run waits for its pipe", NULL);
  sv_work_close(w); /* (were close to wait for run, this would never return: run waits for the pipe) */
  ok(test_work_count(&test_stops) == 1 && test_work_count(&test_frees) == 0,
     "work: closed while it runs: stop called, close returned, the state still the thread's", NULL);
  close(fd[1]); /* run's read ends: the thread ends and frees the work */
  ok(test_work_freed(1), "work: the thread frees the work it was let go of, once", NULL);
  ok(test_work_count(&test_stops) == 1, "work: stop called once", NULL);

  w = sv_work_new(&test_kind, sizeof(test_job));
  if (!w) return;
  j = sv_work_data(w);
  j->fd = -1;
  sv_work_start(w, 1);
  for (i = 0; i < 10000 && sv_work_poll(w); i++) nanosleep(&ms, NULL);
  ok(sv_work_poll(w) == 0 && j->result == 42, "work: poll says done once run returned; its result is the owner's",
     NULL);
  sv_work_close(w);
  ok(test_work_freed(2) && test_work_count(&test_stops) == 1, "work: closed once done: freed, no stop", NULL);

  w = sv_work_new(&test_kind, sizeof(test_job));
  if (!w) return;
  ((test_job *)sv_work_data(w))->fd = -1;
  sv_work_close(w);
  ok(test_work_count(&test_frees) == 3 && test_work_count(&test_stops) == 1,
     "work: never started: freed by its close, no stop", NULL);
}

/* The journal's writer thread (sv_jwriter): records in order, each whole; a
   conditional record written only when nobody else wrote after what its
   caller read; a failure told by ticket; what is queued written at the end. */
static long file_bytes(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void journal_writer(void) {
  char dir[] = "/tmp/starvideos-test-XXXXXX", journal[128], line[64], missing[160];
  sv_jwriter *w;
  sv_jfail *fails;
  size_t nf;
  long long t = 0, cond, stale;
  long before;
  int i, in_order = 1;
  sv_buf why;
  FILE *f;
  memset(&why, 0, sizeof why);
  if (!mkdtemp(dir)) { ok(0, "writer: a folder", strerror(errno)); return; }
  snprintf(journal, sizeof journal, "%s/w.jsonl", dir);
  w = sv_jwriter_new(journal, 0);
  ok(w != NULL, "writer: made", NULL);
  if (!w) return;
  for (i = 0; i < 200; i++) {
    snprintf(line, sizeof line, "{\"n\":%d}\n", i);
    t = sv_jwriter_put(w, line, strlen(line), i % 50 == 0, -1);
  }
  ok(sv_jwriter_wait(w, t, 5) == 1, "writer: the last of 200 records waited for, within 5 s", NULL);
  ok(sv_jwriter_wait(w, t + 1, 0.05) == 0, "writer: a ticket never given is waited for 0.05 s, not done", NULL);
  ok(sv_jwriter_wait(w, t, HUGE_VAL) == 1 && sv_jwriter_wait(w, t, NAN) == 1 && sv_jwriter_wait(w, t, 1e19) == 1,
     "writer: a done ticket waited for without a bound (infinite, NaN, 1e19 s)", NULL);
  ok(sv_jwriter_poll(w, &fails, &nf) == t && nf == 0, "writer: 200 records written, none failed", NULL);
  free(fails);
  f = fopen(journal, "r");
  for (i = 0; f && fgets(line, sizeof line, f); i++) {
    char want[64];
    snprintf(want, sizeof want, "{\"n\":%d}\n", i);
    if (strcmp(line, want) != 0) in_order = 0;
  }
  if (f) fclose(f);
  ok(in_order && i == 200, "writer: each record whole, in the order given", line);
  /* a conditional record after this writer's own records: written */
  before = file_bytes(journal);
  sv_jwriter_put(w, "{\"own\":1}\n", 10, 0, -1);
  cond = sv_jwriter_put(w, "{\"c\":1}\n", 8, 1, (double)before);
  sv_jwriter_wait(w, cond, -1);
  ok(sv_jwriter_poll(w, &fails, &nf) == cond && nf == 0, "writer: a conditional record after its own is written",
     nf ? fails[0].why : NULL);
  free(fails);
  /* another process wrote after what the caller read: refused as a conflict, nothing of it written */
  before = file_bytes(journal);
  ok(append_inline(journal, "{\"other\":1}\n", 0, &why) == 0, "writer: another writer appends", sv_buf_cstr(&why));
  stale = sv_jwriter_put(w, "{\"c\":2}\n", 8, 1, (double)before);
  sv_jwriter_wait(w, stale, -1);
  ok(sv_jwriter_poll(w, &fails, &nf) == stale && nf == 1 && fails[0].ticket == stale && fails[0].conflict,
     "writer: a conditional record read before another's write is refused", NULL);
  free(fails);
  ok(file_bytes(journal) == before + 12, "writer: nothing of the refused record is in the file", NULL);
  /* closed with records queued: they are written first */
  before = file_bytes(journal); /* (before the puts: the thread may write some of them before the free) */
  for (i = 0; i < 50; i++) sv_jwriter_put(w, "{\"late\":1}\n", 11, 0, -1);
  sv_jwriter_free(w);
  ok(file_bytes(journal) == before + 50 * 11, "writer: closed, what was queued is written", NULL);
  /* a journal that cannot be opened: the record's ticket fails with why */
  snprintf(missing, sizeof missing, "%s/no/such/folder/w.jsonl", dir);
  w = sv_jwriter_new(missing, 0);
  t = w ? sv_jwriter_put(w, "{}\n", 3, 1, -1) : 0;
  if (w) sv_jwriter_wait(w, t, -1);
  ok(w && sv_jwriter_poll(w, &fails, &nf) == t && nf == 1 && !fails[0].conflict &&
       strstr(fails[0].why, "cannot open the journal") != NULL,
     "writer: a record it cannot write fails with the reason", nf ? fails[0].why : NULL);
  if (w) free(fails);
  sv_jwriter_free(w);
  unlink(journal);
  rmdir(dir);
  sv_buf_free(&why);
}

/* ------------------------------------------------------------------ media */

typedef struct bytes { unsigned char b[4096]; size_t n; } bytes;

static void put(bytes *o, const void *p, size_t n) {
  memcpy(o->b + o->n, p, n);
  o->n += n;
}
static void be32(bytes *o, unsigned long v) {
  unsigned char c[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v };
  put(o, c, 4);
}
static void be16(bytes *o, unsigned v) {
  unsigned char c[2] = { (unsigned char)(v >> 8), (unsigned char)v };
  put(o, c, 2);
}
static void le32(bytes *o, unsigned long v) {
  unsigned char c[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24) };
  put(o, c, 4);
}
static void le16(bytes *o, unsigned v) {
  unsigned char c[2] = { (unsigned char)v, (unsigned char)(v >> 8) };
  put(o, c, 2);
}
static void zeros(bytes *o, size_t n) {
  memset(o->b + o->n, 0, n);
  o->n += n;
}
/* a box header whose size is patched by box_end */
static size_t box(bytes *o, const char *type) {
  size_t at = o->n;
  be32(o, 0);
  put(o, type, 4);
  return at;
}
static void box_end(bytes *o, size_t at) {
  size_t n = o->n - at;
  o->b[at] = (unsigned char)(n >> 24), o->b[at + 1] = (unsigned char)(n >> 16);
  o->b[at + 2] = (unsigned char)(n >> 8), o->b[at + 3] = (unsigned char)n;
}

static void ftyp(bytes *o, const char *brand) {
  size_t b = box(o, "ftyp");
  put(o, brand, 4);
  be32(o, 0);
  put(o, "isom", 4);
  box_end(o, b);
}

/* moov: mvhd (version v: timescale, duration), one trak with tkhd w x h (16.16)
   and, when entry is given, an stsd sample entry of that type and size */
static void moov(bytes *o, int v, unsigned long scale, unsigned long dur, unsigned w, unsigned h, const char *entry,
                 unsigned ew, unsigned eh) {
  size_t m = box(o, "moov"), b, t, x;
  b = box(o, "mvhd");
  be32(o, (unsigned long)v << 24);
  if (v == 1) {
    zeros(o, 16);
    be32(o, scale);
    be32(o, 0);
    be32(o, dur);
  } else {
    zeros(o, 8);
    be32(o, scale);
    be32(o, dur);
  }
  zeros(o, 80);
  box_end(o, b);
  t = box(o, "trak");
  b = box(o, "tkhd");
  be32(o, 0);
  zeros(o, 72);
  be32(o, (unsigned long)w << 16);
  be32(o, (unsigned long)h << 16);
  box_end(o, b);
  if (entry) {
    size_t md = box(o, "mdia"), mi = box(o, "minf"), st = box(o, "stbl"), sd = box(o, "stsd");
    be32(o, 0);
    be32(o, 1);
    x = box(o, entry);
    zeros(o, 6 + 2 + 16);
    be16(o, ew);
    be16(o, eh);
    zeros(o, 50);
    box_end(o, x);
    box_end(o, sd);
    box_end(o, st);
    box_end(o, mi);
    box_end(o, md);
  }
  box_end(o, t);
  box_end(o, m);
}

static int sniff(const bytes *o, double total, sv_media *m, sv_buf *why) {
  why->len = 0;
  return sv_media_sniff(o->b, o->n, total, m, why);
}

static void media_is(const char *name, int rc, const sv_media *m, const char *type, double w, double h, double d) {
  char detail[300];
  snprintf(detail, sizeof detail, "rc %d type %s %gx%g duration %g tail %g", rc, m->type ? m->type : "-", m->width,
           m->height, m->duration, m->tail);
  ok(rc == 0 && m->type && strcmp(m->type, type) == 0 && m->width == w && m->height == h &&
         fabs(m->duration - d) < 1e-9,
     name, detail);
}

static void media_images(void) {
  bytes o = { { 0 }, 0 };
  sv_media m;
  sv_buf why = { 0 };
  put(&o, "\x89PNG\r\n\x1a\n", 8);
  be32(&o, 13);
  put(&o, "IHDR", 4);
  be32(&o, 640);
  be32(&o, 480);
  media_is("png: width and height from IHDR", sniff(&o, 1000, &m, &why), &m, "png", 640, 480, -1);
  ok(m.kind == SV_MEDIA_IMAGE && m.size == 1000 && m.tail == -1, "png: an image of the size given", NULL);
  o.n = 16;
  be32(&o, 0xffffffffUL);
  be32(&o, 0xffffffffUL);
  media_is("png: huge dimensions read as they are", sniff(&o, -1, &m, &why), &m, "png", 4294967295.0,
           4294967295.0, -1);
  o.n = 0;
  put(&o, "\xff\xd8\xff\xe0", 4);
  be16(&o, 16);
  put(&o, "JFIF", 5);
  zeros(&o, 9);
  put(&o, "\xff\xff\xc2", 3); /* a fill byte, then a progressive frame header */
  be16(&o, 17);
  put(&o, "\x08", 1);
  be16(&o, 1080);
  be16(&o, 1920);
  media_is("jpeg: width and height from SOF2 after APP0", sniff(&o, -1, &m, &why), &m, "jpeg", 1920, 1080, -1);
  o.n -= 3;
  media_is("jpeg: a frame header cut short gives no size", sniff(&o, -1, &m, &why), &m, "jpeg", 0, 0, -1);
  o.n = 0;
  put(&o, "GIF89a", 6);
  le16(&o, 320);
  le16(&o, 200);
  media_is("gif: the screen's width and height", sniff(&o, -1, &m, &why), &m, "gif", 320, 200, -1);
  o.n = 0;
  put(&o, "RIFF\0\0\0\0WEBPVP8 \0\0\0\0\0\0\0\x9d\x01\x2a", 26);
  le16(&o, 1024 | 0x4000); /* the scale bits are not the width */
  le16(&o, 768);
  media_is("webp VP8: 14-bit width and height", sniff(&o, -1, &m, &why), &m, "webp", 1024, 768, -1);
  o.n = 0;
  put(&o, "RIFF\0\0\0\0WEBPVP8L\0\0\0\0\x2f", 21);
  le32(&o, (99UL) | (49UL << 14));
  media_is("webp VP8L: width-1 and height-1 in 14 bits", sniff(&o, -1, &m, &why), &m, "webp", 100, 50, -1);
  o.n = 0;
  put(&o, "RIFF\0\0\0\0WEBPVP8X\0\0\0\0\0\0\0\0", 24);
  put(&o, "\x7f\x07\x00\x37\x04\x00", 6);
  media_is("webp VP8X: the canvas's 24-bit width-1 and height-1", sniff(&o, -1, &m, &why), &m, "webp", 1920, 1080, -1);
  o.n = 0;
  put(&o, "<!DOCTYPE html><html>", 21);
  ok(sniff(&o, 21, &m, &why) == 0 && m.kind == SV_MEDIA_TEXT && strcmp(m.type, "html") == 0,
     "an HTML page is text (html), not media", sv_buf_cstr(&why));
  o.n = 0;
  put(&o, "\x01\x02<!DOCTYPE", 11);
  ok(sniff(&o, 11, &m, &why) == -1 && strstr(sv_buf_cstr(&why), "not an image, video or audio") &&
         strstr(sv_buf_cstr(&why), "<!DOCTYPE"),
     "bytes of no known kind: the message quotes the first ones", sv_buf_cstr(&why));
  ok(sv_media_sniff(o.b, 0, 0, &m, &why) == -1, "no bytes at all: not a media file", NULL);
  sv_buf_free(&why);
}

static void media_mp4(void) {
  bytes o = { { 0 }, 0 }, t = { { 0 }, 0 };
  sv_media m;
  sv_buf why = { 0 };
  size_t b;
  ftyp(&o, "isom");
  moov(&o, 0, 1000, 6500, 1280, 720, NULL, 0, 0);
  b = box(&o, "mdat");
  zeros(&o, 100);
  box_end(&o, b);
  media_is("mp4: mvhd version 0 duration, tkhd width and height", sniff(&o, (double)o.n, &m, &why), &m, "mp4", 1280,
           720, 6.5);
  ok(m.kind == SV_MEDIA_VIDEO && m.tail == -1, "mp4: a video, with nothing more to read", NULL);
  o.n = 0;
  ftyp(&o, "qt  ");
  moov(&o, 1, 600, 9000, 0, 0, "avc1", 1920, 1080);
  media_is("mov: brand 'qt  ', mvhd version 1, the avc1 sample entry's size", sniff(&o, -1, &m, &why), &m, "mov",
           1920, 1080, 15);
  o.n = 0;
  ftyp(&o, "M4A ");
  moov(&o, 0, 44100, 441000, 0, 0, NULL, 0, 0);
  media_is("m4a: brand 'M4A ', an audio of mvhd's 10 s", sniff(&o, -1, &m, &why), &m, "m4a", 0, 0, 10);
  ok(m.kind == SV_MEDIA_AUDIO, "m4a: an audio", NULL);
  /* moov at the end: the head holds ftyp and mdat's header */
  o.n = 0;
  ftyp(&o, "mp42");
  be32(&o, 1000000);
  put(&o, "mdat", 4);
  zeros(&o, 64);
  media_is("mp4 with moov at the end: no duration from the head", sniff(&o, 1000000 + 20 + 400, &m, &why), &m, "mp4",
           0, 0, -1);
  ok(m.tail == 1000020, "mp4 with moov at the end: tail is where mdat ends", NULL);
  moov(&t, 0, 90000, 900000, 720, 1280, NULL, 0, 0);
  ok(sv_media_tail(&m, t.b, t.n, 1000020, &why) == 0 && m.duration == 10 && m.width == 720 && m.height == 1280 &&
         m.tail == -1,
     "mp4 tail: the moov read at the offset asked", sv_buf_cstr(&why));
  /* a 64-bit mdat size, then the moov's header in the head but not all of it */
  o.n = 0;
  ftyp(&o, "isom");
  be32(&o, 1);
  put(&o, "mdat", 4);
  be32(&o, 0);
  be32(&o, 40);
  zeros(&o, 24);
  t.n = 0;
  moov(&t, 0, 1000, 4000, 1080, 1920, NULL, 0, 0);
  put(&o, t.b, 40);
  ok(sniff(&o, (double)(20 + 40 + t.n), &m, &why) == 0 && m.tail == 60 && m.duration == -1,
     "mp4: a 64-bit mdat size read, and a moov cut by the head read from its start", NULL);
  ok(sv_media_tail(&m, t.b, t.n, 60, &why) == 0 && m.duration == 4 && m.width == 1080,
     "mp4 tail: the whole moov from its offset", sv_buf_cstr(&why));
  /* size 0: the box runs to the end of the file */
  o.n = 0;
  ftyp(&o, "isom");
  moov(&o, 0, 1000, 3000, 640, 640, NULL, 0, 0);
  be32(&o, 0);
  put(&o, "mdat", 4);
  media_is("mp4: a last box of size 0 runs to the end", sniff(&o, 5000, &m, &why), &m, "mp4", 640, 640, 3);
  o.n = 0;
  ftyp(&o, "isom");
  be32(&o, 0);
  put(&o, "mdat", 4);
  sniff(&o, 5000, &m, &why);
  ok(m.tail == -1 && m.duration == -1, "mp4: mdat to the end and no moov: nothing more to read", NULL);
  /* hostile sizes */
  o.n = 0;
  ftyp(&o, "isom");
  be32(&o, 7);
  put(&o, "free", 4);
  ok(sniff(&o, -1, &m, &why) == -1 && strstr(sv_buf_cstr(&why), "box 'free'") &&
         strstr(sv_buf_cstr(&why), "at byte 20"),
     "mp4: a box of 7 bytes is refused, named with its offset", sv_buf_cstr(&why));
  o.n = 0;
  ftyp(&o, "isom");
  be32(&o, 1);
  put(&o, "mdat", 4);
  be32(&o, 0);
  be32(&o, 3);
  ok(sniff(&o, -1, &m, &why) == -1, "mp4: a 64-bit size below 16 is refused", sv_buf_cstr(&why));
  o.n = 0;
  ftyp(&o, "isom");
  be32(&o, 1);
  put(&o, "mdat", 4);
  be32(&o, 0xffffffffUL);
  be32(&o, 0xffffffffUL);
  ok(sniff(&o, -1, &m, &why) == 0 && m.tail > 1.8e19 && isfinite(m.tail),
     "mp4: a 64-bit size of 2^64-1 does not overflow", NULL);
  o.n = 0;
  ftyp(&o, "isom");
  b = box(&o, "moov");
  be32(&o, 0x7fffffff); /* a child running far past its moov */
  put(&o, "trak", 4);
  be32(&o, 4);
  put(&o, "tkhd", 4);
  box_end(&o, b);
  media_is("mp4: children running past their box are not read past the bytes", sniff(&o, (double)o.n, &m, &why), &m,
           "mp4", 0, 0, -1);
  o.n = 0;
  ftyp(&o, "isom");
  b = o.n;
  moov(&o, 0, 0, 5000, 100, 100, NULL, 0, 0);
  media_is("mp4: a timescale of 0 gives no duration", sniff(&o, (double)o.n, &m, &why), &m, "mp4", 100, 100, -1);
  /* a moov is read to its end, not into the box after it */
  o.n = 0;
  ftyp(&o, "isom");
  moov(&o, 0, 1000, 5000, 0, 0, NULL, 0, 0);
  b = box(&o, "trak"); /* a top-level trak after the moov (no place for one) */
  t.n = box(&o, "tkhd");
  be32(&o, 0);
  zeros(&o, 72);
  be32(&o, 1920UL << 16);
  be32(&o, 1080UL << 16);
  box_end(&o, t.n);
  box_end(&o, b);
  media_is("mp4: the moov's children only, not the next box's", sniff(&o, (double)o.n, &m, &why), &m, "mp4", 0, 0,
           5);
  /* found by fuzzing: a header cut by the file's end, or a tail cut where it begins,
     asks for no tail (never the same offset again) */
  o.n = 0;
  ftyp(&o, "isom");
  zeros(&o, 7);
  ok(sniff(&o, (double)o.n, &m, &why) == 0 && m.tail == -1, "mp4: a box header cut by the file's end: no tail",
     NULL);
  o.n = 0;
  be32(&o, 1);
  put(&o, "ftyp", 4);
  zeros(&o, 4);
  m.tail = 0;
  ok(sniff(&o, -1, &m, &why) == 0 && m.tail == 0 && sv_media_tail(&m, o.b, o.n, 0, &why) == 0 && m.tail == -1,
     "mp4: a 64-bit header cut short is read again once, then no more", sv_buf_cstr(&why));
  o.n = 0;
  ftyp(&o, "isom");
  o.n = 12;
  ok(sniff(&o, 24, &m, &why) == 0 && m.tail == 20,
     "mp4: a head cut inside ftyp reads on after it", NULL);
  sv_buf_free(&why);
}

/* an OGG page header: granule (split in two 32-bit halves), one segment of len */
static void ogg_page(bytes *o, unsigned long glo, unsigned long ghi, unsigned char len) {
  put(o, "OggS\0\0", 6);
  le32(o, glo);
  le32(o, ghi);
  zeros(o, 12);
  put(o, "\x01", 1);
  put(o, &len, 1);
}

static void media_audio(void) {
  bytes o = { { 0 }, 0 }, t = { { 0 }, 0 };
  sv_media m;
  sv_buf why = { 0 };
  put(&o, "RIFF\0\0\0\0WAVE", 12);
  put(&o, "LIST", 4);
  le32(&o, 3); /* an odd chunk, padded to even */
  zeros(&o, 4);
  put(&o, "fmt ", 4);
  le32(&o, 16);
  le16(&o, 1);
  le16(&o, 2);
  le32(&o, 44100);
  le32(&o, 176400);
  le16(&o, 4);
  le16(&o, 16);
  put(&o, "data", 4);
  le32(&o, 352800);
  media_is("wav: data size over the byte rate, after an odd chunk", sniff(&o, -1, &m, &why), &m, "wav", 0, 0, 2);
  ok(m.kind == SV_MEDIA_AUDIO, "wav: an audio", NULL);
  o.n -= 4;
  le32(&o, 0xffffffffUL);
  media_is("wav: a streamed data size is the rest of the file", sniff(&o, 176400.0 * 3 + (double)o.n, &m, &why), &m,
           "wav", 0, 0, 3);
  /* MP3: an ID3v2 tag of 100 + 10 bytes, padding, a 128 kbit/s MPEG-1 frame */
  o.n = 0;
  put(&o, "ID3\x04\0\0\0\0\0\x64", 10);
  zeros(&o, 100 + 3);
  put(&o, "\xff\xfb\x90\x00", 4);
  zeros(&o, 60);
  media_is("mp3: constant bit rate over the size after the ID3 tag", sniff(&o, 113 + 16000.0 * 5, &m, &why), &m, "mp3",
           0, 0, 5);
  media_is("mp3: no size, no duration", sniff(&o, -1, &m, &why), &m, "mp3", 0, 0, -1);
  o.n = 0;
  put(&o, "\xff\xfb\x90\xc0", 4); /* mono: the Xing header 17 bytes on */
  zeros(&o, 17);
  put(&o, "Xing\0\0\0\x03", 8);
  be32(&o, 383); /* frames */
  zeros(&o, 40);
  media_is("mp3: Xing frame count (mono MPEG-1)", sniff(&o, 1e9, &m, &why), &m, "mp3", 0, 0, 383 * 1152 / 44100.0);
  o.n = 0;
  put(&o, "\xff\xf3\x90\x00", 4); /* MPEG-2 Layer III, 22050 Hz: 576 samples a frame */
  zeros(&o, 32);
  put(&o, "VBRI\0\x01\0\0\0\0\0\0\0\0", 14);
  be32(&o, 1000);
  zeros(&o, 20);
  media_is("mp3: VBRI frame count (MPEG-2)", sniff(&o, 1e9, &m, &why), &m, "mp3", 0, 0, 576000 / 22050.0);
  o.n = 0;
  put(&o, "\xff\xf1\x50\x80\x02\x1f\xfc", 7);
  media_is("aac: an ADTS frame, no duration", sniff(&o, 5000, &m, &why), &m, "aac", 0, 0, -1);
  o.n = 0;
  put(&o, "\xff\xfb\xf0\x00", 4); /* bit rate index 15: no frame */
  ok(sniff(&o, 5000, &m, &why) == -1, "mp3: a bad bit rate index is no frame", NULL);
  o.n = 0;
  put(&o, "ID3\x04\0\0\x7f\x7f\x7f\x7f", 10);
  media_is("mp3: an ID3 tag longer than the head says mp3, no duration", sniff(&o, 1e9, &m, &why), &m, "mp3", 0, 0,
           -1);
  /* OGG Vorbis: the rate from the identification header; the last page's granule */
  o.n = 0;
  ogg_page(&o, 0, 0, 30);
  put(&o, "\x01vorbis\0\0\0\0\x02", 12);
  le32(&o, 44100);
  zeros(&o, 14);
  media_is("ogg vorbis: no duration from the head of a long file", sniff(&o, 200000, &m, &why), &m, "ogg", 0, 0, -1);
  ok(m.rate == 44100 && m.tail == 200000 - 65536, "ogg: the tail is the last 64 KiB", NULL);
  zeros(&t, 100);
  ogg_page(&t, 44100 * 7, 0, 10);
  zeros(&t, 10);
  ogg_page(&t, 0xffffffffUL, 0xffffffffUL, 0); /* a page without a granule is skipped */
  ok(sv_media_tail(&m, t.b, t.n, 200000 - (double)t.n, &why) == 0 && m.duration == 7 && m.tail == -1,
     "ogg tail: the last page's granule over the rate", sv_buf_cstr(&why));
  ok(sv_media_tail(&m, t.b, t.n, 200000 - 10, &why) == -1 && strstr(sv_buf_cstr(&why), "run past"),
     "ogg tail: bytes past the file's end are refused", sv_buf_cstr(&why));
  o.n = 0;
  ogg_page(&o, 0, 0, 19);
  put(&o, "OpusHead\x01\x02", 10);
  le16(&o, 312);
  le32(&o, 44100);
  zeros(&o, 3);
  ogg_page(&o, 48000 * 2 + 312, 0, 0);
  media_is("ogg opus: 48 kHz granules less the pre-skip, the whole file in the head",
           sniff(&o, (double)o.n, &m, &why), &m, "ogg", 0, 0, 2);
  o.n = 0;
  put(&o, "OggS\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\xff", 27);
  media_is("ogg: a segment table past the bytes", sniff(&o, 27, &m, &why), &m, "ogg", 0, 0, -1);
  sv_buf_free(&why);
}

static sv_media media(sv_media_kind kind, const char *type, double size, double w, double h, double d) {
  sv_media m;
  sv_media_init(&m);
  m.kind = kind;
  m.type = type;
  m.size = size;
  m.width = w;
  m.height = h;
  m.duration = d;
  return m;
}

/* sv_media_check over items; expect the findings "field|definite|message part" in order */
static void rules(const char *name, const char *model, const sv_media_item *it, size_t n, const char *const *want) {
  sv_buf out = { 0 };
  sv_error err;
  size_t i, got;
  const sv_media_finding *f;
  char detail[900] = "";
  int good;
  sv_error_clear(&err);
  good = sv_media_check(model, it, n, 0, 0, &out, &err) == 0;
  got = out.len / sizeof *f;
  f = (const sv_media_finding *)(void *)out.data;
  for (i = 0; want[i]; i++) {
    char field[96], part[300];
    int definite;
    if (sscanf(want[i], "%95[^|]|%d|%299[^\n]", field, &definite, part) != 3) abort();
    if (i >= got || strcmp(f[i].field, field) != 0 || f[i].definite != definite || !strstr(f[i].message, part) ||
        strncmp(f[i].message, field, strlen(field)) != 0)
      good = 0;
  }
  good = good && i == got;
  for (i = 0; i < got; i++)
    snprintf(detail + strlen(detail), sizeof detail - strlen(detail), "[%s %d %s] ", f[i].field, f[i].definite,
             f[i].message);
  ok(good, name, detail);
  sv_buf_free(&out);
}

static void media_rules(void) {
  sv_media img = media(SV_MEDIA_IMAGE, "png", 1000, 640, 480, -1),
           big = media(SV_MEDIA_IMAGE, "jpeg", 25 * 1048576.0, 0, 0, -1),
           v16 = media(SV_MEDIA_VIDEO, "mp4", 5e6, 1280, 720, 16.5), v6 = media(SV_MEDIA_VIDEO, "mp4", 5e6, 1920, 1080, 6),
           v2 = media(SV_MEDIA_VIDEO, "mov", 5e6, 1280, 720, 2), small = media(SV_MEDIA_VIDEO, "mp4", 5e6, 640, 480, 5),
           huge = media(SV_MEDIA_VIDEO, "mp4", 150 * 1048576.0, 3840, 2160, 4),
           nodur = media(SV_MEDIA_VIDEO, "mp4", -1, 0, 0, -1), a9 = media(SV_MEDIA_AUDIO, "mp3", 1e5, 0, 0, 9),
           aq = media(SV_MEDIA_AUDIO, "aac", 1e5, 0, 0, -1);
  sv_media_item it[4];
  sv_error err;
  sv_buf out = { 0 };
  static const char *const none[] = { NULL };
  memset(it, 0, sizeof it);
  it[0].field = "referenceVideos[1]", it[0].name = "referenceVideos", it[0].info = &v16;
  {
    static const char *const w[] = {
      "referenceVideos[1]|1|: the video is 16.5 s long; starvideos_o3 takes one reference video of 3 to 10 s",
      "referenceVideos[1]|1|come to 16.5 s in total; starvideos_o3 takes at most 15 s", NULL };
    rules("media rules: O3 takes one video of 3 to 10 s; 16.5 s breaks both rules", "starvideos_o3", it, 1, w);
  }
  it[0].info = &v2;
  {
    static const char *const w[] = { "referenceVideos[1]|1|the video is 2 s long; starvideos_o3 takes one", NULL };
    rules("media rules: O3 refuses a 2 s video", "starvideos_o3", it, 1, w);
    rules("media rules: videos takes a 2 s video", "videos", it, 1, none);
  }
  it[0].info = &v6, it[1] = it[0], it[2] = it[0];
  it[1].field = "referenceVideos[2]", it[2].field = "referenceVideos[3]";
  {
    static const char *const w[] = { "referenceVideos[3]|1|the reference videos come to 18 s in total; videos_fast "
                                     "takes at most 15 s of reference video",
                                     NULL };
    rules("media rules: three videos of 6 s are 18 s, named at the third", "videos_fast", it, 3, w);
    it[0].info = &huge, it[1].info = &huge, it[2].info = &v2;
    static const char *const w2[] = { "referenceVideos[2]|1|come to 300.0 MB in total; the limit is 200 MB", NULL };
    rules("media rules: 300 MB of reference videos (3840x2160 is within 720 to 2160)", "videos", it, 3, w2);
  }
  it[0].info = &small;
  {
    static const char *const w[] = { "referenceVideos[1]|1|the video is 640x480 px; each reference video's shorter "
                                     "side must be 720 to 2160 px",
                                     NULL };
    rules("media rules: a shorter side of 480 px", "videos_stable", it, 1, w);
  }
  it[0].info = &nodur;
  {
    static const char *const w[] = { "referenceVideos[1]|0|width and height could not be read",
                                     "referenceVideos[1]|0|duration could not be read",
                                     "referenceVideos[1]|0|size is unknown", NULL };
    rules("media rules: what could not be read is not definite", "videos", it, 1, w);
  }
  it[0].field = "referenceImages[1]", it[0].name = "referenceImages", it[0].info = &img;
  it[1].field = "first_image", it[1].name = "first_image", it[1].info = &big;
  it[2].field = "lastFrameImage", it[2].name = "lastFrameImage", it[2].info = &v6;
  it[3].field = "image", it[3].name = "image", it[3].info = NULL;
  {
    static const char *const w[] = { "first_image|1|the image is 25.0 MB; each image must be under 20 MB",
                                     "lastFrameImage|1|the URL holds video media (mp4); lastFrameImage takes image media",
                                     "image|0|could not be read", NULL };
    rules("media rules: image size, kind and an unread item", "videos", it, 4, w);
  }
  it[0].info = &img, it[0].status = 404;
  it[1].info = &img, it[1].status = 500;
  it[2].info = &img, it[2].status = 206;
  it[3].info = &img, it[3].status = 410;
  {
    static const char *const w[] = { "referenceImages[1]|1|HTTP 404", "first_image|0|HTTP 500", "image|1|HTTP 410",
                                     NULL };
    rules("media rules: 404 and 410 are definite, 500 is not, 206 is fine", "videos", it, 4, w);
  }
  memset(it, 0, sizeof it);
  it[0].field = "referenceAudios[1]", it[0].name = "referenceAudios", it[0].info = &a9;
  it[1] = it[0], it[1].field = "referenceAudios[2]";
  it[2] = it[0], it[2].field = "referenceAudios[3]", it[2].info = &aq;
  {
    static const char *const w[] = { "referenceAudios[2]|1|the reference audios come to 18 s in total; the limit is 15 s",
                                     "referenceAudios[3]|0|the audio's duration could not be read", NULL };
    rules("media rules: 18 s of audio, and an AAC of unknown length", "videos", it, 3, w);
  }
  {
    /* every model's row: a 12 s video of 1280x720 and 5 MB; O3 alone refuses it */
    sv_media v12 = media(SV_MEDIA_VIDEO, "mp4", 5e6, 1280, 720, 12);
    static const char *const o3[] = { "referenceVideos[1]|1|the video is 12 s long; starvideos_o3 takes one "
                                      "reference video of 3 to 10 s",
                                      NULL };
    size_t k;
    memset(it, 0, sizeof it);
    it[0].field = "referenceVideos[1]", it[0].name = "referenceVideos", it[0].info = &v12;
    for (k = 0; k < sv_model_count; k++) {
      char name[96];
      snprintf(name, sizeof name, "media rules: %s and a 12 s video", sv_models[k].name);
      rules(name, sv_models[k].name, it, 1, strcmp(sv_models[k].name, "starvideos_o3") == 0 ? o3 : none);
    }
  }
  memset(it, 0, sizeof it);
  it[0].field = "referenceAudios[1]", it[0].name = "prompt", it[0].info = &a9;
  ok(sv_media_check("videos", it, 1, 0, 0, &out, &err) == -1 && strcmp(err.field, "referenceAudios[1]") == 0,
     "media rules: an item of no media field is an error", err.message);
  ok(sv_media_check("sora", it, 1, 0, 0, &out, &err) == -1 && strcmp(err.field, "model") == 0,
     "media rules: an unknown model is an error", err.message);
  sv_buf_free(&out);
}

static void write_file(const char *path, const bytes *o) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(o->b, 1, o->n, f) != o->n || fclose(f) != 0) abort();
}

/* sv_mp4_check_fd of the file at path */
static int mp4_check(const char *path, double expected, double *d, sv_buf *why) {
  FILE *f = fopen(path, "rb");
  int rc;
  if (!f) abort();
  rc = sv_mp4_check_fd(fileno(f), expected, d, NULL, why);
  fclose(f);
  return rc;
}

static void mp4_checks(void) {
  char path[] = "/tmp/sv_mp4_XXXXXX";
  bytes o = { { 0 }, 0 };
  sv_buf why = { 0 };
  double d;
  size_t b;
  int fd = mkstemp(path);
  if (fd < 0) abort();
  close(fd);
  ftyp(&o, "isom");
  moov(&o, 0, 1000, 6000, 1280, 720, NULL, 0, 0);
  b = box(&o, "mdat");
  zeros(&o, 500);
  box_end(&o, b);
  write_file(path, &o);
  ok(mp4_check(path, 6, &d, &why) == 1 && d == 6, "mp4_check: a whole file of 6 s", sv_buf_cstr(&why));
  why.len = 0;
  ok(mp4_check(path, 5.2, &d, &why) == 1, "mp4_check: 6 s is within 1 s of 5.2", sv_buf_cstr(&why));
  why.len = 0;
  ok(mp4_check(path, 4, &d, &why) == -1 && strcmp(sv_buf_cstr(&why), "duration 6.0 s, the task says 4 s") == 0,
     "mp4_check: a duration 2 s off", sv_buf_cstr(&why));
  why.len = 0;
  o.n -= 100;
  write_file(path, &o);
  ok(mp4_check(path, -1, &d, &why) == -1 && strstr(sv_buf_cstr(&why), "box 'mdat' at byte ") &&
         strstr(sv_buf_cstr(&why), "runs past the end"),
     "mp4_check: a file cut short", sv_buf_cstr(&why));
  why.len = 0;
  o.n += 100;
  zeros(&o, 3);
  write_file(path, &o);
  ok(mp4_check(path, -1, &d, &why) == -1 && strstr(sv_buf_cstr(&why), "runs past the end"),
     "mp4_check: 3 stray bytes after the last box", sv_buf_cstr(&why));
  why.len = 0;
  o.n = 0;
  ftyp(&o, "isom");
  b = box(&o, "mdat");
  box_end(&o, b);
  write_file(path, &o);
  ok(mp4_check(path, -1, &d, &why) == -1 && strcmp(sv_buf_cstr(&why), "no moov box") == 0,
     "mp4_check: no moov", sv_buf_cstr(&why));
  why.len = 0;
  o.n = 0;
  put(&o, "<html>gone</html>", 17);
  write_file(path, &o);
  ok(mp4_check(path, -1, &d, &why) == -1 && strstr(sv_buf_cstr(&why), "not an MP4") &&
         strstr(sv_buf_cstr(&why), "<html>"),
     "mp4_check: an HTML page", sv_buf_cstr(&why));
  why.len = 0;
  o.n = 0;
  ftyp(&o, "isom");
  be32(&o, 1);
  put(&o, "mdat", 4);
  be32(&o, 0);
  be32(&o, 16);
  moov(&o, 0, 1000, 0, 1280, 720, NULL, 0, 0);
  be32(&o, 0);
  put(&o, "free", 4);
  write_file(path, &o);
  ok(mp4_check(path, 10, &d, &why) == 1 && d == -1,
     "mp4_check: a 64-bit mdat, a moov stating no duration, a size-0 box to the end", sv_buf_cstr(&why));
  unlink(path);
  sv_buf_free(&why);
}

/* A local file as a reference ({file = path}): taken where p->files says, its path checked, and written
   into the body as {"file": path} (the fingerprint's form); refused where only URLs go (the service's). */
static void local_files(void) {
  sv_value imgs[2], bad_items[1];
  sv_params p;
  sv_buf body;
  sv_error err;
  const char *ep = NULL;
  int rc;
  imgs[0] = FILE_("cat \"1\".png", 11);
  imgs[1] = S("https://e.com/2.png");
  {
    sv_field f[] = { F("model", S("videos")), F("prompt", S("a cat")), F("duration", N(5)), F("referenceImages", L(imgs, 2)) };
    memset(&p, 0, sizeof p);
    p.fields = f;
    p.n = 4;
    rc = sv_validate(&p, NULL, &err);
    ok(rc == -1 && strcmp(err.field, "referenceImages[1]") == 0 && strstr(err.message, "expected an http(s) URL, got a local file"),
       "without files, a local file is refused where a URL goes", err.message);
    p.files = 1;
    ok(sv_validate(&p, NULL, &err) == 0, "with files, a local file passes as a reference", err.message);
    memset(&body, 0, sizeof body);
    rc = sv_build_create(&p, &body, &ep, &err);
    ok(rc == 0 && strstr(sv_buf_cstr(&body), "\"referenceImages\":[{\"file\":\"cat \\\"1\\\".png\"},\"https://e.com/2.png\"]"),
       "the body names a local file as {\"file\": path}", sv_buf_cstr(&body));
    sv_buf_free(&body);
  }
  {
    sv_field f[] = { F("model", S("videos")), F("prompt", S("a cat")), F("duration", N(5)),
                     F("first_image", FILE_("a\0b", 3)), F("last_image", FILE_("b.png", 5)) };
    memset(&p, 0, sizeof p);
    p.fields = f;
    p.n = 5;
    p.files = 1;
    rc = sv_validate(&p, NULL, &err);
    ok(rc == -1 && strcmp(err.field, "first_image") == 0 && strstr(err.message, "without NUL bytes"),
       "a path with a NUL byte is refused, naming the field", err.message);
    f[3] = F("first_image", FILE_("", 0));
    rc = sv_validate(&p, NULL, &err);
    ok(rc == -1 && strcmp(err.field, "first_image") == 0 && strstr(err.message, "with a path"), "an empty path is refused",
       err.message);
    f[3] = F("image", S("https://e.com/b.png"));
    f[4] = F("first_image", FILE_("https://e.com/b.png", 19));
    rc = sv_validate(&p, NULL, &err);
    ok(rc == -1 && strcmp(err.field, "image") == 0, "a legacy alias naming a URL and a field naming a file of that name "
       "conflict", err.message);
  }
  {
    sv_field f[] = { F("model", S("videos")), F("prompt", S("a cat")), F("duration", N(5)), F("referenceVideos", L(bad_items, 1)) };
    bad_items[0] = S("x");
    bad_items[0].type = SV_V_TABLE;
    bad_items[0].str = "a table whose file is not a string";
    memset(&p, 0, sizeof p);
    p.fields = f;
    p.n = 4;
    p.files = 1;
    rc = sv_validate(&p, NULL, &err);
    ok(rc == -1 && strcmp(err.message, "referenceVideos[1]: expected an http(s) URL or {file = path}, got a table whose "
       "file is not a string") == 0, "a table naming a file wrongly is described as the host said", err.message);
  }
}

/* fields validated with sv_validate_warn: the warnings' fields, "field<because" joined by
   spaces, into got ("" when none; "error" when refused) */
static void warned(const sv_field *f, size_t n, char *got, size_t size) {
  sv_params p;
  sv_error err;
  sv_buf out = {0};
  const sv_warning *w;
  size_t i, used = 0;
  memset(&p, 0, sizeof p);
  p.fields = f;
  p.n = n;
  got[0] = '\0';
  if (sv_validate_warn(&p, NULL, &out, &err)) { snprintf(got, size, "error"); sv_buf_free(&out); return; }
  w = (const sv_warning *)(void *)out.data;
  for (i = 0; i < out.len / sizeof *w && used < size; i++)
    used += (size_t)snprintf(got + used, size - used, "%s%s<%s", i ? " " : "", w[i].field, w[i].because);
  sv_buf_free(&out);
}

/* What the service ignores (api/000: duration and ratio beside referenceVideos on O3; api/001, 004:
   a legacy alias beside its field with the same value), from the rows, and nothing else. */
static void warnings(void) {
  char got[256];
  sv_value vid[1] = { S("https://example.com/v.mp4") }, img[1] = { S("https://example.com/a.png") };
  sv_field o3[] = { F("model", S("starvideos_o3")), F("prompt", S("a cat")), F("duration", N(5)), F("ratio", S("1:1")),
                    F("referenceVideos", L(vid, 1)), F("referenceImages", L(img, 1)) };
  sv_field legacy[] = { F("model", S("videos_fast")), F("prompt", S("a cat")), F("duration", N(5)),
                        F("first_image", S("https://example.com/a.png")), F("image", S("https://example.com/a.png")),
                        F("last_image", S("https://example.com/b.png")),
                        F("lastFrameImage", S("https://example.com/b.png")) };
  sv_params p;
  sv_error err;
  sv_buf out = {0};
  warned(o3, 6, got, sizeof got);
  ok(strcmp(got, "duration<referenceVideos ratio<referenceVideos") == 0, "O3 ignores duration and ratio beside a video", got);
  warned(o3, 4, got, sizeof got);
  ok(strcmp(got, "") == 0, "O3 takes duration and ratio without a video", got);
  o3[4] = F("prompt", S("a cat")); /* (the video gone: named twice is refused) */
  warned(o3, 5, got, sizeof got);
  ok(strcmp(got, "error") == 0, "an invalid request has no warnings, its error", got);
  warned(legacy, 7, got, sizeof got);
  ok(strcmp(got, "image<first_image lastFrameImage<last_image") == 0, "a legacy alias beside its field is ignored", got);
  warned(legacy, 5, got, sizeof got);
  ok(strcmp(got, "error") == 0, "first_image and image without last_image are refused", got);
  legacy[4] = F("last_image", S("https://example.com/b.png"));
  warned(legacy, 5, got, sizeof got);
  ok(strcmp(got, "") == 0, "first_image and last_image alone: nothing ignored", got);
  legacy[3] = F("image", S("https://example.com/a.png"));
  warned(legacy, 5, got, sizeof got);
  ok(strcmp(got, "") == 0, "the legacy image alone is taken (as first_image)", got);
  memset(&p, 0, sizeof p);
  p.fields = o3;
  p.n = 4;
  o3[3] = F("referenceVideos", L(vid, 1));
  ok(sv_validate_warn(&p, NULL, &out, &err) == 0 && out.len == sizeof(sv_warning) &&
     strcmp(((const sv_warning *)(void *)out.data)->message, "duration: ignored by starvideos_o3 beside referenceVideos "
            "(the output duration is determined by the reference video)") == 0, "a warning's message says why",
     out.len ? ((const sv_warning *)(void *)out.data)->message : err.message);
  sv_buf_free(&out);
  ok(sv_validate_warn(&p, NULL, NULL, &err) == 0, "sv_validate_warn takes no list", err.message);
}

int main(void) {
  local_files();
  file_leases();
  helper_work();
  journal_writer();
  validator();
  warnings();
  building();
  answers();
  duplicate_fields();
  extra_json();
  duplicate_keys();
  answers_in_one_pass();
  create_answers();
  prefix_ids();
  result_paths();
  headers_and_urls();
  request_ids();
  proxy_urls();
  transport_words();
  retry_after();
  rate_limits();
  found_by_fuzzing();
  media_images();
  media_mp4();
  media_audio();
  media_rules();
  mp4_checks();
  verdicts();
  error_answers_naming_a_task();
  file_appends();
  return tap_plan();
}
