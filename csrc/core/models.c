/* The capability table (one row per model), the validator that reads it, and the
   request building that follows validation.  Rules: shared/api/README.md. */
#include "sv_core.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const ratios_o3[] = { "9:16", "1:1", "16:9", NULL };
static const char *const ratios_videos[] = { "21:9", "16:9", "4:3", "1:1", "3:4", "9:16", NULL };
static const char *const ratios_three[] = { "16:9", "9:16", "1:1", NULL };
static const char *const res_720[] = { "720p", NULL };

/* What the service ignores (field, when given beside, why: the documents' words).  O3's page
   (api/000, duration and ratio): "When using referenceVideos ... this field is ignored"; the
   Videos pages (api/001, 003, 004): the legacy alias beside its field "with the same value,
   first_image/last_image take precedence" (different values are a conflict, refused). */
static const sv_ignored ignored_o3[] = {
  { "duration", "referenceVideos", "the output duration is determined by the reference video" },
  { "ratio", "referenceVideos", "the aspect ratio follows the reference video's dimensions" },
  { NULL, NULL, NULL }
};
static const sv_ignored ignored_legacy[] = {
  { "image", "first_image", "the same URL; first_image takes precedence over its legacy alias" },
  { "lastFrameImage", "last_image", "the same URL; last_image takes precedence over its legacy alias" },
  { NULL, NULL, NULL }
};

/* name, endpoint, duration (required, min, max, default), ratios, default ratio,
   resolutions, prompt max chars, images, images with a video, videos, audios, legacy,
   the seconds of a lone reference video (min, max), what it ignores */
const sv_model sv_models[] = {
  { "starvideos_o3", "/v1/starvideos/videos", 0, 3, 15, 3, ratios_o3, "9:16", NULL, 0, 7, 4, 1, 0, 0, 3, 10, ignored_o3 },
  { "videos", "/v1/videos/videos", 1, 4, 15, 0, ratios_videos, "16:9", res_720, 0, 9, 9, 3, 3, 1, 0, 0, ignored_legacy },
  { "videos_fast", "/v1/videos/videos", 1, 4, 15, 0, ratios_three, "16:9", res_720, 1500, 4, 4, 3, 0, 1, 0, 0,
    ignored_legacy },
  { "videos_stable", "/v1/videos/videos", 1, 4, 15, 0, ratios_three, "16:9", res_720, 5000, 4, 4, 3, 1, 1, 0, 0,
    ignored_legacy },
  { "videos_stable_fast", "/v1/videos/videos", 1, 4, 15, 0, ratios_three, "16:9", res_720, 5000, 4, 4, 3, 1, 1, 0, 0,
    ignored_legacy },
};
const size_t sv_model_count = sizeof sv_models / sizeof sv_models[0];

/* In the order a body is written; F_FIRST to F_LASTFRAME are URLs, F_REFIMAGES to
   F_REFAUDIOS lists of URLs (the loops below take these runs). */
enum {
  F_MODEL, F_PROMPT, F_DURATION, F_RATIO, F_RESOLUTION, F_FIRST, F_LAST, F_IMAGE,
  F_LASTFRAME, F_REFIMAGES, F_REFVIDEOS, F_REFAUDIOS, F_EXTRA, F_COUNT
};

const char *const sv_field_names[] = {
  "model", "prompt", "duration", "ratio", "resolution", "first_image", "last_image",
  "image", "lastFrameImage", "referenceImages", "referenceVideos", "referenceAudios",
  "extra", NULL
};

const char *const *sv_media_fields(size_t *n) {
  *n = F_REFAUDIOS + 1 - F_FIRST;
  return &sv_field_names[F_FIRST];
}

#define MAX_URL 8192
#define MAX_PATH 4096 /* bytes of a local file's path (Linux's PATH_MAX) */
#define QUOTE_MAX 60

static const sv_model *model_find(const char *name, size_t len) {
  size_t i;
  for (i = 0; i < sv_model_count; i++)
    if (strlen(sv_models[i].name) == len && memcmp(sv_models[i].name, name, len) == 0)
      return &sv_models[i];
  return NULL;
}

/* The index of s[0, len) in the NULL-terminated words, or -1. */
static int word_index(const char *const *words, const char *s, size_t len) {
  int i;
  for (i = 0; words[i]; i++)
    if (strlen(words[i]) == len && memcmp(words[i], s, len) == 0) return i;
  return -1;
}

static int model_takes(const sv_model *m, int f) {
  if (f == F_RESOLUTION) return m->resolutions != NULL;
  if (f == F_IMAGE || f == F_LASTFRAME) return m->legacy_aliases;
  return 1;
}

