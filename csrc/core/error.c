/* The core's errors (sv_error): a kind, the field, a message for a person. */
#include "sv_core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[] = {
  "ok", "invalid_request", "auth", "not_found", "rate_limited", "spend_limited", "server",
  "network", "timeout", "task_failed", "protocol", "io", "refused_before"
};

const char *sv_kind_name(sv_kind k) {
  if ((unsigned)k >= sizeof kind_names / sizeof kind_names[0]) return "protocol";
  return kind_names[k];
}

void sv_error_clear(sv_error *e) {
  memset(e, 0, sizeof *e);
  e->retry_after = -1;
}

int sv_error_set(sv_error *e, sv_kind k, const char *field, const char *fmt, ...) {
  va_list ap;
  e->kind = k;
  snprintf(e->field, sizeof e->field, "%s", field ? field : "");
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  return -1;
}
