-- The transport cases (spec/support/transport_cases.lua) on libcurl's
-- transport; spec/hosts/transport_cases_nginx_spec.lua runs them on nginx's.
require "spec.support.transport_run"("libcurl",
  { describe = describe, it = it, setup = setup, teardown = teardown, pending = pending,
    assert = assert })
