/* The Redis rock's grammar (url.h): a store's URL read, a key's Cluster slot.
   Plain C: no Lua, no hiredis, no core. */
#include "url.h"

#include <limits.h>
#include <string.h>
#include <strings.h>

#define STORE_URL_MAX 8192

static int is_ctl(unsigned char c) { return c < 0x20 || c == 0x7F; }

/* A byte of a host name: a letter, a digit, '-', '.' or '_'. */
static int name_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_';
}

static int ipv6_byte(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

/* Where the host at s[i] ends: past a name, or past an [IPv6] literal's ']'
   (i when there is none, or no ']' closes the '['). */
static size_t host_end(const char *s, size_t len, size_t i) {
  size_t k;
  if (i < len && s[i] == '[') {
    for (k = i + 1; k < len && ipv6_byte((unsigned char)s[k]); k++) {}
    return k < len && s[k] == ']' && k > i + 1 ? k + 1 : i;
  }
  for (k = i; k < len && name_byte((unsigned char)s[k]); k++) {}
  return k;
}

/* The store's schemes: what each form is, whether TLS, its default port. */
static const struct { const char *name; char kind; int tls; unsigned port; } STORE_SCHEMES[] = {
  { "redis://", 'r', 0, 6379 }, { "rediss://", 'r', 1, 6379 }, { "unix://", 'u', 0, 0 },
  { "redis+sentinel://", 's', 0, 26379 }, { "rediss+sentinel://", 's', 1, 26379 },
  { "redis+cluster://", 'c', 0, 6379 }, { "rediss+cluster://", 'c', 1, 6379 },
};

/* [user]:password@ at s[i] (the first '@' before any '/'): i past it, or 0 with *why. */
static size_t store_credentials(const char *s, size_t len, size_t i, sv_store_url *out, const char **why) {
  size_t at, colon;
  for (at = i; at < len && s[at] != '@' && s[at] != '/'; at++) {}
  if (at == len || s[at] != '@') return i;
  for (colon = i; colon < at && s[colon] != ':'; colon++) {}
  if (colon == at) return *why = "the part before @ is not [user]:password", 0;
  if (colon + 1 == at) return *why = "the password is empty", 0;
  out->user_at = i;
  out->user_len = colon - i;
  out->pass_at = colon + 1;
  out->pass_len = at - colon - 1;
  return at + 1;
}

/* host[:port][,host[:port]...] at s[i]: i past the list, or 0 with *why. */
static size_t store_hosts(const char *s, size_t len, size_t i, sv_store_url *out, unsigned port, const char **why) {
  for (;;) {
    size_t end = host_end(s, len, i), digits;
    unsigned long n = 0;
    sv_store_host *h;
    if (end == i) return *why = "no host", 0;
    if (out->nhosts == SV_STORE_HOSTS) return *why = "more than 16 hosts", 0;
    h = &out->hosts[out->nhosts++];
    h->at = i;
    h->len = end - i;
    h->port = port;
    i = end;
    if (i < len && s[i] == ':') {
      for (digits = ++i; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        if (n <= 65535) n = n * 10 + (unsigned long)(s[i] - '0');
      if (i == digits) return *why = "the port is not a number", 0;
      if (n < 1 || n > 65535) return *why = "the port is not 1 to 65535", 0;
      h->port = (unsigned)n;
    }
    if (i == len || s[i] != ',') return i;
    i++;
  }
}

/* A db's digits at s[i] (none: 0; past 999999999 INT_MAX, which Redis refuses): i past them. */
static size_t store_db(const char *s, size_t len, size_t i, int *db) {
  unsigned long n = 0;
  for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) n = n < 100000000 ? n * 10 + (unsigned long)(s[i] - '0') : INT_MAX;
  *db = (int)n;
  return i;
}

/* What follows the hosts (i: past them): one server's [/db], Sentinel's /service[/db], a Cluster's nothing. */
static int store_tail(const char *s, size_t len, size_t i, sv_store_url *out, const char **why) {
  if (out->kind == 'r' && out->nhosts > 1)
    return *why = "one host only (a list of hosts is for redis+sentinel:// or redis+cluster://)", -1;
  if (out->kind == 'c')
    return i == len || (s[i] == '/' && i + 1 == len) ? 0 : (*why = "a cluster has db 0 only: nothing may follow its hosts", -1);
  if (out->kind == 's') {
    if (i == len || s[i] != '/') return *why = "no service after the sentinels (/service[/db]: the master's name)", -1;
    for (out->service_at = ++i; i < len && s[i] > ' ' && s[i] < 0x7f && !strchr("/?#@", s[i]); i++) {}
    out->service_len = i - out->service_at;
    if (out->service_len == 0) return *why = "no service after the sentinels (/service[/db]: the master's name)", -1;
  }
  if (i == len) return 0;
  if (s[i] != '/' || store_db(s, len, i + 1, &out->db) != len)
    return *why = out->kind == 's' ? "after /service only /db (a number) may follow"
                                   : "after host:port only /db (a number) may follow", -1;
  return 0;
}

/* unix://[[user]:password@]/path[?db=N] (i: past the credentials). */
static int store_unix(const char *s, size_t len, size_t i, sv_store_url *out, const char **why) {
  size_t k;
  if (i == len || s[i] != '/' || i + 1 == len || s[i + 1] == '?') return *why = "no socket path (unix:///path/redis.sock)", -1;
  for (k = i; k < len && s[k] != '?'; k++)
    if (is_ctl((unsigned char)s[k])) return *why = "a control character in the socket's path", -1;
  out->nhosts = 1;
  out->hosts[0].at = i;
  out->hosts[0].len = k - i;
  if (k == len) return 0;
  if (len - k < 5 || memcmp(s + k, "?db=", 4) != 0 || store_db(s, len, k + 4, &out->db) != len || k + 4 == len)
    return *why = "after the socket's path only ?db=N may follow", -1;
  return 0;
}

int sv_store_url_parse(const char *s, size_t len, sv_store_url *out, const char **why) {
  size_t i = 0, k;
  memset(out, 0, sizeof *out);
  if (len > STORE_URL_MAX) return *why = "longer than 8192 bytes", -1;
  for (k = 0; k < sizeof STORE_SCHEMES / sizeof STORE_SCHEMES[0] && !i; k++) {
    size_t n = strlen(STORE_SCHEMES[k].name);
    if (len >= n && strncasecmp(s, STORE_SCHEMES[k].name, n) == 0) {
      out->kind = STORE_SCHEMES[k].kind;
      out->tls = STORE_SCHEMES[k].tls;
      out->scheme = STORE_SCHEMES[k].name;
      i = n;
    }
  }
  if (!i) return *why = "the scheme is not " SV_STORE_SCHEMES, -1;
  if ((i = store_credentials(s, len, i, out, why)) == 0) return -1;
  if (out->kind == 'u') return store_unix(s, len, i, out, why);
  if ((i = store_hosts(s, len, i, out, STORE_SCHEMES[k - 1].port, why)) == 0) return -1;
  return store_tail(s, len, i, out, why);
}

/* Redis Cluster's hash slot of a key (its CRC16, XMODEM's, modulo 16384): of
   the part between the first '{' and the '}' after it when that part is not
   empty (a hash tag: keys sharing one share a slot), else of the whole key. */
unsigned sv_redis_slot(const char *key, size_t len) {
  size_t open, close, i;
  unsigned crc = 0;
  int bit;
  for (open = 0; open < len && key[open] != '{'; open++) {}
  for (close = open + 1; close < len && key[close] != '}'; close++) {}
  if (open < len && close < len && close > open + 1) {
    key += open + 1;
    len = close - open - 1;
  }
  for (i = 0; i < len; i++) {
    crc ^= (unsigned)(unsigned char)key[i] << 8;
    for (bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    crc &= 0xffff;
  }
  return crc & 16383;
}
