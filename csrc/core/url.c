/* URLs: the API's and media URLs checked and parsed, a proxy's URL with its
   credentials, a redirect's Location resolved. */
#include "sv_core.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define URL_FORM_BASE "http(s)://host[:port][/path]"
#define URL_FORM_ANY "http(s)://host[:port][/path][?query]"
#define URL_MAX 8192

static int is_ctl(unsigned char c) { return c < 0x20 || c == 0x7F; }

/* shift: bytes the URL checked lost before the place a message names (a
   proxy's credentials, taken out), so that "at byte n" counts as written */
typedef struct url_ctx {
  const char *field, *form;
  int kind;
  size_t shift;
  sv_error *err;
} url_ctx;

static int url_bad(const url_ctx *u, const char *found, size_t at, const char *why) {
  if (at)
    return sv_error_set(u->err, SV_E_INVALID, u->field, "%s: expected %s, found %s at byte %zu%s", u->field, u->form,
                        found, at + u->shift, why);
  return sv_error_set(u->err, SV_E_INVALID, u->field, "%s: expected %s, found %s%s", u->field, u->form, found, why);
}

/* The byte s[at] named ("a space", "'?'", "a control character (\x0A)" ...) in the message. */
static int bad_byte(const url_ctx *u, const char *s, size_t at, const char *why) {
  char what[64];
  unsigned char c = (unsigned char)s[at];
  if (c == ' ') snprintf(what, sizeof what, "a space");
  else if (is_ctl(c)) snprintf(what, sizeof what, "a control character (\\x%02X)", c);
  else if (c >= 0x80) snprintf(what, sizeof what, "a non-ASCII byte (\\x%02X)", c);
  else snprintf(what, sizeof what, "'%c'", c);
  return url_bad(u, what, at + 1, why);
}

static int is_alnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int is_hex(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The byte classes a URL is checked with, one table lookup a byte (the check
   runs on every request): PATH a byte of a path segment (RFC 3986 pchar but
   '@' and '%', which are checked apart), HOST one of a host name. */
enum { URL_PATH = 1, URL_HOST = 2 };
/* alnum: both; "-._~!$&'()*+,;=:/": PATH; "-._": HOST too (spec/url_spec's cases
   and the fuzz target check it against the rule) */
static const unsigned char url_class[256] = { /* 128 and above: 0 */
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 1, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 3, 3, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 0, 1, 0, 0,
  0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 3,
  0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 1, 0,
};

static int path_byte(unsigned char c) { return url_class[c] & URL_PATH; }

/* Where the host at s[i] ends: past a name, or past an [IPv6] literal's ']'
   (i when there is none, or no ']' closes the '['). */
static size_t host_end(const char *s, size_t len, size_t i) {
  size_t k = i + 1;
  if (i < len && s[i] == '[') {
    while (k < len && (is_hex((unsigned char)s[k]) || s[k] == ':' || s[k] == '.')) k++;
    return k < len && s[k] == ']' && k > i + 1 ? k + 1 : i;
  }
  while (i < len && (url_class[(unsigned char)s[i]] & URL_HOST)) i++;
  return i;
}

/* The length of s's scheme with its "://" (7 or 8), or -1 with err, naming
   the scheme only (what follows may hold a secret). */
static int url_scheme(const url_ctx *u, const char *s, size_t len) {
  size_t k;
  sv_buf b = {0};
  if (!s || len == 0) return url_bad(u, "nothing", 0, "");
  if (len > URL_MAX) {
    char what[64];
    snprintf(what, sizeof what, "%zu bytes (at most %d)", len, URL_MAX);
    return url_bad(u, what, 0, "");
  }
  if (len >= 7 && strncasecmp(s, "http://", 7) == 0) return 7;
  if (len >= 8 && strncasecmp(s, "https://", 8) == 0) return 8;
  for (k = 0; k < len && k < 32 && s[k] != ':' && s[k] != '/' && s[k] != '@'; k++) {}
  if (!(k > 0 && k < len && k < 32 && len - k >= 3 && memcmp(s + k, "://", 3) == 0))
    return url_bad(u, "no scheme", 0, " (it must start with http:// or https://)");
  sv_buf_adds(&b, "the scheme ");
  sv_quote(&b, s, k, 16);
  url_bad(u, sv_buf_cstr(&b), 0, " (only http and https)");
  sv_buf_free(&b);
  return -1;
}

/* Bytes never allowed, wherever they are past the scheme (at `from`); a base
   URL has paths appended to it, so it takes no query or fragment, and no '@'
   anywhere.  0, or -1 with err. */
static int url_bytes(const url_ctx *u, const char *s, size_t len, size_t from, size_t auth_end) {
  size_t i;
  for (i = from; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '@' && (u->kind == SV_URL_BASE || i < auth_end))
      return bad_byte(u, s, i, " (user credentials do not belong in a URL)");
    if (c == '?' && u->kind == SV_URL_BASE) return bad_byte(u, s, i, " (a base URL takes no query)");
    if (c == '#' && u->kind == SV_URL_BASE) return bad_byte(u, s, i, " (a base URL takes no fragment)");
    if (c <= 0x20 || c >= 0x7F) return bad_byte(u, s, i, "");
  }
  return 0;
}