/* "got ..." for a message, describing a value of the wrong kind. */
static void describe(sv_buf *b, const sv_value *v) {
  switch (v->type) {
  case SV_V_NIL: sv_buf_adds(b, "nothing"); break;
  case SV_V_BOOL: sv_buf_adds(b, v->boolean ? "true" : "false"); break;
  case SV_V_NUMBER:
    if (isnan(v->num)) sv_buf_adds(b, "NaN");
    else sv_buf_addf(b, "%.17g", v->num);
    break;
  case SV_V_STRING: sv_buf_adds(b, "a string "); sv_quote(b, v->str, v->len, QUOTE_MAX); break;
  case SV_V_LIST: sv_buf_addf(b, "a list of %zu", v->n); break;
  case SV_V_TABLE: sv_buf_adds(b, v->str ? v->str : "a table that is not a list"); break;
  case SV_V_FILE: sv_buf_adds(b, "a local file {file = "); sv_quote(b, v->str, v->len, QUOTE_MAX); sv_buf_adds(b, "}"); break;
  case SV_V_OTHER: sv_buf_addf(b, "a %.*s", (int)v->len, v->str ? v->str : "value"); break;
  }
}

static int bad(sv_error *err, const char *field, const char *expected, const sv_value *v) {
  sv_buf b = {0};
  describe(&b, v);
  sv_error_set(err, SV_E_INVALID, field, "%s: expected %s, got %s", field, expected, sv_buf_cstr(&b));
  sv_buf_free(&b);
  return -1;
}

/* Lower-case letters and digits only: "reference_images" ~ "referenceImages". */
static void fold(const char *s, size_t len, char *out, size_t outlen) {
  size_t i, j = 0;
  for (i = 0; i < len && j + 1 < outlen; i++)
    if (isalnum((unsigned char)s[i])) out[j++] = (char)tolower((unsigned char)s[i]);
  out[j] = '\0';
}

/* s for a message: as it is when it is short and plain (printable ASCII, no space
   when !spaces), else quoted. */
static void show(sv_buf *q, const char *s, size_t len, int spaces) {
  size_t i;
  for (i = 0; i < len && s[i] >= (spaces ? 0x20 : 0x21) && s[i] < 0x7F; i++) {}
  if (i == len && len <= QUOTE_MAX) sv_buf_add(q, s, len);
  else sv_quote(q, s, len, QUOTE_MAX);
}

static int unknown_field(const sv_model *m, const char *name, size_t len, sv_error *err) {
  char folded[64], known[64];
  const char *hint = NULL;
  int i;
  sv_buf b = {0}, q = {0};
  fold(name, len, folded, sizeof folded);
  for (i = 0; i < F_COUNT; i++) {
    fold(sv_field_names[i], strlen(sv_field_names[i]), known, sizeof known);
    if (strcmp(folded, known) == 0 && model_takes(m, i)) { hint = sv_field_names[i]; break; }
  }
  show(&q, name, len, 0);
  if (hint) {
    sv_buf_addf(&b, "%s: unknown field (did you mean \"%s\"?)", sv_buf_cstr(&q), hint);
  } else {
    sv_buf_addf(&b, "%s: unknown field for %s (it takes ", sv_buf_cstr(&q), m->name);
    for (i = 0; i < F_COUNT; i++)
      if (model_takes(m, i) && !(i == F_REFAUDIOS && m->max_audios == 0))
        sv_buf_addf(&b, "%s%s", i ? ", " : "", sv_field_names[i]);
    sv_buf_adds(&b, "; pass API additions in `extra`)");
  }
  sv_error_set(err, SV_E_INVALID, NULL, "%s", sv_buf_cstr(&b));
  /* the field is the name itself, unquoted */
  snprintf(err->field, sizeof err->field, "%.*s", (int)(len < sizeof err->field ? len : sizeof err->field - 1), name);
  sv_buf_free(&b);
  sv_buf_free(&q);
  return -1;
}

int sv_url_scheme(const char *s, size_t len) {
  size_t skip;
  if (len >= 7 && strncasecmp(s, "http://", 7) == 0) skip = 7;
  else if (len >= 8 && strncasecmp(s, "https://", 8) == 0) skip = 8;
  else return 0;
  if (len == skip || s[skip] == '/' || s[skip] == '?' || s[skip] == '#') return -1;
  return (int)skip;
}

/* A local file's path ({file = path}, with files): a name the system can open. */
static int check_file(const char *field, const sv_value *v, sv_error *err) {
  if (v->len == 0) return bad(err, field, "{file = path} with a path", v);
  if (memchr(v->str, '\0', v->len)) return bad(err, field, "{file = path} with a path without NUL bytes", v);
  if (v->len > MAX_PATH)
    return sv_error_set(err, SV_E_INVALID, field, "%s: expected {file = path} with a path of at most %d bytes, got %zu "
                        "bytes", field, MAX_PATH, v->len);
  return 0;
}

