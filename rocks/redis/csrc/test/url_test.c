/* The Redis rock's grammar tested from C alone (no Lua, no hiredis, no core): a store's URL read
   (sv_store_url_parse) and a key's Cluster slot (sv_redis_slot), rocks/redis/csrc/url.c.  Prints TAP; exit 1 on
   any failure.  rocks/redis/spec/url_c_spec.lua runs it in `make test`, `make check` under ASan + UBSan and
   valgrind. */
#include "../../../../csrc/test/tap.h"
#include "../url.h"

#include <stdio.h>
#include <string.h>

/* A store's URL (sv_store_url_parse): its parts as written, or what is wrong. */
static void store_urls(void) {
  static const struct { const char *url; const char *why; } bad[] = {
    { "http://h:1", "the scheme is not redis://, rediss://" }, { "redis://", "no host" }, { "redis://:pw@", "no host" },
    { "redis://[::1", "no host" }, { "redis://h:99999", "the port is not 1 to 65535" },
    { "redis://h:0", "the port is not 1 to 65535" }, { "redis://h:port", "the port is not a number" },
    { "redis://h:1/x", "after host:port only /db" }, { "redis://h:1x", "after host:port only /db" },
    { "redis://u:pw@h:1@x", "after host:port only /db" }, { "redis://pw@h:1", "the part before @ is not" },
    { "redis://:@h:1", "the password is empty" }, { "redis://a,b", "one host only" },
    { "rediss://h:1?x=1", "after host:port only /db" }, { "unix://", "no socket path" },
    { "unix://relative.sock", "no socket path" }, { "unix:///s?db=x", "after the socket's path only ?db=N" },
    { "unix:///s?db=", "after the socket's path only ?db=N" }, { "unix:///s\x7f", "a control character" },
    { "redis+sentinel://a:1,b:2", "no service after the sentinels" }, { "redis+sentinel://a/", "no service" },
    { "redis+sentinel://a/m/x", "after /service only /db" }, { "redis+cluster://a:1/0", "a cluster has db 0 only" },
    { "redis+cluster://a:1,", "no host" },
    { "redis+cluster://a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a", "more than 16 hosts" },
  };
  static const char *const user_ipv6 = "redis://us%20er:p%40ss@[::1]:7000/3";
  static const char *const sentinel = "rediss+sentinel://u:pw@s1,[::1]:5000/my-master/2";
  sv_store_url u;
  const char *why = "";
  char name[200];
  size_t i;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(name, sizeof name, "store %s is refused: %s", bad[i].url, bad[i].why);
    ok(sv_store_url_parse(bad[i].url, strlen(bad[i].url), &u, &why) == -1 && strstr(why, bad[i].why) == why,
       name, why);
  }
  ok(sv_store_url_parse(user_ipv6, strlen(user_ipv6), &u, &why) == 0 && u.kind == 'r' && !u.tls && u.user_len == 7 &&
         strncmp(user_ipv6 + u.pass_at, "p%40ss", u.pass_len) == 0 && u.pass_len == 6 && u.nhosts == 1 &&
         strncmp(user_ipv6 + u.hosts[0].at, "[::1]", u.hosts[0].len) == 0 && u.hosts[0].len == 5 &&
         u.hosts[0].port == 7000 && u.db == 3,
     "a store URL with a user, a password and an IPv6 host gives its parts as written", why);
  ok(sv_store_url_parse("redis://h", 9, &u, &why) == 0 && u.pass_at == 0 && u.user_len == 0 && u.hosts[0].port == 6379 &&
         u.db == 0 && u.hosts[0].len == 1,
     "a bare store URL takes port 6379 and db 0", why);
  ok(sv_store_url_parse("redis://h/", 10, &u, &why) == 0 && u.db == 0, "a store URL ending in / is db 0", why);
  ok(sv_store_url_parse("redis://h/99999999999", 21, &u, &why) == 0 && u.db == 2147483647,
     "a db past 999999999 reads as INT_MAX (which Redis refuses)", why);
  ok(sv_store_url_parse(sentinel, strlen(sentinel), &u, &why) == 0 && u.kind == 's' && u.tls && u.nhosts == 2 &&
         u.hosts[0].port == 26379 && u.hosts[1].port == 5000 && u.hosts[1].len == 5 && u.service_len == 9 &&
         strncmp(sentinel + u.service_at, "my-master", 9) == 0 && u.db == 2 && u.user_len == 1,
     "a Sentinel URL gives its sentinels (port 26379 by default), its service and its db", why);
  ok(sv_store_url_parse("unix://:pw@/run/r.sock?db=4", 27, &u, &why) == 0 && u.kind == 'u' && u.db == 4 &&
         u.pass_len == 2 && u.hosts[0].len == 11,
     "a unix URL gives its password, its path and its db", why);
  ok(sv_redis_slot("foo", 3) == 12182 && sv_redis_slot("123456789", 9) == 12739 && sv_redis_slot("", 0) == 0,
     "a key's hash slot is its CRC16 (XMODEM) modulo 16384", NULL);
  ok(sv_redis_slot("{user1000}.following", 20) == sv_redis_slot("user1000", 8) &&
         sv_redis_slot("a{}b", 4) != sv_redis_slot("", 0) && sv_redis_slot("{}b{x}", 6) == sv_redis_slot("{}b{x}", 6) &&
         sv_redis_slot("x{y}{z}", 7) == sv_redis_slot("y", 1) && sv_redis_slot("{{a}}", 5) == sv_redis_slot("{a", 2),
     "a key's {hash tag} (the first '{' to the next '}', not empty) gives its slot", NULL);
  ok(sv_store_url_parse("REDISS+CLUSTER://a:7000,b/", 26, &u, &why) == 0 && u.kind == 'c' && u.tls && u.nhosts == 2 &&
         u.hosts[1].port == 6379 && strcmp(u.scheme, "rediss+cluster://") == 0,
     "a Cluster URL gives its hosts; the scheme in any case", why);
}

int main(void) {
  store_urls();
  return tap_plan();
}