/* The host at s[host] and its port, which must end at auth_end: the port (0
   when none is written), or -1 with err. */
static long url_host_port(const url_ctx *u, const char *s, size_t len, size_t host, size_t auth_end) {
  size_t i = host_end(s, len, host), at, digits;
  unsigned long port = 0;
  if (i == host && i < len && s[i] == '[') return bad_byte(u, s, host, " (an IPv6 address without its closing ']')");
  if (i == host) {
    if (i == len || s[i] == '/' || s[i] == ':' || s[i] == '?' || s[i] == '#')
      return url_bad(u, "no host", 0, " after the scheme");
    return bad_byte(u, s, i, " (in the host)");
  }
  if (i < len && s[i] == ':') {
    at = ++i;
    for (digits = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++)
      if (port <= 65535) port = port * 10 + (unsigned long)(s[i] - '0');
    if (i < len && i < auth_end) return bad_byte(u, s, i, " (in the port)");
    if (digits == 0) return url_bad(u, "an empty port", at, "");
    if (port == 0 || port > 65535) {
      char what[64];
      if (digits <= 5) snprintf(what, sizeof what, "port %lu", port);
      else snprintf(what, sizeof what, "a port of %zu digits", digits);
      return url_bad(u, what, at + 1, " (ports are 1 to 65535)");
    }
  }
  if (i < auth_end) return bad_byte(u, s, i, " (after the host)");
  return (long)port;
}

/* The path from s[i], then (not in a base URL) a query and a fragment: the
   same bytes and '?'.  0, or -1 with err. */
static int url_path(const url_ctx *u, const char *s, size_t len, size_t i) {
  for (; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      if (len - i < 3 || !is_hex((unsigned char)s[i + 1]) || !is_hex((unsigned char)s[i + 2]))
        return bad_byte(u, s, i, " not followed by two hex digits");
      i += 2;
    } else if (!path_byte(c) && !(u->kind == SV_URL_ANY && (c == '@' || c == '?' || c == '#'))) {
      return bad_byte(u, s, i, " (in the path)");
    }
  }
  return 0;
}

static int url_parse(url_ctx u, const char *s, size_t len, sv_url *out) {
  size_t auth_end;
  long port;
  int scheme = url_scheme(&u, s, len);
  if (scheme < 0) return -1;
  for (auth_end = (size_t)scheme; auth_end < len && s[auth_end] != '/' && s[auth_end] != '?' && s[auth_end] != '#';
       auth_end++) {}
  if (url_bytes(&u, s, len, (size_t)scheme, auth_end)) return -1;
  port = url_host_port(&u, s, len, (size_t)scheme, auth_end);
  if (port < 0 || url_path(&u, s, len, auth_end)) return -1;
  if (out) {
    out->https = scheme == 8;
    out->host_at = (size_t)scheme;
    out->host_len = host_end(s, len, out->host_at) - out->host_at;
    out->auth_len = auth_end - out->host_at;
    out->path_at = auth_end;
    out->port = port ? (unsigned)port : scheme == 8 ? 443u : 80u;
  }
  return 0;
}

