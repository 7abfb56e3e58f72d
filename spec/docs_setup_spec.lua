-- What the docs tell a newcomer about setup (issue 49), read from the pages and tried where it can be here:
-- make test's npm ci; nginx's resolver, the host's own (the docs' awk line read against this host); the
-- example's JSON without escaped slashes; a traces receiver and nginx's env line; LÖVE's page; an S3 server
-- to try s3:// with; and the fast tier's temporary folders kept out of /tmp.

local helper = require "spec.helper"

local function page(p) return assert(helper.read_file(helper.root .. "/" .. p), p) end

describe("setup, as the docs tell it", function()
  it("README and install.md say make test runs npm ci of spec/npm's test-only packages", function()
    assert.matches("`npm ci` of spec/npm's test-only packages", page("README.md"), 1, true)
    local install = page("docs/install.md")
    assert.matches("`npm ci` of the test-only packages of `spec/npm/package.json`", install, 1, true)
    assert.matches("npm ci", page("mk/npm.mk"), 1, true) -- (what make test does, as said)
  end)

  it("openresty.md and the example's nginx.conf use the host's own resolver, and say how to find it", function()
    for _, p in ipairs { "docs/openresty.md", "examples/openresty/nginx.conf" } do
      local text = page(p)
      assert.is_nil(text:find("resolver 1%.1%.1%.1"), p)
      assert.is_nil(text:find("resolver [%d%.%s]*8%.8%.8%.8"), p)
      assert.matches("awk '/^nameserver/", text:gsub("\n%s*#?%s*", " "), 1, true)
    end
    -- the docs' line, on this host: the first nameserver of /etc/resolv.conf
    local out = helper.capture("awk '/^nameserver/ { print $2; exit }' /etc/resolv.conf")
    local want = (helper.read_file("/etc/resolv.conf") or ""):match("\nnameserver%s+(%S+)")
      or (helper.read_file("/etc/resolv.conf") or ""):match("^nameserver%s+(%S+)")
    assert.equals(want and want .. "\n" or "", out)
  end)

  it("examples/openresty answers with JSON that keeps slashes as they are, the host's cjson left as it was", function()
    local saved = package.path
    package.path = helper.root .. "/examples/openresty/?.lua;" .. package.path
    local handler = require "handler"
    package.path = saved
    assert.equals('{"path":"s3://b/k.mp4"}', handler.encode { path = "s3://b/k.mp4" })
    local tricky = { a = "back\\slash/then\\/both" }
    assert.same(tricky, require("cjson.safe").decode(handler.encode(tricky)))
    assert.equals('{"path":"s3:\\/\\/b\\/k.mp4"}', require("cjson.safe").encode { path = "s3://b/k.mp4" },
      "the shared cjson left as it was")
  end)

  it("openresty.md gives the keep-alive options beside the timeouts, with their defaults and lua-resty-http's "
    .. "milliseconds, and installs the rocks into OpenResty's own LuaJIT", function()
    local markdown = require "spec.support.markdown"
    local DEFAULTS = require("starvideos.config").DEFAULTS
    local text = page("docs/openresty.md")
    local sec = assert(markdown.section(text, "## Keep-alive connections"), "no ## Keep-alive connections")
    for _, name in ipairs { "connect_timeout", "timeout", "keepalive_timeout", "keepalive_pool" } do
      local cells = assert(markdown.row(sec, name), "no row for " .. name)
      assert.equals("`" .. (DEFAULTS[name] or "max_connections") .. "`", cells[2], name)
    end
    assert.matches("(ms)", markdown.row(sec, "keepalive_timeout")[3], 1, true)
    assert.matches("seconds × 1000: `keepalive_timeout = 60` is lua-resty-http's `keepalive_timeout = 60000`",
      sec:gsub("\n", " "), 1, true)
    local rocks = assert(markdown.section(text, "## The rocks in OpenResty's own LuaJIT"), "no section on the rocks")
    assert.matches("\nluarocks --lua-dir=/usr/local/openresty/luajit --tree=/usr/local/openresty/luajit make "
      .. "--deps-mode=none\n", rocks, 1, true)
  end)

  it("observability.md names a receiver to try traces with, and nginx's env lines", function()
    local text = page("docs/observability.md"):gsub("\n", " ")
    assert.matches("jaegertracing/all-in-one", text, 1, true)
    assert.matches("`env OTEL_SERVICE_NAME;`", text, 1, true)
    assert.matches("`env OTEL_EXPORTER_OTLP_ENDPOINT;`", text, 1, true)
  end)

  it("examples/love/README.md: a display (xvfb-run), the window stays open, LÖVE plays no MP4", function()
    local text = page("examples/love/README.md"):gsub("\n%s*", " ")
    assert.matches("xvfb-run -a love examples/love", text, 1, true)
    assert.matches("The window stays open once the video is saved", text, 1, true)
    assert.matches("LÖVE cannot play the MP4 it saved", text, 1, true)
  end)

  it("storage.md names the specs' S3 server to try s3:// locally, with the key it takes, and not s3rver alone "
    .. "(whose 501 to ListMultipartUploads, the bucket's first question, refuses every s3:// out)", function()
    local text = page("docs/storage.md"):gsub("\n", " ")
    assert.matches("`make npm-deps`", text, 1, true)
    assert.matches("node spec/npm/s3_server.js --dir /tmp/s3 --log /tmp/s3.log --bucket videos &", text, 1, true)
    assert.matches("AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER", text, 1, true)
    assert.is_nil(text:find("s3rver -d ", 1, true), "s3rver alone is named as the way") -- (a fixed port too)
    assert.matches("npm-deps:", page("mk/npm.mk"), 1, true)
    local js = page("spec/npm/s3_server.js")
    assert.matches("ListMultipartUploads", js, 1, true) -- (the proxy answers what s3rver lacks)
    assert.matches('"--dir"', js, 1, true)
    assert.matches('"--log"', js, 1, true)
  end)

  it("the fast tier's temporary folders go under each file's own TMPDIR, removed after it", function()
    local dir = helper.tmpdir()
    local root = os.getenv("TMPDIR") or "/tmp"
    assert.equals(root, dir:match("^(.*)/starvideos%-spec%.%w+$"))
    -- tools/run-specs.sh gives each file its TMPDIR and counts what it left
    local script = page("tools/run-specs.sh")
    assert.matches('TMPDIR="$tmp" "$2" /usr/bin/busted', script, 1, true)
    assert.matches('rm -rf "$tmp"', script, 1, true)
    local box = helper.tmpdir()
    helper.write_file(box .. "/one_spec.lua", 'local h = require "spec.helper"\n'
      .. 'describe("x", function() it("leaves a folder", function() h.tmpdir() end) end)\n')
    local out = helper.capture("cd " .. helper.shell_quote(helper.root) .. " && JOBS=1 sh tools/run-specs.sh "
      .. helper.shell_quote(helper.lua) .. " " .. helper.shell_quote(box .. "/one_spec.lua") .. " 2>&1")
    assert.matches("temporary folders: 1 left in the files' own TMPDIR (removed), ", out, 1, true)
    assert.matches("1 passed, 0 failed", out, 1, true)
    helper.cleanup()
  end)

  it("a run that failed names its failed files, then one command that runs them again, before its last line",
    function()
    local box = helper.tmpdir()
    local files = {}
    for i, body in ipairs { 'it("fails", function() assert.equal(1, 2) end)', 'it("passes", function() end)',
      'error("no summary")' } do
      files[i] = box .. "/f" .. i .. "_spec.lua"
      helper.write_file(files[i], 'describe("x", function() ' .. body .. ' end)\n')
    end
    local function run(how)
      return helper.capture("cd " .. helper.shell_quote(helper.root) .. " && env -u TIER " .. how
        .. " JOBS=1 sh tools/run-specs.sh " .. helper.shell_quote(helper.lua) .. " " .. table.concat(files, " ")
        .. " 2>&1")
    end
    local out = run("-u RERUN")
    local tail = table.concat({ "failed: 2 of 3 files", "  " .. files[1], "  " .. files[3],
      "run them again: sh tools/run-specs.sh " .. helper.lua .. " " .. files[1] .. " " .. files[3],
      "1 passed, 2 failed" }, "\n")
    assert.equal(tail, out:sub(-#tail - 1, -2), out)
    -- the caller's command (make test's, tools/test-all.sh's), {} the files
    out = run(helper.shell_quote("RERUN=make test VM=lua5.1 SPECS=\"{}\""))
    assert.matches('\nrun them again: make test VM=lua5.1 SPECS="' .. files[1] .. " " .. files[3]
      .. '"\n1 passed, 2 failed\n', out, 1, true)
    helper.cleanup()
  end)
end)
