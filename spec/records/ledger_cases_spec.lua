-- The ledger cases (spec/support/ledger_cases.lua) on a journal, on no ledger (a client without journal
-- or store) and on nginx's dict; rocks/redis/spec/hosts/ledger_cases_redis_spec.lua runs them on a store.  And the
-- interface they hold, docs/architecture.md's table: it names every use of a ledger by the library, a journal and no
-- ledger give it (a store: the redis rock's ledger_store_spec.lua), and the list covers each of its names.
local cases = require "spec.support.ledger_cases"
local helper = require "spec.helper"

local b = { describe = describe, it = it, after_each = after_each, assert = assert }

cases.run("a journal", true, cases.env(function(dir) return { journal = dir .. "/tasks.jsonl" } end,
  function(dir) -- its lease files removed (by hand, or a cleaner of /tmp)
    for name in io.popen("ls " .. helper.shell_quote(dir .. "/tasks.jsonl.owners")):lines() do
      os.remove(dir .. "/tasks.jsonl.owners/" .. name)
    end
  end), b, "journal")

cases.run("no ledger", false, cases.env(function() return {} end), b, "process")

-- No ledger inside nginx: the key's counts and reservations in nginx's dict (nginx/budget.lua), here
-- spec/support/fake_dict.lua, one per case (spec/hosts/tenants_nginx_spec.lua counts in the real one; a spend_limit
-- inside nginx needs a journal or a store, spec/hosts/spend_nginx_spec.lua).
local dicts = {} -- (a case's dir -> its dict)
cases.run("nginx's dict", false, cases.env(function() return {} end, nil, function(c, dir)
  dicts[dir] = dicts[dir] or require("spec.support.fake_dict").new()
  local ngx = { shared = { starvideos = dicts[dir] }, sleep = function() end }
  c.key.bucket:use(require("starvideos.nginx.budget").new(ngx, c.key))
end), b, { "dict" })

describe("the ledger interface (docs/architecture.md)", function()
  local names = cases.interface()
  local listed = {}
  for _, n in ipairs(names) do listed[n.name] = n end

  it("names every use of a ledger by the library outside the ledgers", function()
    assert.truthy(#names > 20, #names .. " names read")
    for name, path in pairs(cases.uses()) do
      assert.truthy(listed[name], "ledger." .. name .. " (" .. path .. ") is not in the table")
    end
  end)

  it("is given by a journal and no ledger: each method a function, each field set (a store: the redis rock)",
    function()
    local cfg = { base_url = "http://fake", api_key = "k-interface", lease = 1 }
    local dir = helper.tmpdir()
    local ledgers = { journal = require("starvideos.records.ledger").new(dir .. "/j.jsonl", cfg),
      none = require("starvideos.records.ledger").new(nil, cfg) }
    for on, l in pairs(ledgers) do cases.gives(names, l, on, assert) end
    helper.cleanup()
  end)

  it("is held by the case list: each of its names covered by a case", function()
    local covered = require("spec.support.case_list").covered(cases.cases, listed, assert)
    for _, n in ipairs(names) do
      if n.name ~= "path" and n.name ~= "where" then -- (read by keep, the CLI: what the messages name)
        assert.truthy(covered[n.name], n.name .. " is covered by no case")
      end
    end
  end)
end)
