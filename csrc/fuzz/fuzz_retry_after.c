/* sv_parse_retry_after on any value and any clock: never UB, always -1 or a finite
   delay within a year; digits alone are delta-seconds. */
#include "fuzz.h"

#include <math.h>

#define YEAR (86400.0 * 365)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader r = { data, size };
  double now = take_clock(&r), d; /* the clock: usually sane, sometimes hostile */
  const char *v;
  char *copy;
  size_t len, i;
  v = take_bytes(&r, r.left, &len);
  copy = dup_cstr(v, len);
  d = sv_parse_retry_after(copy, now);
  PROPERTY(isfinite(d), "finite");
  PROPERTY(d == -1 || (d >= 0 && d <= YEAR), "-1 or within a year");
  /* digits alone, with blanks around: delta-seconds, whatever the clock */
  for (i = 0; copy[i] == ' ' || copy[i] == '\t'; i++) {}
  if (copy[i] >= '0' && copy[i] <= '9') {
    size_t j = i;
    while (copy[j] >= '0' && copy[j] <= '9') j++;
    while (copy[j] == ' ' || copy[j] == '\t' || copy[j] == '\r' || copy[j] == '\n') j++;
    if (copy[j] == '\0') {
      double want = 0;
      size_t k;
      for (k = i; copy[k] >= '0' && copy[k] <= '9' && want < YEAR; k++) want = want * 10 + (copy[k] - '0');
      if (want > YEAR) want = YEAR;
      PROPERTY(d == want, "delta-seconds are read as the number they are");
    }
  }
  PROPERTY(sv_parse_retry_after(NULL, now) == -1, "no header is -1");
  free(copy);
  return 0;
}
