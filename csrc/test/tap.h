/* The C tests' TAP (csrc/test/test_core.c, the redis rock's rocks/redis/csrc/test/url_test.c): ok(cond, name,
   detail) prints one line, tap_plan() the plan and the counts and gives the exit status (1 on any failure);
   spec/support/c_tap.lua reads them as busted tests. */
#ifndef SV_TAP_H
#define SV_TAP_H

#include <stdio.h>

static int n_test = 0, n_fail = 0;

static void ok(int cond, const char *name, const char *detail) {
  n_test++;
  if (!cond) n_fail++;
  printf("%s %d - %s%s%s\n", cond ? "ok" : "not ok", n_test, name, detail && !cond ? " # " : "",
         detail && !cond ? detail : "");
}

static int tap_plan(void) {
  printf("1..%d\n# %d passed, %d failed\n", n_test, n_test - n_fail, n_fail);
  return n_fail ? 1 : 0;
}

#endif