/* A reference: an http(s) URL, or with files a local file. */
static int check_url(const char *field, const sv_value *v, int files, sv_error *err) {
  size_t i;
  int scheme;
  if (files && v->type == SV_V_FILE) return check_file(field, v, err);
  if (v->type != SV_V_STRING) return bad(err, field, files ? "an http(s) URL or {file = path}" : "an http(s) URL", v);
  scheme = sv_url_scheme(v->str, v->len);
  if (scheme == 0) {
    sv_buf b = {0};
    sv_quote(&b, v->str, v->len, QUOTE_MAX);
    sv_error_set(err, SV_E_INVALID, field, "%s: expected an http(s) URL, got %s", field, sv_buf_cstr(&b));
    sv_buf_free(&b);
    return -1;
  }
  if (scheme < 0) return bad(err, field, "an http(s) URL with a host", v);
  if (v->len > MAX_URL) return sv_error_set(err, SV_E_INVALID, field, "%s: expected a URL of at most %d bytes, got %zu bytes", field, MAX_URL, v->len);
  for (i = 0; i < v->len; i++) {
    unsigned char c = (unsigned char)v->str[i];
    if (c <= 0x20 || c == 0x7F) return bad(err, field, "a URL without spaces or control characters", v);
  }
  if (sv_utf8_count(v->str, v->len) < 0) return bad(err, field, "a URL in valid UTF-8", v);
  return 0;
}

static int check_list(const char *field, const sv_value *v, int files, sv_error *err) {
  size_t i;
  char name[96];
  if (v->type != SV_V_LIST) return bad(err, field, files ? "a list of http(s) URLs or {file = path}s" : "a list of http(s) URLs", v);
  for (i = 0; i < v->n; i++) {
    snprintf(name, sizeof name, "%s[%zu]", field, i + 1);
    if (check_url(name, &v->items[i], files, err)) return -1;
  }
  return 0;
}

static size_t list_len(const sv_value *v) { return v && v->type == SV_V_LIST ? v->n : 0; }

static int too_many(sv_error *err, const char *field, const sv_model *m, size_t got, int max,
                    const char *what, const char *when) {
  if (max == 0)
    return sv_error_set(err, SV_E_INVALID, field, "%s: %s takes no %s, got %zu", field, m->name, what, got);
  return sv_error_set(err, SV_E_INVALID, field, "%s: expected at most %d %s on %s%s, got %zu",
                      field, max, what, m->name, when, got);
}

typedef struct view { const sv_value *v[F_COUNT]; } view;

static int check_prompt(const sv_model *m, const sv_value *p, sv_error *err) {
  long chars;
  size_t i;
  if (!p) return sv_error_set(err, SV_E_INVALID, "prompt", "prompt: required, expected a non-empty string");
  if (p->type != SV_V_STRING) return bad(err, "prompt", "a non-empty string", p);
  chars = sv_utf8_count(p->str, p->len);
  if (chars < 0) return sv_error_set(err, SV_E_INVALID, "prompt", "prompt: expected valid UTF-8 text, got invalid bytes");
  for (i = 0; i < p->len && isspace((unsigned char)p->str[i]); i++) {}
  if (i == p->len) return bad(err, "prompt", "a non-empty string", p);
  if (m->prompt_max && chars > m->prompt_max)
    return sv_error_set(err, SV_E_INVALID, "prompt", "prompt: expected at most %ld characters on %s, got %ld",
                        m->prompt_max, m->name, chars);
  return 0;
}

static int check_duration(const sv_model *m, const sv_value *d, sv_error *err) {
  char expected[64];
  snprintf(expected, sizeof expected, "a whole number of seconds from %d to %d", m->duration_min, m->duration_max);
  if (!d) {
    if (m->duration_required)
      return sv_error_set(err, SV_E_INVALID, "duration", "duration: required on %s, expected %s", m->name, expected);
    return 0;
  }
  /* finite, whole and within an int range, checked on the double before anything converts
     it (a cast of 1e308 to int is undefined) */
  if (d->type != SV_V_NUMBER || !isfinite(d->num) || d->num < m->duration_min || d->num > m->duration_max ||
      floor(d->num) != d->num)
    return bad(err, "duration", expected, d);
  return 0;
}