int sv_url_parse(const char *s, size_t len, const char *field, int kind, sv_url *out, sv_error *err) {
  url_ctx u = { field && *field ? field : "url", kind == SV_URL_BASE ? URL_FORM_BASE : URL_FORM_ANY,
                kind == SV_URL_BASE ? SV_URL_BASE : SV_URL_ANY, 0, err };
  return url_parse(u, s, len, out);
}

int sv_url_check(const char *s, size_t len, const char *field, int kind, sv_error *err) {
  return sv_url_parse(s, len, field, kind, NULL, err);
}

/* ---------------------------------------------------------------- proxies */

#define PROXY_FORM "http://[user:password@]host:port"

static unsigned hex_value(unsigned char c) { return (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10); }

/* A proxy's user name or password as written (RFC 3986 userinfo: unreserved,
   sub-delims, ':', %XX) percent-decoded into out (NULL: only checked), as
   libcurl decodes them: -1 on a byte that must be percent-encoded, a broken
   %XX, or one that decodes to a control character. */
static int userinfo_decode(const char *s, size_t len, sv_buf *out) {
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      if (len - i < 3 || !is_hex((unsigned char)s[i + 1]) || !is_hex((unsigned char)s[i + 2])) return -1;
      c = (unsigned char)(hex_value((unsigned char)s[i + 1]) * 16 + hex_value((unsigned char)s[i + 2]));
      if (is_ctl(c)) return -1;
      i += 2;
    } else if (c == '/' || !path_byte(c)) { /* a path's bytes but '/' */
      return -1;
    }
    if (out) sv_buf_add(out, &c, 1);
  }
  return 0;
}

/* What a proxy URL lacks to be http://host:port: 0, or -1 with err.  r[0, rlen)
   is the URL without its credentials (parsed in p, its host at `start`); cred,
   what stands for them in a message ("user:***@", "***@" or ""). */
static int proxy_form(const url_ctx *u, const char *r, size_t rlen, size_t start, const sv_url *p, sv_buf *cred) {
  const char *why = NULL;
  sv_buf shown = {0}, q = {0};
  if (p->https) why = "an https URL (a proxy is spoken to in http; an https target goes through its CONNECT tunnel)";
  else if (p->auth_len == p->host_len) why = "no port";
  else if (p->path_at < rlen && !(p->path_at + 1 == rlen && r[p->path_at] == '/')) why = "a path";
  if (!why) return 0;
  sv_buf_add(&shown, r, start);
  sv_buf_add(&shown, cred->data, cred->len);
  sv_buf_add(&shown, r + start, rlen - start);
  sv_quote(&q, shown.data, shown.len, 200);
  sv_error_set(u->err, SV_E_INVALID, u->field, "%s: expected %s, found %s in %s", u->field, u->form, why,
               sv_buf_cstr(&q));
  sv_buf_free(&q);
  sv_buf_free(&shown);
  return -1;
}

void sv_proxy_free(sv_proxy *p) {
  sv_buf_free(&p->url);
  sv_buf_free(&p->user);
  sv_buf_free(&p->password);
  p->has_user = 0;
}

/* The credentials of a proxy URL, s[start, at - 1) (at: past the last '@'),
   decoded into out (NULL: checked), and what a message shows for them in cred. */
static int proxy_credentials(const char *s, size_t start, size_t at, sv_proxy *out, sv_buf *cred) {
  size_t colon;
  for (colon = start; colon + 1 < at && s[colon] != ':'; colon++) {}
  if (userinfo_decode(s + start, colon - start, out ? &out->user : NULL) != 0) return -1;
  if (s[colon] == ':' && userinfo_decode(s + colon + 1, at - 2 - colon, out ? &out->password : NULL) != 0) return -1;
  if (s[colon] == ':') sv_buf_add(cred, s + start, colon - start + 1); /* a lone user may be a token: not shown */
  sv_buf_adds(cred, "***@");
  if (out) out->has_user = 1;
  return 0;
}

