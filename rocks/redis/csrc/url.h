/* The Redis rock's own grammar, in C without Lua, hiredis or the core (url.c):
   a store's URL read, and a key's Redis Cluster slot.  starvideos.fleet.native
   (native.c) gives both to Lua; the C tests and the fuzz target call them. */
#ifndef SV_REDIS_URL_H
#define SV_REDIS_URL_H

#include <stddef.h>

#if defined(__GNUC__) && !defined(SV_REDIS_API)
#define SV_REDIS_API __attribute__((visibility("hidden"))) extern
#elif !defined(SV_REDIS_API)
#define SV_REDIS_API extern
#endif

/* A store's URL (docs/keep-and-fleet.md), one of
     redis://[[user]:password@]host[:port][/db]      one server ('r'); rediss:// TLS
     unix://[[user]:password@]/path[?db=N]            a local socket ('u')
     redis+sentinel://[[user]:password@]h1[:p1][,h2[:p2]...]/service[/db]   Sentinel ('s'); rediss+sentinel://
     redis+cluster://[[user]:password@]h1[:p1][,h2[:p2]...]                 Cluster ('c'); rediss+cluster://
   0 with the parts as written: s[user_at, +user_len) the user, s[pass_at,
   +pass_len) the password (pass_at 0: none), each host's s[at, +len) (with an
   IPv6 literal's brackets; 'u': the socket's path) and port (6379, Sentinel's
   26379 when none is written), Sentinel's service, the db (0; past 999999999
   INT_MAX, which Redis refuses); scheme the form's name ("rediss://").  Else -1,
   *why what is wrong (never naming the password). */
#define SV_STORE_HOSTS 16
#define SV_STORE_SCHEMES "redis://, rediss://, unix://, redis+sentinel://, rediss+sentinel://, redis+cluster:// " \
  "or rediss+cluster://"
typedef struct sv_store_host {
  size_t at, len;
  unsigned port;
} sv_store_host;
typedef struct sv_store_url {
  const char *scheme;
  char kind;
  int tls, db;
  size_t user_at, user_len, pass_at, pass_len, service_at, service_len, nhosts;
  sv_store_host hosts[SV_STORE_HOSTS];
} sv_store_url;
SV_REDIS_API int sv_store_url_parse(const char *s, size_t len, sv_store_url *out, const char **why);

/* Redis Cluster's hash slot of a key, 0 to 16383, its {hash tag}'s. */
SV_REDIS_API unsigned sv_redis_slot(const char *key, size_t len);

#endif