static int check_choice(const sv_model *m, const char *field, const char *const *words,
                        const sv_value *v, sv_error *err) {
  sv_buf b = {0};
  int rc;
  size_t i;
  if (!v || (v->type == SV_V_STRING && word_index(words, v->str, v->len) >= 0)) return 0;
  sv_buf_addf(&b, "one of ");
  for (i = 0; words[i]; i++) sv_buf_addf(&b, "%s%s", i ? ", " : "", words[i]);
  sv_buf_addf(&b, " on %s", m->name);
  rc = bad(err, field, sv_buf_cstr(&b), v);
  sv_buf_free(&b);
  return rc;
}

static int check_frames(const view *w, sv_error *err) {
  static const int frame[2] = { F_FIRST, F_LAST }, alias[2] = { F_IMAGE, F_LASTFRAME };
  const sv_value *v[2];
  int i;
  for (i = 0; i < 2; i++) {
    const sv_value *a = w->v[alias[i]];
    v[i] = w->v[frame[i]];
    if (a && v[i] && (a->type != v[i]->type || a->len != v[i]->len || memcmp(a->str, v[i]->str, a->len) != 0))
      return sv_error_set(err, SV_E_INVALID, sv_field_names[alias[i]], "%s: conflicts with %s (the legacy alias and "
                          "the field differ)", sv_field_names[alias[i]], sv_field_names[frame[i]]);
    if (!v[i]) v[i] = a;
  }
  if (!v[0] && !v[1]) return 0;
  for (i = F_REFIMAGES; i <= F_REFAUDIOS; i++)
    if (list_len(w->v[i]) > 0)
      return sv_error_set(err, SV_E_INVALID, sv_field_names[i],
                          "%s: cannot be combined with first_image/last_image (frame mode and reference mode are exclusive)",
                          sv_field_names[i]);
  i = v[0] ? 1 : 0; /* the one missing, if any */
  if (!v[i])
    return sv_error_set(err, SV_E_INVALID, sv_field_names[frame[i]], "%s: required together with %s",
                        sv_field_names[frame[i]], sv_field_names[frame[1 - i]]);
  return 0;
}

static int check_counts(const sv_model *m, const view *w, sv_error *err) {
  size_t images = list_len(w->v[F_REFIMAGES]), videos = list_len(w->v[F_REFVIDEOS]);
  size_t audios = list_len(w->v[F_REFAUDIOS]);
  if (videos > (size_t)m->max_videos)
    return too_many(err, "referenceVideos", m, videos, m->max_videos, "reference videos", "");
  if (videos > 0 && images > (size_t)m->max_images_with_video)
    return too_many(err, "referenceImages", m, images, m->max_images_with_video, "reference images", " with a reference video");
  if (images > (size_t)m->max_images)
    return too_many(err, "referenceImages", m, images, m->max_images, "reference images", "");
  if (audios > (size_t)m->max_audios)
    return too_many(err, "referenceAudios", m, audios, m->max_audios, "audio references", "");
  return 0;
}

/* A key of the pass-through object that cannot be a field's name: empty, or
   digits only (what a Lua table's list part becomes in JSON). */
static int not_a_name(const sv_json_member *m) {
  size_t i;
  for (i = 0; i < m->key_len && m->key[i] >= '0' && m->key[i] <= '9'; i++) {}
  return i == m->key_len;
}

#define EXTRA_EXPECTED "extra: expected a table of field names to values"

/* extra's text s[0, len) when it is not one JSON object (why): -1 with err
   saying why, or which value it is instead, with its text. */
static int not_an_object(const char *s, size_t len, const char *why, sv_error *err) {
  size_t at = 0;
  sv_buf q = {0};
  while (at < len && memchr(" \t\n\r", s[at], 4)) at++;
  while (len > at && memchr(" \t\n\r", s[len - 1], 4)) len--;
  if (at == len || s[at] == '{')
    return sv_error_set(err, SV_E_INVALID, "extra", "extra: expected one JSON object, got text that is not (%s)", why);
  show(&q, s + at, len - at, 1);
  sv_error_set(err, SV_E_INVALID, "extra", "%s, got %s%s", EXTRA_EXPECTED,
               s[at] == '"' ? "a string " : s[at] == '[' ? "a list " : s[at] == 't' || s[at] == 'f' || s[at] == 'n' ? "" : "the number ",
               sv_buf_cstr(&q));
  sv_buf_free(&q);
  return -1;
}

/* The one check of `extra`, on the one form it has: the JSON text that is sent
   (p->extra_json; the Lua side encodes the table with lua-cjson), read once.
   Exactly one JSON object, every key a name, no key twice, no key that is a
   field of our own (the builder writes those), whatever bytes a C host hands over. */