int sv_proxy_parse(const char *s, size_t len, sv_proxy *out, sv_error *err) {
  url_ctx u = { "proxy", PROXY_FORM, SV_URL_BASE, 0, err };
  size_t start = 0, at = 0, k;
  sv_buf rest = {0}, cred = {0};
  sv_url p;
  int rc = -1;
  if (out) memset(out, 0, sizeof *out);
  for (k = 0; s && k < 32 && k + 3 <= len; k++)
    if (memcmp(s + k, "://", 3) == 0) { start = k + 3; break; }
  for (k = len; s && k > start && !at; k--)
    if (s[k - 1] == '@') at = k;
  if (at && proxy_credentials(s, start, at, out, &cred) != 0) {
    sv_error_set(err, SV_E_INVALID, u.field, "%s: expected %s, found credentials (before the last '@') with a byte "
                 "to percent-encode as %%XX, or a %%XX of a control character (not shown)", u.field, u.form);
  } else {
    if (s) sv_buf_add(&rest, s, at ? start : len);
    if (at) sv_buf_add(&rest, s + at, len - at);
    u.shift = at ? at - start : 0;
    rc = rest.oom || cred.oom ? sv_error_set(err, SV_E_IO, NULL, "out of memory") : url_parse(u, rest.data, rest.len, &p);
    if (rc == 0) rc = proxy_form(&u, rest.data, rest.len, p.host_at, &p, &cred);
    if (rc == 0 && out) sv_buf_add(&out->url, rest.data, p.path_at);
    if (rc == 0 && out && (out->url.oom || out->user.oom || out->password.oom))
      rc = sv_error_set(err, SV_E_IO, NULL, "out of memory");
  }
  if (rc != 0 && out) sv_proxy_free(out);
  sv_buf_free(&rest);
  sv_buf_free(&cred);
  return rc;
}

/* An absolute Location as it is, "//host/..." with base's scheme, "/path" on
   its origin, anything else beside the last '/' of base's path (query and
   fragment dropped). */
static int url_resolve(const char *base, size_t blen, const char *loc, size_t llen, sv_buf *out) {
  size_t k, scheme_end, origin_end, path_end, dir_end;
  for (k = 0; k < llen && (is_alnum((unsigned char)loc[k]) || (k > 0 && loc[k] && strchr("+.-", loc[k]))); k++) {}
  if (k > 0 && k < llen && loc[k] == ':' && !(loc[0] >= '0' && loc[0] <= '9')) {
    sv_buf_add(out, loc, llen);
    return out->oom ? -1 : 0;
  }
  for (scheme_end = 0; scheme_end < blen && base[scheme_end] != ':'; scheme_end++) {}
  origin_end = scheme_end + 3 <= blen ? scheme_end + 3 : blen; /* past "://" */
  while (origin_end < blen && base[origin_end] != '/' && base[origin_end] != '?' && base[origin_end] != '#') origin_end++;
  if (llen >= 2 && loc[0] == '/' && loc[1] == '/') {
    sv_buf_add(out, base, scheme_end + 1);
  } else {
    sv_buf_add(out, base, origin_end);
    if (llen == 0 || loc[0] != '/') {
      for (path_end = origin_end; path_end < blen && base[path_end] != '?' && base[path_end] != '#'; path_end++) {}
      for (dir_end = path_end; dir_end > origin_end && base[dir_end - 1] != '/'; dir_end--) {}
      if (dir_end > origin_end) sv_buf_add(out, base + origin_end, dir_end - origin_end);
      else sv_buf_add(out, "/", 1);
    }
  }
  sv_buf_add(out, loc, llen);
  return out->oom ? -1 : 0;
}

int sv_redirect(const char *from, long status, const char *loc, size_t llen, int hops, int public_host,
                sv_buf *to, sv_error *err) {
  sv_url u;
  const char *what;
  if (!(status == 301 || status == 302 || status == 303 || status == 307 || status == 308) || !loc || !llen)
    return 0;
  if (hops >= 5) return sv_error_set(err, SV_E_NETWORK, "redirect", "more than 5 redirects");
  if (url_resolve(from, strlen(from), loc, llen, to))
    return sv_error_set(err, SV_E_IO, NULL, "out of memory following a redirect");
  if (sv_url_parse(to->data, to->len, "redirect", SV_URL_ANY, &u, err) != 0) return -1;
  if (public_host && (what = sv_host_private(to->data + u.host_at, u.host_len)) != NULL) {
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)u.host_len, to->data + u.host_at);
    return sv_error_set(err, SV_E_INVALID, "redirect", SV_NOT_PUBLIC, host, what);
  }
  return 1;
}
