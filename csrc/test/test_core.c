/* The C core tested from C alone (no Lua): the validator, request building, the
   JSON scanner, answer reading and the retry policy.  Prints TAP; exit 1 on any
   failure.  spec/core_c_spec.lua runs it as part of `make test`. */
#include "../sv_core.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int n_test = 0, n_fail = 0;

static void ok(int cond, const char *name, const char *detail) {
  n_test++;
  if (!cond) n_fail++;
  printf("%s %d - %s%s%s\n", cond ? "ok" : "not ok", n_test, name, detail && !cond ? " # " : "",
         detail && !cond ? detail : "");
}

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
  sv_buf_init(&body);
  ok(sv_build_create(&p, &body, &ep, &err) == 0 && strcmp(ep, "/v1/videos/videos") == 0, "a create is built for its endpoint", err.message);
  ok(strcmp(sv_buf_cstr(&body), "{\"model\":\"videos\",\"prompt\":\"say \\\"hi\\\"\\n\",\"duration\":5,"
                                  "\"first_image\":\"https://e.com/1.png\",\"last_image\":\"https://e.com/2.png\"}") == 0,
     "the body escapes the prompt and sends legacy aliases under their current names", sv_buf_cstr(&body));
  sv_buf_free(&body);
  sv_buf_init(&path);
  sv_result_path("../a/b?c=1", 10, &path, &err);
  ok(strcmp(sv_buf_cstr(&path), "/v1/result/%2E%2E%2Fa%2Fb%3Fc%3D1") == 0, "a task id cannot leave the result path",
     sv_buf_cstr(&path));
  sv_buf_free(&path);
}

static void answers(void) {
  sv_error err;
  sv_answer a;
  char why[128];
  sv_json_member m[8];
  double d = 0;
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
    ok(sv_json_scan(doc, strlen(doc), m, 8, why, sizeof why) == 2 && m[1].type == 's',
       "the scanner lists top-level members", why);
  }
  ok(sv_json_scan("[1]", 3, m, 8, why, sizeof why) == -1, "the scanner wants an object", why);

  /* the retry policy */
  sv_error_clear(&err);
  err.status = 500;
  ok(!sv_retry_decide(SV_OP_CREATE, SV_TR_NONE, &err, 1, 2, 0.5, 60, 0.5, &d) && err.maybe_created,
     "a create is not resent after a 500, and may have been created", NULL);
  sv_error_clear(&err);
  ok(!sv_retry_decide(SV_OP_CREATE, SV_TR_TIMEOUT, &err, 1, 2, 0.5, 60, 0.5, &d) && err.maybe_created,
     "a create is not resent after a timeout", NULL);
  sv_error_clear(&err);
  ok(sv_retry_decide(SV_OP_CREATE, SV_TR_NOT_SENT, &err, 1, 2, 0.5, 60, 0.5, &d) && !err.maybe_created,
     "a create that never connected is resent", NULL);
  sv_error_clear(&err);
  err.status = 503;
  err.retry_after = 2;
  ok(sv_retry_decide(SV_OP_CREATE, SV_TR_NONE, &err, 1, 2, 0.5, 60, 0.5, &d) && d == 2,
     "a create is resent after a 503 with Retry-After, after that delay", NULL);
  sv_error_clear(&err);
  err.status = 503;
  ok(sv_retry_decide(SV_OP_QUERY, SV_TR_NONE, &err, 2, 2, 0.5, 60, 0.0, &d) && d >= 0.5 && d <= 1.0,
     "a query backs off exponentially with jitter", NULL);
  ok(!sv_retry_decide(SV_OP_QUERY, SV_TR_NONE, &err, 3, 2, 0.5, 60, 0.0, &d), "a query gives up after max_retries", NULL);
}

int main(void) {
  validator();
  building();
  answers();
  printf("1..%d\n# %d passed, %d failed\n", n_test, n_test - n_fail, n_fail);
  return n_fail ? 1 : 0;
}