static int check_extra_json(const sv_params *p, sv_error *err) {
  char why[128], name[96];
  sv_buf ms = {0}, dup = {0}, q = {0};
  const sv_json_member *m;
  int n, i, rc = 0;
  if (!p->extra_json && p->extra_len)
    return sv_error_set(err, SV_E_INVALID, "extra", "extra: expected the text of a JSON object, got no text with a length of %zu",
                        p->extra_len);
  if (!p->extra_json) return 0;
  n = sv_json_read(p->extra_json, p->extra_len, NULL, &ms, why, sizeof why);
  m = (const sv_json_member *)(void *)ms.data;
  for (i = 0; !ms.oom && i < n && !not_a_name(&m[i]); i++) {}
  if (n < 0) {
    rc = not_an_object(p->extra_json, p->extra_len, why, err);
  } else if (!ms.oom && i < n) {
    sv_quote(&q, m[i].key, m[i].key_len, QUOTE_MAX);
    rc = sv_error_set(err, SV_E_INVALID, "extra", "%s, got a key that is not a name (%s)", EXTRA_EXPECTED,
                      sv_buf_cstr(&q));
  } else if (ms.oom || (rc = sv_json_duplicate_in(m, (size_t)n, &dup)) < 0) {
    rc = sv_error_set(err, SV_E_IO, "extra", "extra: out of memory checking the JSON text");
  } else if (rc == 1) {
    sv_quote(&q, sv_buf_cstr(&dup), dup.len, QUOTE_MAX);
    rc = sv_error_set(err, SV_E_INVALID, "extra", "extra: the key %s is given twice", sv_buf_cstr(&q));
  }
  for (i = 0; rc == 0 && i < F_COUNT; i++)
    if (sv_json_find(m, (size_t)n, sv_field_names[i], NULL) > 0) {
      snprintf(name, sizeof name, "extra.%s", sv_field_names[i]);
      rc = sv_error_set(err, SV_E_INVALID, name, "%s: %s is a checked field; set it at the top level, not in extra",
                        name, sv_field_names[i]);
    }
  sv_buf_free(&ms);
  sv_buf_free(&dup);
  sv_buf_free(&q);
  return rc;
}

static int name_less(const sv_field *a, const sv_field *b) {
  size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
  int c = memcmp(a->name, b->name, n);
  return c < 0 || (c == 0 && a->name_len < b->name_len);
}

/* The fields given into w by name (nil, and an empty list, count as absent),
   the first unknown name in byte order into *unknown: 0, or -1 with err for a
   field named twice. */
static int gather(const sv_params *p, view *w, const sv_field **unknown, sv_error *err) {
  size_t i;
  const sv_field *seen[F_COUNT] = {0};
  memset(w, 0, sizeof *w);
  for (i = 0; i < p->n; i++) {
    const sv_field *f = &p->fields[i];
    int idx = word_index(sv_field_names, f->name, f->name_len);
    if (idx >= 0) {
      /* a C host may name a field twice (a Lua table cannot): which one would count? */
      if (seen[idx])
        return sv_error_set(err, SV_E_INVALID, sv_field_names[idx], "%s: given twice (each field may appear once)",
                            sv_field_names[idx]);
      seen[idx] = f;
    }
    if (f->value.type == SV_V_NIL) continue;
    if (idx < 0) {
      /* report the first unknown name in byte order, whatever the host's order */
      if (!*unknown || name_less(f, *unknown)) *unknown = f;
      continue;
    }
    if (idx < F_REFIMAGES || idx > F_REFAUDIOS || f->value.type != SV_V_LIST || f->value.n > 0)
      w->v[idx] = &f->value; /* (an empty list counts as absent) */
  }
  return 0;
}

/* The model w names, or NULL with err (none, or one of no known name). */
static const sv_model *model_of(const view *w, sv_error *err) {
  size_t i;
  sv_buf b = {0};
  const sv_value *v = w->v[F_MODEL];
  const sv_model *m = v && v->type == SV_V_STRING ? model_find(v->str, v->len) : NULL;
  if (m) return m;
  sv_buf_adds(&b, "one of ");
  for (i = 0; i < sv_model_count; i++) sv_buf_addf(&b, "%s%s", i ? ", " : "", sv_models[i].name);
  if (v) bad(err, "model", sv_buf_cstr(&b), v);
  else sv_error_set(err, SV_E_INVALID, "model", "model: required, expected %s", sv_buf_cstr(&b));
  sv_buf_free(&b);
  return NULL;
}

/* One sv_warning into *out for each of the row's ignored fields given beside its `when`
   (a valid request's view w). */
