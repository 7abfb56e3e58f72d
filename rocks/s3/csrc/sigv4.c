/* AWS Signature Version 4 for S3 and the stores that speak its API (the
   core, no Lua): the canonical request, the string to sign, the signature,
   and from them an Authorization header or a presigned URL's query.  HMAC and
   SHA-256 come from libcrypto (OpenSSL), never a hash of our own, as sign.c's.
   It lives in starvideos.sigv4, the starvideos-s3 rock's C module (sigv4.h
   says what each input means). */
#include "sigv4.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
#define HEADERS_MAX 32

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.' || c == '~';
}

void sv_uri_encode(sv_buf *out, const char *s, size_t len, int keep_slash) {
  static const char hex[] = "0123456789ABCDEF";
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[3] = { '%', hex[c >> 4], hex[c & 15] };
    if (unreserved(c) || (keep_slash && c == '/')) sv_buf_add(out, s + i, 1);
    else sv_buf_add(out, esc, 3);
  }
}

/* HMAC-SHA256 of msg with key into mac (32 bytes): 0, or -1 (libcrypto failed). */
static int hmac(const void *key, size_t klen, const char *msg, size_t mlen, unsigned char mac[32]) {
  unsigned int n = 0;
  return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, mac, &n) && n == 32 ? 0 : -1;
}

/* ------------------------------------------------------------- the checks */

/* A header name: an HTTP token, 1 to 64 characters. */
static int name_ok(const char *s) {
  size_t n = strlen(s), i;
  if (n == 0 || n > 64) return 0;
  for (i = 0; i < n; i++)
    if (!(unreserved((unsigned char)s[i]) || strchr("!#$%&'*+^`|", s[i]))) return 0;
  return 1;
}

/* A header value: printable ASCII and tabs (S3's metadata is ASCII; a line
   break would end the header), at most 8 KiB. */
static int value_ok(const char *s) {
  size_t n = strlen(s), i;
  if (n > 8192) return 0;
  for (i = 0; i < n; i++)
    if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || (unsigned char)s[i] >= 0x7f) return 0;
  return 1;
}

