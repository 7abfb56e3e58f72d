-- The transport cases (spec/support/transport_cases.lua) on nginx's transport,
-- in an nginx worker; spec/curl/transport_cases_spec.lua runs them on libcurl's.
require "spec.support.transport_run"("nginx",
  { describe = describe, it = it, setup = setup, teardown = teardown, pending = pending,
    assert = assert })