static void warnings_of(const sv_model *m, const view *w, sv_buf *out) {
  const sv_ignored *ig;
  for (ig = m->ignored; ig && ig->field; ig++) {
    int f = word_index(sv_field_names, ig->field, strlen(ig->field));
    int when = word_index(sv_field_names, ig->when, strlen(ig->when));
    sv_warning wn;
    if (f < 0 || when < 0 || !w->v[f] || !w->v[when]) continue;
    memset(&wn, 0, sizeof wn);
    snprintf(wn.field, sizeof wn.field, "%s", ig->field);
    snprintf(wn.because, sizeof wn.because, "%s", ig->when);
    snprintf(wn.message, sizeof wn.message, "%s: ignored by %s beside %s (%s)", ig->field, m->name, ig->when, ig->why);
    sv_buf_add(out, &wn, sizeof wn);
  }
}

/* Validation proper.  w gets the values checked, which are the values the builder
   sends: one source for both, so that nothing unchecked can reach a body. */
static int validate(const sv_params *p, const sv_model **model, view *w, sv_error *err) {
  size_t i;
  const sv_model *m;
  const sv_field *unknown = NULL;

  sv_error_clear(err);
  if (gather(p, w, &unknown, err) || !(m = model_of(w, err))) return -1;
  if (unknown) return unknown_field(m, unknown->name, unknown->name_len, err);
  for (i = 0; i < F_COUNT; i++)
    if (w->v[i] && !model_takes(m, (int)i)) return unknown_field(m, sv_field_names[i], strlen(sv_field_names[i]), err);

  if (check_prompt(m, w->v[F_PROMPT], err)) return -1;
  if (check_duration(m, w->v[F_DURATION], err)) return -1;
  if (check_choice(m, "ratio", m->ratios, w->v[F_RATIO], err)) return -1;
  if (m->resolutions && check_choice(m, "resolution", m->resolutions, w->v[F_RESOLUTION], err)) return -1;
  for (i = F_FIRST; i <= F_LASTFRAME; i++)
    if (w->v[i] && check_url(sv_field_names[i], w->v[i], p->files, err)) return -1;
  for (i = F_REFIMAGES; i <= F_REFAUDIOS; i++)
    if (w->v[i] && check_list(sv_field_names[i], w->v[i], p->files, err)) return -1;
  if (check_frames(w, err)) return -1;
  if (check_counts(m, w, err)) return -1;
  /* extra has one form, its JSON text (p->extra_json), checked below */
  if (w->v[F_EXTRA])
    return sv_error_set(err, SV_E_INVALID, "extra", "extra: expected as the JSON text of the params (extra_json), got a field");
  if (check_extra_json(p, err)) return -1;
  if (model) *model = m;
  return 0;
}

int sv_validate(const sv_params *p, const sv_model **model, sv_error *err) {
  view w;
  return validate(p, model, &w, err);
}

int sv_validate_warn(const sv_params *p, const sv_model **model, sv_buf *warnings, sv_error *err) {
  view w;
  const sv_model *m;
  if (validate(p, &m, &w, err)) return -1;
  if (warnings) warnings_of(m, &w, warnings);
  if (warnings && warnings->oom) return sv_error_set(err, SV_E_IO, NULL, "out of memory listing the warnings");
  if (model) *model = m;
  return 0;
}

/* ------------------------------------------------------------ building */

static void member(sv_buf *b, int *first, const char *name) {
  if (!*first) sv_buf_add(b, ",", 1);
  *first = 0;
  sv_json_string(b, name, strlen(name));
  sv_buf_add(b, ":", 1);
}

/* A reference in a body: its URL, or a local file's {"file": path} (the fingerprint's form: sv_build_create). */
static void reference(sv_buf *b, const sv_value *v) {
  if (v->type == SV_V_FILE) sv_buf_adds(b, "{\"file\":");
  sv_json_string(b, v->str, v->len);
  if (v->type == SV_V_FILE) sv_buf_add(b, "}", 1);
}

/* Copy one member of the pass-through object: its key and value texts as the
   scanner delimited them, so no whitespace or brace of the host's text matters. */
static void splice(void *ctx, const sv_json_member *m) {
  sv_buf *body = ctx;
  sv_buf_add(body, ",\"", 2);
  sv_buf_add(body, m->key, m->key_len);
  sv_buf_add(body, "\":", 2);
  sv_buf_add(body, m->val, m->val_len);
}

