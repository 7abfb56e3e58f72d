/* The clocks (monotonic, wall) and a sleep. */
#include "sv_core.h"

#include <errno.h>
#include <time.h>

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double sv_monotonic(void) { return clock_s(CLOCK_MONOTONIC); }

double sv_wallclock(void) { return clock_s(CLOCK_REALTIME); }

void sv_sleep(double s) {
  struct timespec ts, rem;
  if (!(s > 0)) return;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &rem) != 0 && errno == EINTR) ts = rem;
}
