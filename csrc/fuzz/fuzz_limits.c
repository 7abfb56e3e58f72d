/* sv_read_limits on any header lines and any clock: never UB, never refuses; every
   field it reports is a finite number >= 0 (a reset within RESET_MAX), and the family
   is one of the three it names exactly when it says it read something. */
#include "fuzz.h"

#include <math.h>

#define RESET_MAX (86400.0 * 366)

static int field_ok(double v, double most) { return v == -1 || (isfinite(v) && v >= 0 && v <= most); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader r = { data, size };
  double now = take_clock(&r);
  const char *v;
  size_t len;
  sv_limits l;
  int got;
  v = take_bytes(&r, r.left, &len);
  got = sv_read_limits(v, len, now, &l); /* (not NUL-terminated: the length bounds every read) */
  PROPERTY(got == 0 || got == 1, "0 or 1");
  PROPERTY(got == (l.family != SV_LIMITS_NONE), "a family exactly when something was read");
  PROPERTY(l.family >= SV_LIMITS_NONE && l.family <= SV_LIMITS_X, "a known family");
  PROPERTY(field_ok(l.limit, 1e15) && field_ok(l.remaining, 1e15) && field_ok(l.window, RESET_MAX) &&
           field_ok(l.reset, RESET_MAX), "each field -1 or finite, >= 0, bounded");
  PROPERTY(!got || l.limit >= 0 || l.remaining >= 0 || l.reset >= 0, "what was read is reported");
  return 0;
}
