-- References that lead to a non-public address by a name or a redirect (issue 37, item 5),
-- against the emulator's log: the first hop has to be on an address the client counts as
-- public, which the loopback is not, so the cases run inside a network namespace of their
-- own (unshare -n -m: root, or a user namespace) that holds only lo, with 198.20.0.1 added
-- and a hosts file bound over /etc/hosts there only (the machine's file is not touched):
-- spec/hosts/netns/refs_inner.lua, run by busted in there.  The cases on loopback alone
-- (127.0.0.1, text, image sides, a host that never answers) are spec/extras/refs_spec.lua.
local helper = require "spec.helper"

local function namespaces()
  local _, ok = helper.capture("unshare -n -m true 2>/dev/null")
  return ok
end

describe("a reference whose name or redirect leads to a non-public address", function()
  teardown(helper.cleanup)

  it("is refused at connect time, with no create (the inner cases pass in a namespace)", function()
    if not namespaces() then return pending("unshare -n -m is not allowed here") end
    local hosts = helper.tmpdir() .. "/hosts"
    local f = assert(io.open(hosts, "w"))
    f:write("127.0.0.1 localhost\n198.20.0.1 media.test\n10.0.0.1 private.test\n169.254.169.254 metadata.test\n")
    f:close()
    local busted = (rawget(_G, "arg") or {})[0] or "/usr/bin/busted"
    local inner = table.concat({ "ip link set lo up", "ip addr add 198.20.0.1/32 dev lo",
      "mount --bind " .. helper.shell_quote(hosts) .. " /etc/hosts",
      "cd " .. helper.shell_quote(helper.root),
      "exec env SV_NETNS=1 " .. helper.shell_quote(helper.lua) .. " " .. helper.shell_quote(busted)
        .. " -o TAP spec/hosts/netns/refs_inner.lua" }, " && ")
    local out, _, code = helper.capture("unshare -n -m sh -c " .. helper.shell_quote(inner) .. " 2>&1")
    print(out)
    assert.equal(0, code, out)
    assert.truthy(out:find("\n1..3\n", 1, true) or out:find("^1..3\n"), out)
    assert.is_nil(out:find("not ok", 1, true), out)
  end)
end)