int sv_build_create(const sv_params *p, sv_buf *body, const char **path, sv_error *err) {
  const sv_model *m;
  const sv_value *v;
  view w;
  int first = 1, f;

  if (validate(p, &m, &w, err)) return -1;
  sv_buf_add(body, "{", 1);
  for (f = F_MODEL; f <= F_LAST; f++) {
    v = w.v[f];
    /* legacy aliases travel under their current names */
    if (!v && (f == F_FIRST || f == F_LAST)) v = w.v[f == F_FIRST ? F_IMAGE : F_LASTFRAME];
    if (!v) continue;
    member(body, &first, sv_field_names[f]);
    if (f == F_DURATION) sv_buf_addf(body, "%d", (int)v->num); /* validated: whole and within an int range */
    else reference(body, v);
  }
  for (f = F_REFIMAGES; f <= F_REFAUDIOS; f++) {
    size_t k;
    if (!(v = w.v[f])) continue; /* validated: a list of one URL or more */
    member(body, &first, sv_field_names[f]);
    sv_buf_add(body, "[", 1);
    for (k = 0; k < v->n; k++) {
      if (k) sv_buf_add(body, ",", 1);
      reference(body, &v->items[k]);
    }
    sv_buf_add(body, "]", 1);
  }
  /* the pass-through members, checked by validate(): one object, no key of ours */
  if (p->extra_json) sv_json_each(p->extra_json, p->extra_len, splice, body, NULL, 0);
  sv_buf_add(body, "}", 1);
  *path = m->endpoint;
  if (body->oom) return sv_error_set(err, SV_E_IO, NULL, "out of memory building the request");
  return 0;
}

int sv_result_path(const char *id, size_t len, sv_buf *out, sv_error *err) {
  size_t i;
  if (len == 0) return sv_error_set(err, SV_E_INVALID, "id", "id: expected a non-empty task id");
  if (len > SV_ID_MAX)
    return sv_error_set(err, SV_E_INVALID, "id", "id: expected at most %d bytes, got %zu", SV_ID_MAX, len);
  sv_buf_adds(out, "/v1/result/");
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)id[i];
    /* unreserved characters but '.', so that "." and ".." are never path segments */
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        c == '-' || c == '_' || c == '~')
      sv_buf_add(out, &id[i], 1);
    else
      sv_buf_addf(out, "%%%02X", c);
  }
  return 0;
}

/* ------------------------------------------------------------ media rules */

/* The documents' media limits (shared/api/README.md), the same for every model
   but a lone video's seconds (the table's last column).  "MB" read as MiB. */
#define MB (1024.0 * 1024.0)
#define IMAGE_BYTES (20 * MB)
#define VIDEOS_BYTES (200 * MB)
#define VIDEOS_SECONDS 15.0
#define AUDIOS_SECONDS 15.0
#define SIDE_MIN 720.0
#define SIDE_MAX 2160.0

/* The media a field of sv_field_names takes (F_FIRST to F_REFIMAGES: images), or 0. */
static sv_media_kind media_kind(const char *name) {
  int f = word_index(sv_field_names, name, strlen(name));
  if (f == F_REFVIDEOS) return SV_MEDIA_VIDEO;
  if (f == F_REFAUDIOS) return SV_MEDIA_AUDIO;
  return f >= F_FIRST && f <= F_REFIMAGES ? SV_MEDIA_IMAGE : 0;
}

SV_PRINTF(4, 5) static void finding(sv_buf *out, const char *field, int definite, const char *fmt, ...) {
  sv_media_finding f = {0};
  va_list ap;
  int used;
  snprintf(f.field, sizeof f.field, "%s", field);
  used = snprintf(f.message, sizeof f.message, "%s: ", field);
  va_start(ap, fmt);
  if (used > 0 && (size_t)used < sizeof f.message) vsnprintf(f.message + used, sizeof f.message - (size_t)used, fmt, ap);
  va_end(ap);
  f.definite = definite;
  sv_buf_add(out, &f, sizeof f);
}

/* seconds for a message: at most two decimals, no trailing zeros */
static const char *secs(char *b, size_t n, double s) {
  size_t len;
  snprintf(b, n, "%.2f", s);
  len = strlen(b);
  while (len > 0 && b[len - 1] == '0') b[--len] = '\0';
  if (len > 0 && b[len - 1] == '.') b[--len] = '\0';
  return b;
}

/* a reference video's own rules: its frame size and, on a model with one, its seconds */
static void video_rules(const sv_model *md, const char *field, const sv_media *v, sv_buf *out) {
  double side = v->width < v->height ? v->width : v->height;
  char s[32];
  if (v->width <= 0 || v->height <= 0)
    finding(out, field, 0, "the video's width and height could not be read; each reference video's shorter side "
                           "must be 720 to 2160 px");
  else if (side < SIDE_MIN || side > SIDE_MAX)
    finding(out, field, 1, "the video is %.0fx%.0f px; each reference video's shorter side must be 720 to 2160 px",
            v->width, v->height);
  if (v->duration < 0)
    finding(out, field, 0, "the video's duration could not be read; reference videos may last 15 s in total");
  else if (md->video_max && (v->duration < md->video_min || v->duration > md->video_max))
    finding(out, field, 1, "the video is %s s long; %s takes one reference video of %d to %d s",
            secs(s, sizeof s, v->duration), md->name, md->video_min, md->video_max);
}

