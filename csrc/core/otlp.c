/* OpenTelemetry's OTLP/HTTP JSON of the CLIENT span of an HTTP exchange (extras/trace.lua, docs/observability.md):
   written at its export from the values the exchange left, so that no JSON is made while the client works, with
   the attributes of the stable HTTP client conventions (http.request.method, server.address, server.port,
   url.full without credentials nor query values, http.response.status_code, http.request.resend_count,
   error.type).  Span ids come from a splitmix64 sequence the caller seeds.  Each span is written in one pass
   into room reserved for it (a few hundred bytes a span: this runs for every exchange a client makes); the
   request's attributes are copied from the last span's when its method and URL are the same (a task's polls). */
#include "sv_core.h"

#include <string.h>

/* Write the string literal lit at w, and move w past it. */
#define PUT(w, lit) (memcpy((w), (lit), sizeof(lit) - 1), (w) += sizeof(lit) - 1)

static char *put_hex64(char *w, unsigned long long v) {
  static const char hex[] = "0123456789abcdef";
  int i;
  for (i = 15; i >= 0; i--, v >>= 4) w[i] = hex[v & 15];
  return w + 16;
}

static char *put_uint(char *w, unsigned long long v) {
  static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                              "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                              "8081828384858687888990919293949596979899";
  char s[24];
  size_t i = sizeof s, n;
  while (v >= 100) { /* two digits a division */
    unsigned d = (unsigned)(v % 100) * 2;
    v /= 100;
    s[--i] = pairs[d + 1], s[--i] = pairs[d];
  }
  if (v >= 10) s[--i] = pairs[v * 2 + 1], s[--i] = pairs[v * 2];
  else s[--i] = (char)('0' + (int)v);
  for (n = i; n < sizeof s; n++) *w++ = s[n];
  return w;
}

/* Unix time t as OTLP's JSON writes its nanoseconds (a 64-bit integer: a decimal string), to the microsecond. */
static char *put_nanos(char *w, double t) {
  *w++ = '"';
  w = put_uint(w, t > 0 ? (unsigned long long)(t * 1e6) : 0);
  PUT(w, "000\"");
  return w;
}

static unsigned long long span_id(unsigned long long *state) {
  unsigned long long z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return z ? z : 1; /* (an all-zero id is invalid) */
}

/* Where u's authority begins (past "scheme://"), or 0 when it has none. */
static size_t authority(const char *u, size_t n) {
  size_t i;
  for (i = 0; i + 2 < n && u[i] != '/' && u[i] != '?' && u[i] != '#'; i++)
    if (u[i] == ':' && u[i + 1] == '/' && u[i + 2] == '/') return i + 3;
  return 0;
}

/* The URL as url.full carries it, inside a JSON string: no fragment, credentials REDACTED:REDACTED, each query
   value REDACTED (a video URL's query signs it).  At most 6 bytes written for each of u's. */
static char *put_redacted(char *w, const char *u, size_t n) {
  const char *hash = memchr(u, '#', n), *q, *at = NULL;
  size_t i, auth = authority(u, n);
  if (hash) n = (size_t)(hash - u);
  for (i = auth; auth && i < n && u[i] != '/' && u[i] != '?'; i++) if (u[i] == '@') at = u + i;
  q = memchr(u, '?', n);
  if (at && (!q || at < q)) {
    w = sv_json_put(w, u, auth);
    PUT(w, "REDACTED:REDACTED");
    w = sv_json_put(w, at, (size_t)((q ? q : u + n) - at));
  } else {
    w = sv_json_put(w, u, (size_t)((q ? q : u + n) - u));
  }
  for (i = q ? (size_t)(q - u) : n; i < n;) { /* ?k=v&k=v: each k kept, each v REDACTED */
    size_t j = i + 1;
    while (j < n && u[j] != '&' && u[j] != '=') j++;
    w = sv_json_put(w, u + i, j - i);
    if (j < n && u[j] == '=') {
      PUT(w, "=REDACTED");
      while (j < n && u[j] != '&') j++;
    }
    i = j;
  }
  return w;
}

/* cache->attrs: the server.address and server.port attributes of u's origin, its credentials left out (none
   when that is not http(s)://host[:port]); made again only when the origin is another than the last one's. */
static void server(sv_otlp_cache *cache, const char *u, size_t n) {
  char origin[sizeof cache->origin];
  sv_url p;
  sv_error e;
  size_t auth = authority(u, n), end = auth, from = auth, len;
  char *w = cache->attrs;
  while (auth && end < n && u[end] != '/' && u[end] != '?' && u[end] != '#') {
    if (u[end] == '@') from = end + 1;
    end++;
  }
  len = auth + end - from;
  if (auth && len == cache->origin_len && memcmp(cache->origin, u, auth) == 0 &&
      memcmp(cache->origin + auth, u + from, end - from) == 0) return;
  cache->origin_len = cache->attrs_len = 0;
  if (!auth || len > sizeof origin || end - from > 253) return;
  memcpy(origin, u, auth);
  memcpy(origin + auth, u + from, end - from);
  if (sv_url_parse(origin, len, "url", SV_URL_BASE, &p, &e) != 0) return;
  PUT(w, ",{\"key\":\"server.address\",\"value\":{\"stringValue\":\"");
  if (origin[p.host_at] == '[') w = sv_json_put(w, origin + p.host_at + 1, p.host_len - 2);
  else w = sv_json_put(w, origin + p.host_at, p.host_len);
  PUT(w, "\"}},{\"key\":\"server.port\",\"value\":{\"intValue\":\"");
  w = put_uint(w, p.port);
  PUT(w, "\"}}");
  memcpy(cache->origin, origin, len);
  cache->origin_len = len;
  cache->attrs_len = (size_t)(w - cache->attrs);
}

