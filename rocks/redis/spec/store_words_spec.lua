-- What store check says (issue 49): --json gives "unknown" for a persistence setting it could not read, as its text
-- does.
local cjson = require "cjson.safe"
local json = require "starvideos.cli.json"

describe("the words of store check", function()
  it("store check --json: a persistence setting it could not read is \"unknown\"", function()
    local doc = require("starvideos.command.store").document({ usable = true, warnings = {},
      persistence = { appendonly = "yes" } }, json.array)
    local back = cjson.decode(json.encode(doc))
    assert.same({ appendonly = "yes", appendfsync = "unknown", maxmemory_policy = "unknown" }, back.persistence)
    assert.same({}, back.replicas)
  end)
end)
