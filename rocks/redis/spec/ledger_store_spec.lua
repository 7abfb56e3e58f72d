-- The store ledger (fleet/ledger.lua) without a server: the ledger interface it gives (the core's
-- spec/records/ledger_cases_spec.lua holds a journal and no ledger to it) and config.DEFAULTS' retain, what the
-- store would be sent.  The ledger cases against a real server: hosts/ledger_cases_redis_spec.lua.
local cases = require "spec.support.ledger_cases"
local config = require "starvideos.config"
local helper = require "spec.helper"
local Ledger = require "starvideos.fleet.ledger"

local with_defaults = helper.with_defaults

describe("the store ledger, without a server", function()
  it("gives the ledger interface (docs/architecture.md): each method a function, each field set", function()
    local cfg = { base_url = "http://fake", api_key = "k-interface", lease = 1 }
    cases.gives(cases.interface(), Ledger.new("redis://127.0.0.1:1", cfg), "store", assert)
  end)

  it("retain: how long a store keeps a settled task's record", function()
    for _, v in ipairs { 123, 4567 } do
      with_defaults({ retain = v }, function()
        local cfg = config.client { api_key = "k-defaults", base_url = "http://fake" }
        local ledger = Ledger.new("redis://127.0.0.1:1", cfg)
        local sent = {}
        ledger._record = function(_, name, _, args) sent[name] = args end -- (what the store would be sent)
        ledger:status("task_3", "failed")
        ledger:downloaded("task_4", "/nowhere/task_4.mp4")
        assert.equal(v, sent.status[6]) -- (id, status, took, within, samples, retain)
        assert.equal(v, sent.downloaded[3])
      end)
    end
  end)

end)
