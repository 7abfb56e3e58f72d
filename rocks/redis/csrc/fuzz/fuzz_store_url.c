/* sv_store_url_parse on any bytes (the Redis rock's grammar, rocks/redis/csrc/url.c).  Properties: what it
   accepts opens with one of its schemes and its parts (1 to 16 hosts, a service only for Sentinel, db 0 for a
   Cluster) lie within the bytes; what it refuses it says why.  Built and run by `make fuzz` (mk/fuzz.mk) from
   its corpus beside it, corpus/store_url/. */
#include "../../../../csrc/fuzz/fuzz.h"
#include "../url.h"

#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  sv_store_url su;
  const char *why = NULL;
  if (sv_store_url_parse(s, size, &su, &why) == 0) {
    size_t h;
    PROPERTY(strncasecmp(s, su.scheme, strlen(su.scheme)) == 0, "an accepted store URL opens with its scheme");
    PROPERTY(su.nhosts >= 1 && su.nhosts <= SV_STORE_HOSTS, "an accepted store URL has 1 to 16 hosts");
    for (h = 0; h < su.nhosts; h++) {
      PROPERTY(su.hosts[h].len > 0 && su.hosts[h].at + su.hosts[h].len <= size, "each host is within it");
      PROPERTY(su.kind == 'u' || (su.hosts[h].port >= 1 && su.hosts[h].port <= 65535), "each port is 1 to 65535");
    }
    PROPERTY(su.pass_at + su.pass_len <= size && su.user_at + su.user_len <= size, "its user and password are within it");
    PROPERTY(su.service_at + su.service_len <= size && (su.kind == 's') == (su.service_len > 0),
             "a service is within it, and only Sentinel's");
    PROPERTY(su.db >= 0 && (su.kind != 'c' || su.db == 0), "its db is not below 0, a cluster's 0");
  } else {
    PROPERTY(why != NULL && why[0] != '\0', "a refused store URL says why");
  }
  return 0;
}
