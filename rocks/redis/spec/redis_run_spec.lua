-- The specs' redis-server (support/redis_run.lua) is its own: a port another process took between free_ports and
-- the server's bind (two spec files at once) is never taken for it; it starts again on another port.
local helper = require "spec.helper"
local socket = require "socket"
local redis_run = require "rocks.redis.spec.support.redis_run"

describe("the specs' redis-server", function()
  teardown(helper.cleanup)

  it("is started on another port when its own was taken, and refused on a port given that is taken", function()
    local why = redis_run.missing()
    if why then return pending(why) end
    local busy = assert(socket.bind("127.0.0.1", 0))
    finally(function() busy:close() end)
    local _, port = busy:getsockname()
    port = tonumber(port)
    local ok, err = pcall(redis_run.start, { port = port })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("Address already in use", 1, true), tostring(err))
    local free_ports, asked = helper.free_ports, 0
    helper.free_ports = function(n) -- (the taken port first, as a race would hand it out)
      asked = asked + 1
      return asked == 1 and { port } or free_ports(n)
    end
    local srv
    ok, err = pcall(function() srv = redis_run.start() end)
    helper.free_ports = free_ports
    assert(ok, err)
    finally(function() srv.stop() end)
    assert.equal(2, asked)
    assert.are_not.equal(port, srv.port)
    assert.same({ "PONG" }, redis_run.cli(srv.port, "PING"))
  end)
end)
