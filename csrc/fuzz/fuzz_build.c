/* The validator and the request builder on params decoded from the fuzz bytes: a
   few fields (names may repeat, values of every kind), maybe a list or a table,
   maybe extra text.  Properties: validation and building agree; a built body is
   one JSON object without a duplicate key, holding only the fields the builder
   writes and extra keys that are not fields of ours. */
#include "fuzz.h"

#include <math.h>

#define MAX_FIELDS 12
#define MAX_ITEMS 10

static const char *const strings[] = {
  "videos", "starvideos_o3", "videos_fast", "videos_stable", "videos_stable_fast", "a cat", "", " \t",
  "16:9", "9:16", "1:1", "21:9", "4:3", "720p", "1080p", "https://e.com/a.png", "http://127.0.0.1/v.mp4",
  "./cat.png", "https://", "http://h/\x01", "\xff\xfe", "say \"hi\"\n", "HTTPS://E.COM/x",
};
static const double numbers[] = { 0, 3, 4, 5, 9, 15, 16, 5.5, -1, -0.0, 1e308, -1e308, 2147483648.0,
                                   -2147483649.0, 4294967301.0, 1e-300 };
static const char *const extras[] = {
  "{}", "{ }", " {\n} ", "{\"seed\":42}", "{ \"seed\" : 1 , \"w\":[1,{\"model\":2}] }", "{\"model\":\"x\"}",
  "{\"mod\\u0065l\":1}", "{\"a\":1,\"a\":2}", "[]", "{} {}", "{\"a\":1}x", "{\"a\":", "\"{}\"", "{\"extra\":{}}",
  "{\"\\u0000\":null}", "{\"a\\/b\":true,\"a/b\":false}",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct pool {
  sv_field fields[MAX_FIELDS];
  sv_value items[MAX_FIELDS][MAX_ITEMS];
} pool;

static void decode_name(reader *r, const char **name, size_t *len) {
  unsigned sel = take_byte(r);
  if (sel < 208) {
    *name = sv_field_names[sel % 13];
    *len = strlen(*name);
  } else {
    *name = take_bytes(r, take_byte(r) % 20, len);
  }
}

static void decode_scalar(reader *r, sv_value *v, unsigned t) {
  unsigned sel;
  memset(v, 0, sizeof *v);
  switch (t) {
  case 0: v->type = SV_V_NIL; break;
  case 1: v->type = SV_V_BOOL; v->boolean = (int)(take_byte(r) & 1); break;
  case 2:
    v->type = SV_V_NUMBER;
    sel = take_byte(r);
    if (sel < 200 || r->left < sizeof v->num) {
      v->num = numbers[sel % COUNT(numbers)];
      if (sel % 17 == 16) v->num = sel % 2 ? HUGE_VAL : NAN;
    } else {
      memcpy(&v->num, r->p, sizeof v->num);
      r->p += sizeof v->num;
      r->left -= sizeof v->num;
    }
    break;
  case 4: /* a local file ({file = path}): its path from the strings, or bytes */
    v->type = SV_V_FILE;
    sel = take_byte(r);
    v->str = sel < 160 ? strings[sel % COUNT(strings)] : take_bytes(r, take_byte(r) % 40, &v->len);
    if (sel < 160) v->len = strlen(v->str);
    break;
  case 7: v->type = SV_V_OTHER; v->str = "function"; v->len = 8; break;
  default:
    v->type = SV_V_STRING;
    sel = take_byte(r);
    if (sel < 160) {
      v->str = strings[sel % COUNT(strings)];
      v->len = strlen(v->str);
    } else {
      v->str = take_bytes(r, take_byte(r) % 40, &v->len);
    }
  }
}

static void decode_value(reader *r, pool *pl, size_t slot, sv_value *v) {
  unsigned t = take_byte(r) % 9, k, n;
  if (t == 5 || t == 8) { /* a list */
    n = take_byte(r) % (MAX_ITEMS + 1);
    for (k = 0; k < n; k++) decode_scalar(r, &pl->items[slot][k], k % 5 == 4 ? take_byte(r) % 8 : 3);
    memset(v, 0, sizeof *v);
    v->type = SV_V_LIST;
    v->items = pl->items[slot];
    v->n = n;
  } else if (t == 6) { /* a table that is not a list */
    memset(v, 0, sizeof *v);
    v->type = SV_V_TABLE;
  } else {
    decode_scalar(r, v, t);
  }
}

typedef struct keys_seen {
  int bad; /* a key the builder must never write */
  const char *body;
} keys_seen;

static void check_key(void *ctx, const sv_json_member *m) {
  static const char *const written[] = { "model", "prompt", "duration", "ratio", "resolution", "first_image",
                                         "last_image", "referenceImages", "referenceVideos", "referenceAudios" };
  keys_seen *ks = ctx;
  size_t i;
  int ours = 0;
  for (i = 0; i < COUNT(written); i++)
    if (sv_json_key_eq(m, written[i], strlen(written[i]))) ours = 1;
  if (ours) return;
  /* not written by the builder: an extra key, which may not be a field name */
  for (i = 0; sv_field_names[i]; i++)
    if (sv_json_key_eq(m, sv_field_names[i], strlen(sv_field_names[i]))) ks->bad = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader r = { data, size };
  pool *pl = calloc(1, sizeof *pl);
  sv_params p;
  sv_error e1, e2;
  sv_buf body;
  const char *path = NULL;
  const sv_model *m = NULL;
  unsigned mode;
  size_t i;
  int v1, v2;

  if (!pl) abort();
  memset(&p, 0, sizeof p);
  /* a usual start (model, prompt, duration) so that the fuzzer reaches the rest */
  if (take_byte(&r) & 1) {
    pl->fields[0].name = "model"; pl->fields[0].name_len = 5;
    decode_scalar(&r, &pl->fields[0].value, 3);
    pl->fields[1].name = "prompt"; pl->fields[1].name_len = 6;
    decode_scalar(&r, &pl->fields[1].value, 3);
    pl->fields[2].name = "duration"; pl->fields[2].name_len = 8;
    decode_scalar(&r, &pl->fields[2].value, 2);
    p.n = 3;
  }
  for (i = take_byte(&r) % (MAX_FIELDS + 1 - p.n); i > 0; i--) {
    decode_name(&r, &pl->fields[p.n].name, &pl->fields[p.n].name_len);
    decode_value(&r, pl, p.n, &pl->fields[p.n].value);
    p.n++;
  }
  p.fields = pl->fields;
  mode = take_byte(&r) % 5;
  p.files = mode != 3; /* (mode 3: URLs only, as the service takes them) */
  if (mode == 1) {
    p.extra_json = NULL;
    p.extra_len = take_byte(&r);
  } else if (mode == 2 || mode == 3) {
    p.extra_json = extras[take_byte(&r) % COUNT(extras)];
    p.extra_len = strlen(p.extra_json);
  } else if (mode == 4) {
    p.extra_json = take_bytes(&r, r.left, &p.extra_len);
  }

  v1 = sv_validate(&p, &m, &e1);
  memset(&body, 0, sizeof body);
  v2 = sv_build_create(&p, &body, &path, &e2);
  PROPERTY(v1 == v2, "validation and building agree");
  {
    sv_buf warns = {0};
    const sv_warning *w;
    size_t k;
    sv_error e3;
    PROPERTY(sv_validate_warn(&p, NULL, &warns, &e3) == v1 || warns.oom, "validation with warnings agrees");
    PROPERTY(v1 == 0 || warns.len == 0, "an invalid request has no warnings");
    for (w = (const sv_warning *)(void *)warns.data, k = 0; k < warns.len / sizeof *w; k++)
      PROPERTY(strncmp(w[k].message, w[k].field, strlen(w[k].field)) == 0, "a warning's message names its field");
    sv_buf_free(&warns);
  }
  if (v2 == 0) {
    char why[160];
    keys_seen ks = { 0, NULL };
    sv_json_member dm;
    PROPERTY(path && m && strcmp(path, m->endpoint) == 0, "the endpoint is the model's");
    PROPERTY(sv_json_scan(body.data, body.len, why, sizeof why) >= 2, "a built body is one JSON object");
    PROPERTY(duplicate_key(body.data, body.len, NULL) == 0, "a built body has no duplicate key");
    ks.body = body.data;
    sv_json_each(body.data, body.len, check_key, &ks, NULL, 0);
    PROPERTY(!ks.bad, "extra never writes a field of ours");
    if (sv_json_get(body.data, body.len, "duration", &dm) == 1) {
      size_t k;
      long d = 0;
      PROPERTY(dm.type == 'n' && dm.val_len <= 3, "duration is a small number");
      for (k = 0; k < dm.val_len; k++) {
        PROPERTY(dm.val[k] >= '0' && dm.val[k] <= '9', "duration is whole");
        d = d * 10 + (dm.val[k] - '0');
      }
      PROPERTY(d >= m->duration_min && d <= m->duration_max, "duration is within the model's range");
    }
  } else {
    PROPERTY(e1.kind == SV_E_INVALID && e2.kind == SV_E_INVALID, "a refusal is invalid_request");
    PROPERTY(strcmp(e1.field, e2.field) == 0 && strcmp(e1.message, e2.message) == 0,
             "validation and building refuse alike");
    PROPERTY(e1.message[0] != '\0', "a refusal says why");
  }
  sv_buf_free(&body);
  free(pl);
  return 0;
}