/* A region or a service: [a-z0-9-], 1 to 63 characters. */
static int scope_part_ok(const char *s) {
  size_t n = s ? strlen(s) : 0, i;
  if (n == 0 || n > 63) return 0;
  for (i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-')) return 0;
  return 1;
}

/* What a request to sign may not be: 0, or -1 with err (the field named;
   never a secret's value in the message). */
static int invalid(const sv_sigv4 *r, sv_error *err) {
  size_t i;
  if (!r->method || !*r->method || strspn(r->method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(r->method))
    return sv_error_set(err, SV_E_INVALID, "method", "method: expected an HTTP method in capitals");
  if (!r->host || !*r->host || !value_ok(r->host) || strchr(r->host, ' ') || strchr(r->host, '/'))
    return sv_error_set(err, SV_E_INVALID, "host", "host: expected host[:port]");
  if (!r->path || r->path[0] != '/' || !value_ok(r->path) || strpbrk(r->path, " ?#"))
    return sv_error_set(err, SV_E_INVALID, "path", "path: expected an encoded path starting with /");
  if (!scope_part_ok(r->region)) return sv_error_set(err, SV_E_INVALID, "region", "region: expected [a-z0-9-]+");
  if (!scope_part_ok(r->service)) return sv_error_set(err, SV_E_INVALID, "service", "service: expected [a-z0-9-]+");
  if (!r->access_key || !*r->access_key || !value_ok(r->access_key) || strpbrk(r->access_key, " /"))
    return sv_error_set(err, SV_E_INVALID, "access_key", "access_key: expected a key id without spaces or /");
  if (!r->secret_key || !*r->secret_key || strlen(r->secret_key) > 1024)
    return sv_error_set(err, SV_E_INVALID, "secret_key", "secret_key: expected 1 to 1024 bytes");
  if (r->token && (!*r->token || !value_ok(r->token)))
    return sv_error_set(err, SV_E_INVALID, "session_token", "session_token: expected printable ASCII");
  if (!r->payload || !value_ok(r->payload) || !*r->payload)
    return sv_error_set(err, SV_E_INVALID, "payload", "payload: expected a hex SHA-256 or UNSIGNED-PAYLOAD");
  if (r->expires < 0 || r->expires > 604800)
    return sv_error_set(err, SV_E_INVALID, "expires", "expires: expected 1 to 604800 seconds (a week)");
  if (!(r->time > 0 && r->time < 253402300800.0))
    return sv_error_set(err, SV_E_INVALID, "time", "time: expected seconds since 1970 before the year 10000");
  if (r->nheaders > HEADERS_MAX) return sv_error_set(err, SV_E_INVALID, "headers", "headers: more than 32");
  for (i = 0; i < r->nheaders; i++)
    if (!name_ok(r->headers[2 * i]) || !value_ok(r->headers[2 * i + 1]))
      return sv_error_set(err, SV_E_INVALID, "headers", "headers: %s is not a header name with a printable ASCII "
                          "value", name_ok(r->headers[2 * i]) ? r->headers[2 * i] : "a name");
  return 0;
}

/* ------------------------------------------------------- canonical parts */

/* lname: a header's name lowercased, or a query name encoded (evalue: its value encoded) */
typedef struct pair { const char *name, *value; sv_buf lname, evalue; } pair;

static const char *str(const sv_buf *b) { return b->data ? b->data : ""; } /* (an sv_buf ends in a NUL) */

static int by_name(const void *a, const void *b) {
  const pair *x = a, *y = b;
  int c = strcmp(str(&x->lname), str(&y->lname));
  return c ? c : strcmp(str(&x->evalue), str(&y->evalue));
}

/* A header's value as signed: blanks around it gone, each run of them one space. */
static void trimmed(sv_buf *out, const char *v) {
  int blank = 0, any = 0;
  for (; *v; v++) {
    if (*v == ' ' || *v == '\t') { blank = any; continue; }
    if (blank) sv_buf_add(out, " ", 1);
    sv_buf_add(out, v, 1);
    blank = 0, any = 1;
  }
}

/* The canonical headers (each "name:value\n") and the signed names ("a;b"):
   the request's and what the signer adds, sorted by name; a name given twice
   is refused.  0, or -1 with err. */
static int canonical_headers(pair *h, size_t n, sv_buf *lines, sv_buf *names, sv_error *err) {
  size_t i;
  const char *p;
  for (i = 0; i < n; i++)
    for (p = h[i].name; *p; p++) {
      char c = *p >= 'A' && *p <= 'Z' ? (char)(*p + 32) : *p;
      sv_buf_add(&h[i].lname, &c, 1);
    }
  qsort(h, n, sizeof *h, by_name);
  for (i = 0; i < n; i++) {
    if (i > 0 && by_name(&h[i - 1], &h[i]) == 0)
      return sv_error_set(err, SV_E_INVALID, "headers", "headers: %s is given twice", sv_buf_cstr(&h[i].lname));
    sv_buf_addf(lines, "%s:", sv_buf_cstr(&h[i].lname));
    trimmed(lines, h[i].value);
    sv_buf_add(lines, "\n", 1);
    sv_buf_addf(names, "%s%s", i ? ";" : "", sv_buf_cstr(&h[i].lname));
  }
  return 0;
}

/* The canonical query: names and values encoded, sorted by name then value. */
static void canonical_query(pair *q, size_t n, sv_buf *out) {
  size_t i;
  for (i = 0; i < n; i++) {
    sv_uri_encode(&q[i].lname, q[i].name, strlen(q[i].name), 0);
    sv_uri_encode(&q[i].evalue, q[i].value, strlen(q[i].value), 0);
  }
  qsort(q, n, sizeof *q, by_name); /* by name, then by value, as their encoded bytes sort */
  for (i = 0; i < n; i++)
    sv_buf_addf(out, "%s%s=%s", i ? "&" : "", sv_buf_cstr(&q[i].lname), sv_buf_cstr(&q[i].evalue));
}

/* ----------------------------------------------------------- the signing */

/* The signing key (HMAC chain from "AWS4" secret over the date, region,
   service and "aws4_request"), then the signature of to_sign, in hex. */
static int signature(const sv_sigv4 *r, const char *day, const char *to_sign, char out[65]) {
  const char *steps[4];
  unsigned char k[32];
  sv_buf seed = {0};
  int i, rc;
  steps[0] = day, steps[1] = r->region, steps[2] = r->service, steps[3] = "aws4_request";
  sv_buf_addf(&seed, "AWS4%s", r->secret_key);
  rc = seed.oom ? -1 : hmac(seed.data, seed.len, steps[0], strlen(steps[0]), k);
  OPENSSL_cleanse(seed.data, seed.len);
  sv_buf_free(&seed);
  for (i = 1; i < 4 && rc == 0; i++) rc = hmac(k, sizeof k, steps[i], strlen(steps[i]), k);
  if (rc == 0) rc = hmac(k, sizeof k, to_sign, strlen(to_sign), k);
  if (rc == 0) sv_hex(k, sizeof k, out);
  OPENSSL_cleanse(k, sizeof k);
  return rc;
}

/* The query pairs and header pairs to sign: the request's and the signer's own
   (a presign's X-Amz-* parameters; a header auth's x-amz-* headers and host). */
static size_t gather(const sv_sigv4 *r, sv_sigv4_out *o, const char *scope, pair *q, pair *h, size_t *nh) {
  size_t nq = 0, i;
  char expires[24];
  memset(q, 0, sizeof *q * (r->nquery + 7));
  memset(h, 0, sizeof *h * (r->nheaders + 4));
  for (i = 0; i < r->nquery; i++) q[nq].name = r->query[2 * i], q[nq++].value = r->query[2 * i + 1];
  *nh = 0;
  for (i = 0; i < r->nheaders; i++) h[*nh].name = r->headers[2 * i], h[(*nh)++].value = r->headers[2 * i + 1];
  h[*nh].name = "host", h[(*nh)++].value = r->host;
  sv_buf_addf(&o->credential, "%s/%s", r->access_key, scope);
  if (r->expires > 0) { /* the SDK's S3 presigner's: its payload (UNSIGNED-PAYLOAD) said in the query too */
    snprintf(expires, sizeof expires, "%ld", r->expires);
    sv_buf_adds(&o->expires, expires);
    q[nq].name = "X-Amz-Algorithm", q[nq++].value = ALGORITHM;
    q[nq].name = "X-Amz-Credential", q[nq++].value = sv_buf_cstr(&o->credential);
    q[nq].name = "X-Amz-Date", q[nq++].value = o->date;
    q[nq].name = "X-Amz-Expires", q[nq++].value = sv_buf_cstr(&o->expires);
    if (r->token) q[nq].name = "X-Amz-Security-Token", q[nq++].value = r->token;
    q[nq].name = "x-amz-content-sha256", q[nq++].value = r->payload;
    return nq;
  }
  h[*nh].name = "x-amz-date", h[(*nh)++].value = o->date;
  h[*nh].name = "x-amz-content-sha256", h[(*nh)++].value = r->payload;
  if (r->token) h[*nh].name = "x-amz-security-token", h[(*nh)++].value = r->token;
  return nq;
}

static void free_pairs(pair *p, size_t n) {
  while (n--) sv_buf_free(&p[n].lname), sv_buf_free(&p[n].evalue);
}

/* The canonical request (o->canonical), its query (o->query, to send) and the
   signed names (o->signed_headers), from the gathered pairs: 0, or -1 with err. */
static int canonical(const sv_sigv4 *r, sv_sigv4_out *o, pair *q, size_t nq, pair *h, size_t nh, sv_error *err) {
  sv_buf lines = {0};
  int rc = canonical_headers(h, nh, &lines, &o->signed_headers, err);
  if (rc == 0 && r->expires > 0) { /* the signed names go into the query too: it is signed with them */
    q[nq].name = "X-Amz-SignedHeaders", q[nq++].value = sv_buf_cstr(&o->signed_headers);
  }
  if (rc == 0) {
    canonical_query(q, nq, &o->query);
    sv_buf_addf(&o->canonical, "%s\n%s\n%s\n%s\n%s\n%s", r->method, r->path, sv_buf_cstr(&o->query),
                sv_buf_cstr(&lines), sv_buf_cstr(&o->signed_headers), r->payload);
  }
  free_pairs(q, nq);
  sv_buf_free(&lines);
  return rc;
}

int sv_sigv4_sign(const sv_sigv4 *r, sv_sigv4_out *o, sv_error *err) {
  pair q[HEADERS_MAX + 8], h[HEADERS_MAX + 4];
  unsigned char md[32];
  char day[9], scope[160], hex[65];
  size_t nq, nh;
  time_t t;
  struct tm tm;
  memset(o, 0, sizeof *o);
  if (invalid(r, err)) return -1;
  if (r->nquery > HEADERS_MAX) return sv_error_set(err, SV_E_INVALID, "query", "query: more than 32 parameters");
  t = (time_t)r->time;
  if (!gmtime_r(&t, &tm) || !strftime(o->date, sizeof o->date, "%Y%m%dT%H%M%SZ", &tm))
    return sv_error_set(err, SV_E_INVALID, "time", "time: not a date");
  memcpy(day, o->date, 8);
  day[8] = '\0';
  snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", day, r->region, r->service);
  nq = gather(r, o, scope, q, h, &nh);
  if (canonical(r, o, q, nq, h, nh, err)) { free_pairs(h, nh); sv_sigv4_free(o); return -1; }
  free_pairs(h, nh);
  if (!EVP_Digest(o->canonical.data, o->canonical.len, md, NULL, EVP_sha256(), NULL)) o->canonical.oom = 1;
  sv_hex(md, sizeof md, hex);
  sv_buf_addf(&o->to_sign, ALGORITHM "\n%s\n%s\n%s", o->date, scope, hex);
  if (o->canonical.oom || o->to_sign.oom || o->query.oom || o->credential.oom ||
      signature(r, day, sv_buf_cstr(&o->to_sign), o->signature)) {
    sv_sigv4_free(o);
    return sv_error_set(err, SV_E_IO, NULL, "SigV4: out of memory, or libcrypto failed");
  }
  if (r->expires > 0) sv_buf_addf(&o->query, "%sX-Amz-Signature=%s", o->query.len ? "&" : "", o->signature);
  else sv_buf_addf(&o->authorization, ALGORITHM " Credential=%s, SignedHeaders=%s, Signature=%s",
                   sv_buf_cstr(&o->credential), sv_buf_cstr(&o->signed_headers), o->signature);
  return o->authorization.oom || o->query.oom ? (sv_sigv4_free(o), sv_error_set(err, SV_E_IO, NULL, "out of memory"))
                                               : 0;
}

void sv_sigv4_free(sv_sigv4_out *o) {
  sv_buf_free(&o->canonical);
  sv_buf_free(&o->to_sign);
  sv_buf_free(&o->signed_headers);
  sv_buf_free(&o->authorization);
  sv_buf_free(&o->query);
  sv_buf_free(&o->credential);
  sv_buf_free(&o->expires);
}
