/* The JSON scanner, the duplicate-key check and the prefix id reader, on any bytes.
   Beyond "no crash": what the scanner accepts survives re-serialising its members,
   the three functions agree with one another, and ids round-trip. */
#include "fuzz.h"

typedef struct members {
  sv_json_member *m;
  size_t n, cap;
} members;

static void collect(void *ctx, const sv_json_member *m) {
  members *l = ctx;
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 16;
    l->m = realloc(l->m, l->cap * sizeof *l->m);
    if (!l->m) abort();
  }
  l->m[l->n++] = *m;
}

/* an unescaped string goes back through sv_json_string and comes out the same */
static void round_trip(const char *val, size_t len) {
  sv_buf a, enc, b;
  char why[128];
  memset(&a, 0, sizeof a);
  memset(&enc, 0, sizeof enc);
  memset(&b, 0, sizeof b);
  PROPERTY(sv_json_unescape(val, len, &a) == 0, "a string the scanner accepted unescapes");
  sv_buf_adds(&enc, "{\"k\":");
  sv_json_string(&enc, a.data ? a.data : "", a.len);
  sv_buf_adds(&enc, "}");
  PROPERTY(sv_json_scan(enc.data, enc.len, why, sizeof why) == 1, "sv_json_string writes valid JSON");
  PROPERTY(sv_json_unescape(enc.data + 5, enc.len - 6, &b) == 0, "an encoded string unescapes");
  PROPERTY(a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0), "unescape(string(x)) == x");
  sv_buf_free(&a);
  sv_buf_free(&enc);
  sv_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  char why[160], id[SV_ID_MAX + 1], id2[SV_ID_MAX + 1];
  members l = { NULL, 0, 0 };
  sv_buf dup;
  int n, n2, d, has_id;
  size_t i;

  n = sv_json_scan(text, size, why, sizeof why);
  n2 = sv_json_each(text, size, collect, &l, NULL, 0);
  PROPERTY(n == n2, "sv_json_scan and sv_json_each agree");
  PROPERTY(n < 0 || (size_t)n == l.n, "every member of an accepted object is visited");
  PROPERTY(n >= 0 || why[0] != '\0', "a refusal says why");

  memset(&dup, 0, sizeof dup);
  d = duplicate_key(text, size, &dup);
  PROPERTY((d == -1) == (n < 0), "the duplicate check refuses exactly what the scanner refuses");

  /* the members visited, complete or from a prefix, are well-formed on their own */
  for (i = 0; i < l.n; i++) {
    const sv_json_member *m = &l.m[i];
    sv_buf k;
    memset(&k, 0, sizeof k);
    round_trip(m->key - 1, m->key_len + 2);
    if (m->type == 's') round_trip(m->val, m->val_len);
    if (m->type == 'o') PROPERTY(sv_json_scan(m->val, m->val_len, why, sizeof why) >= 0, "a member object scans alone");
    PROPERTY(sv_json_unescape(m->key - 1, m->key_len + 2, &k) == 0, "keys unescape");
    PROPERTY(sv_json_key_eq(m, k.data ? k.data : "", k.len), "a key equals its unescaped self");
    /* without a duplicate, each key (the ones a C string can name) is found once */
    if (n >= 0 && d == 0 && i < 16 && !memchr(k.data ? k.data : "", '\0', k.len)) {
      char *key = dup_cstr(k.data ? k.data : "", k.len);
      PROPERTY(sv_json_get(text, size, key, NULL) == 1, "a key of an object without duplicates is found once");
      free(key);
    }
    sv_buf_free(&k);
  }
  if (d == 1 && !memchr(dup.data ? dup.data : "", '\0', dup.len)) {
    char *key = dup_cstr(dup.data ? dup.data : "", dup.len);
    PROPERTY(sv_json_get(text, size, key, NULL) >= 2, "the duplicate key named appears twice");
    free(key);
  }

  /* re-serialised members: the same object, compact */
  if (n >= 0) {
    sv_buf again;
    sv_buf dup2;
    memset(&again, 0, sizeof again);
    memset(&dup2, 0, sizeof dup2);
    sv_buf_add(&again, "{", 1);
    for (i = 0; i < l.n; i++) {
      if (i) sv_buf_add(&again, ",", 1);
      sv_buf_add(&again, "\"", 1);
      sv_buf_add(&again, l.m[i].key, l.m[i].key_len);
      sv_buf_add(&again, "\":", 2);
      sv_buf_add(&again, l.m[i].val, l.m[i].val_len);
    }
    sv_buf_add(&again, "}", 1);
    PROPERTY(sv_json_scan(again.data, again.len, why, sizeof why) == n, "re-serialised members scan the same");
    PROPERTY(duplicate_key(again.data, again.len, &dup2) == d, "re-serialising keeps duplicates");
    PROPERTY(dup.len == dup2.len && (dup.len == 0 || memcmp(dup.data, dup2.data, dup.len) == 0),
             "re-serialising names the same duplicate");
    sv_buf_free(&again);
    sv_buf_free(&dup2);
  }

  /* the prefix id: a usable id, the first top-level string "id", stable under cuts */
  has_id = sv_json_prefix_id(text, size, id, sizeof id) == 0;
  if (has_id) {
    sv_buf enc;
    PROPERTY(sv_task_id_ok(id, strlen(id)), "an id read is one that can be polled");
    memset(&enc, 0, sizeof enc);
    sv_buf_adds(&enc, "{\"id\":");
    sv_json_string(&enc, id, strlen(id));
    sv_buf_adds(&enc, "}");
    PROPERTY(sv_json_prefix_id(enc.data, enc.len, id2, sizeof id2) == 0 && strcmp(id, id2) == 0,
             "an id round-trips through sv_json_string");
    sv_buf_free(&enc);
    if (n >= 0 && size > 0)
      PROPERTY(sv_json_prefix_id(text, size - 1, id2, sizeof id2) == 0 && strcmp(id, id2) == 0,
               "cutting the last byte of a whole object keeps its id");
  }
  if (size > 1 && sv_json_prefix_id(text, size / 2, id2, sizeof id2) == 0)
    PROPERTY(has_id && strcmp(id, id2) == 0, "the id read from a prefix is the id of the whole text");
  if (n >= 0) {
    /* the first string id among the members visited */
    const char *want = NULL;
    for (i = 0; i < l.n && !want; i++)
      if (l.m[i].type == 's' && sv_json_key_eq(&l.m[i], "id", 2)) want = l.m[i].val;
    PROPERTY(!has_id || want != NULL, "an id is read only from a top-level \"id\" string");
  }

  sv_buf_free(&dup);
  free(l.m);
  return 0;
}
