-- The key cases (spec/support/keys_cases.lua) on a journal;
-- rocks/redis/spec/hosts/keys_store_spec.lua runs them on a store.
require "spec.support.keys_cases"("journal", nil,
  { describe = describe, it = it, pending = pending, before_each = before_each, assert = assert })