/* The attributes past the URL: the status code, the resend count, error.type and the span's status. */
static char *put_outcome(char *w, const sv_span *s) {
  if (s->status > 0) {
    PUT(w, ",{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"");
    w = put_uint(w, (unsigned long long)s->status);
    PUT(w, "\"}}");
  }
  if (s->resend > 0) {
    PUT(w, ",{\"key\":\"http.request.resend_count\",\"value\":{\"intValue\":\"");
    w = put_uint(w, (unsigned long long)s->resend);
    PUT(w, "\"}}");
  }
  if (s->failed) {
    PUT(w, ",{\"key\":\"error.type\",\"value\":{\"stringValue\":\"");
    if (s->status > 0) w = put_uint(w, (unsigned long long)s->status);
    else w = sv_json_put(w, s->etype, s->etype_len);
    PUT(w, "\"}}");
  }
  PUT(w, ",{\"key\":\"starvideos.operation\",\"value\":{\"stringValue\":\"");
  w = sv_json_put(w, s->op, s->op_len);
  PUT(w, "\"}}]");
  if (s->emsg) {
    PUT(w, ",\"status\":{\"code\":2,\"message\":\"");
    w = sv_json_put(w, s->emsg, s->emsg_len);
    PUT(w, "\"}");
  }
  return w;
}

/* Whether cache->request holds the request attributes of s (its method and URL those of the last span's). */
static int same_request(const sv_otlp_cache *cache, const sv_span *s) {
  return cache->key_len == s->method_len + 1 + s->url_len && memcmp(cache->key, s->method, s->method_len) == 0 &&
         cache->key[s->method_len] == 0 && memcmp(cache->key + s->method_len + 1, s->url, s->url_len) == 0;
}

/* The request attributes of s at w (http.request.method, server.*, url.full), kept in cache->request for the
   next span of the same method and URL (a task's polls) when they fit. */
static char *put_request(char *w, const sv_span *s, sv_otlp_cache *cache) {
  char *from = w;
  PUT(w, ",\"attributes\":[{\"key\":\"http.request.method\",\"value\":{\"stringValue\":\"");
  w = sv_json_put(w, s->method, s->method_len);
  PUT(w, "\"}}");
  memcpy(w, cache->attrs, cache->attrs_len), w += cache->attrs_len;
  PUT(w, ",{\"key\":\"url.full\",\"value\":{\"stringValue\":\"");
  w = put_redacted(w, s->url, s->url_len);
  PUT(w, "\"}}");
  cache->key_len = cache->request_len = 0;
  if (s->method_len + 1 + s->url_len <= sizeof cache->key && (size_t)(w - from) <= sizeof cache->request) {
    memcpy(cache->key, s->method, s->method_len);
    cache->key[s->method_len] = 0;
    memcpy(cache->key + s->method_len + 1, s->url, s->url_len);
    memcpy(cache->request, from, (size_t)(w - from));
    cache->key_len = s->method_len + 1 + s->url_len, cache->request_len = (size_t)(w - from);
  }
  return w;
}

void sv_otlp_client(sv_buf *out, const sv_span *s, unsigned long long *ids, sv_otlp_cache *cache) {
  size_t strings = s->url_len + 2 * s->method_len + s->op_len + s->etype_len + s->emsg_len;
  int same = same_request(cache, s);
  size_t room;
  char *w;
  if (!same) server(cache, s->url, s->url_len);
  room = 1024 + cache->attrs_len + cache->request_len + 6 * strings;
  w = sv_buf_reserve(out, strings > ((size_t)-1 - 8192) / 6 ? (size_t)-1 : room);
  if (!w) return;
  PUT(w, "{\"traceId\":\"");
  if (s->trace) memcpy(w, s->trace, 32), w += 32;
  else w = put_hex64((memcpy(w, s->process, 16), w + 16), span_id(ids));
  PUT(w, "\",\"spanId\":\"");
  w = put_hex64(w, span_id(ids));
  if (s->parent) {
    PUT(w, "\",\"parentSpanId\":\"");
    memcpy(w, s->parent, 16), w += 16;
  }
  PUT(w, "\",\"kind\":3,\"name\":\"");
  w = sv_json_put(w, s->method, s->method_len);
  PUT(w, "\",\"startTimeUnixNano\":");
  w = put_nanos(w, s->t0);
  PUT(w, ",\"endTimeUnixNano\":");
  w = put_nanos(w, s->t1);
  if (same) memcpy(w, cache->request, cache->request_len), w += cache->request_len;
  else w = put_request(w, s, cache);
  w = put_outcome(w, s);
  *w++ = '}';
  sv_buf_commit(out, w);
}
