-- client:metrics() on a client that does not count (issue 49): the text says so first, in a comment
-- line naming how to turn counting on, and stays text a Prometheus scrape reads.

local starvideos = require "starvideos"

describe("client:metrics() without counting", function()
  it("says in its first line, a comment, that the client does not count and how to turn it on", function()
    local off = starvideos.new { api_key = "k-metrics-off", base_url = "http://127.0.0.1:9" }
    local text = off:metrics()
    local first = text:match("^[^\n]*")
    assert.matches("^# starvideos: this client does not count %(metrics is off%): starvideos%.new{metrics = true} "
      .. "turns it on", first)
    for line in text:gmatch("[^\n]+") do -- every other line a HELP, TYPE or a sample
      assert.truthy(line:find("^# ") or line:find("^[%a_:][%w_:]*[{ ]"), line)
    end
    off:close()
    local on = starvideos.new { api_key = "k-metrics-on", base_url = "http://127.0.0.1:9", metrics = true }
    assert.is_nil(on:metrics():find("does not count", 1, true))
    on:close()
  end)
end)