/* the running total of a kind (bytes when max is in MB, else seconds): a definite
   finding at the item that takes it past max, and none after */
static void total(sv_buf *out, const char *field, double *sum, double add, double max, const char *what,
                  const char *rule) {
  char s[32], n[24];
  if (*sum > max) return;
  *sum += add;
  if (*sum <= max) return;
  if (max >= MB) snprintf(s, sizeof s, "%.1f MB", *sum / MB);
  else snprintf(s, sizeof s, "%s s", secs(n, sizeof n, *sum));
  finding(out, field, 1, "with it the reference %s come to %s in total; %s", what, s, rule);
}

/* an image's own rules: its bytes, and its shorter side against min_side (the user's: a
   refusal) and note_side (a note) */
static void image_rules(const sv_media_item *it, double min_side, double note_side, sv_buf *out) {
  const sv_media *v = it->info;
  double side = v->width < v->height ? v->width : v->height;
  if (v->size < 0) finding(out, it->field, 0, "the image's size is unknown; each image must be under 20 MB");
  else if (v->size >= IMAGE_BYTES)
    finding(out, it->field, 1, "the image is %.1f MB; each image must be under 20 MB", v->size / MB);
  if (side <= 0 && min_side > 0)
    finding(out, it->field, 0, "the image's width and height could not be read; min_image_side is %g px", min_side);
  else if (side > 0 && side < min_side)
    finding(out, it->field, 1, "the image is %.0fx%.0f px; min_image_side refuses a shorter side under %g px",
            v->width, v->height, min_side);
  else if (side > 0 && side < note_side)
    finding(out, it->field, 0, "the image is %.0fx%.0f px, a shorter side under %g px: the service may refuse it as "
            "too low a resolution (min_image_side = N refuses such an image here)", v->width, v->height, note_side);
}

int sv_media_check(const char *model, const sv_media_item *items, size_t n, double min_side, double note_side,
                   sv_buf *out, sv_error *err) {
  const sv_model *md = model_find(model, strlen(model));
  double vsec = 0, vbytes = 0, asec = 0;
  size_t i;
  char rule[96];
  if (!md) return sv_error_set(err, SV_E_INVALID, "model", "model: unknown model \"%.60s\"", model);
  for (i = 0; i < n; i++) {
    const sv_media_item *it = &items[i];
    const sv_media *v = it->info;
    sv_media_kind want = media_kind(it->name);
    if (!want) return sv_error_set(err, SV_E_INVALID, it->field, "%.60s: not a media field", it->name);
    if (it->status && (it->status < 200 || it->status > 299)) {
      int gone = it->status == 401 || it->status == 403 || it->status == 404 || it->status == 410;
      finding(out, it->field, gone, "the URL answered HTTP %ld", it->status);
    } else if (!v) {
      finding(out, it->field, 0, "the media could not be read; %s takes %s media", it->name, sv_media_kind_name(want));
    } else if (v->kind != want) {
      finding(out, it->field, 1, "the URL holds %s%s (%s)%s; %s takes %s media", sv_media_kind_name(v->kind),
              v->kind == SV_MEDIA_TEXT ? "" : " media", v->type ? v->type : "?",
              v->kind == SV_MEDIA_TEXT ? ", not media" : "", it->name, sv_media_kind_name(want));
    } else if (want == SV_MEDIA_IMAGE) {
      image_rules(it, min_side, note_side, out);
    } else if (want == SV_MEDIA_VIDEO) {
      video_rules(md, it->field, v, out);
      snprintf(rule, sizeof rule, "%s takes at most 15 s of reference video", md->name);
      if (v->duration >= 0) total(out, it->field, &vsec, v->duration, VIDEOS_SECONDS, "videos", rule);
      if (v->size < 0) finding(out, it->field, 0, "the video's size is unknown; reference videos may be 200 MB in total");
      else total(out, it->field, &vbytes, v->size, VIDEOS_BYTES, "videos", "the limit is 200 MB");
    } else if (v->duration < 0) {
      finding(out, it->field, 0, "the audio's duration could not be read; reference audios may last 15 s in total");
    } else {
      total(out, it->field, &asec, v->duration, AUDIOS_SECONDS, "audios", "the limit is 15 s");
    }
  }
  if (out->oom) return sv_error_set(err, SV_E_IO, NULL, "out of memory checking the media");
  return 0;
}
