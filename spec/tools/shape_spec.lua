-- tools/shape.lua, which make lint runs: it passes this tree, and fails on a
-- module over 400 lines, a function over 60 (Lua or C), a require cycle or a
-- require against the layers' order, naming each.
local helper = require "spec.helper"

local q = helper.shell_quote
local shape = q(helper.lua) .. " " .. q(helper.root .. "/tools/shape.lua")

local INTERPRETED = 'local jit = rawget(_G, "jit") if jit then jit.off(true, true) end\n'

-- A tree of lua/starvideos/<name>.lua files with the given sources, each ending with the line that turns
-- LuaJIT's compiler off, unless bare.
local function tree(files, bare)
  local dir = helper.tmpdir()
  assert(helper.execute("mkdir -p " .. q(dir .. "/lua/starvideos/cli")))
  for name, src in pairs(files) do
    helper.write_file(dir .. "/lua/starvideos/" .. name .. ".lua", src .. (bare and "" or INTERPRETED))
  end
  return dir
end

-- A C function of n lines (its name's line to its closing brace), its
-- signature on two lines, braces in a string, a comment and a directive.
local function c_function(name, n)
  return "/* { not a block */\n#define OPEN {\nint " .. name .. "(int a,\n    int b) {\n  const char *s = \"}{\";\n"
    .. string.rep("  a += b;\n", n - 5) .. "  return a + (int)s[0];\n}\n"
end

local function c_tree(dir, files)
  for name, src in pairs(files) do
    assert(helper.execute("mkdir -p " .. q(dir .. "/csrc/" .. name:match("^(.*)/"))))
    helper.write_file(dir .. "/csrc/" .. name, src)
  end
  return dir
end

local function lines(n, text)
  local out = {}
  for i = 1, n do out[i] = text or ("local x" .. i .. " = " .. i) end
  return table.concat(out, "\n") .. "\n"
end

describe("tools/shape.lua", function()
  teardown(helper.cleanup)

  it("passes the library as it is, printing its modules, layers and require graph", function()
    local out, ok = helper.capture(shape .. " " .. q(helper.root))
    assert.is_true(ok, out)
    assert.matches("starvideos.client", out, 1, true)
    assert.matches("in all", out, 1, true)
    assert.matches("shape: every function within 60 lines, no require cycle, every require within the layers' "
      .. "order", out, 1, true)
    -- the files of each layer, and each module's layer in the graph
    for _, layer in ipairs { "core", "entry", "records", "fleet", "extras", "nginx" } do
      assert.matches("\n +%d+ +%d+  " .. layer .. "\n", out)
    end
    assert.matches("starvideos.job +core +%->", out)
    assert.matches("rocks: 5 rockspecs read", out, 1, true)
  end)

  -- A copy of the checkout's rocks (lua/, rocks/, rockspec/, csrc/, bin/): its folder, and append(path, text),
  -- which adds text to a file of it and gives the line it starts on.
  local function rocks_copy()
    local dir = helper.tmpdir()
    assert(helper.execute("cd " .. q(helper.root) .. " && cp -R lua rocks rockspec csrc bin " .. q(dir)))
    return dir, function(path, text)
      local src = assert(helper.read_file(dir .. "/" .. path))
      local _, n = src:gsub("\n", "")
      helper.write_file(dir .. "/" .. path, src .. text)
      return n + 1
    end
  end

  -- A copy of the checkout's rocks (lua/, rocks/, rockspec/, csrc/, bin/) with names of other rocks' modules
  -- planted in the core rock's files: a lazy require, a name put together from a folder only another rock has,
  -- a pcall in the command, a C string; a comment naming one passes; and a rock's file that no rockspec installs.
  it("fails naming each name of another rock's module in the core rock's files, Lua or C, and a file no rockspec "
    .. "installs", function()
    local dir, append = rocks_copy()
    local job = append("lua/starvideos/job.lua", 'local function later() return require("starvideos.fleet.store") end\n'
      .. 'local S3 = "starvideos.storage." .. "s3"\n-- starvideos.fleet.ledger, in a comment: not read\n')
    local bin = append("bin/starvideos", 'local ok = pcall(require, "starvideos.emulator")\n')
    local c = append("csrc/lua/core.c", '#define SV_NOT_MINE "starvideos.sigv4"\n/* starvideos.redis */\n')
    helper.write_file(dir .. "/rocks/redis/lua/starvideos/fleet/extra.lua", "return {}\n" .. INTERPRETED)
    local out, ok, code = helper.capture(shape .. " " .. q(dir) .. " 2>&1")
    assert.is_falsy(ok, out)
    assert.equal(1, code)
    local WHY = " (the core finds another rock only through its extension points: lua/starvideos/extension.lua)"
    assert.matches("lua/starvideos/job.lua:" .. job .. ": names starvideos.fleet.store, a module of the "
      .. "starvideos-redis rock" .. WHY, out, 1, true)
    assert.matches("lua/starvideos/job.lua:" .. (job + 1) .. ": names starvideos.storage., a module folder of the "
      .. "starvideos-s3 rock" .. WHY, out, 1, true)
    assert.matches("bin/starvideos:" .. bin .. ": names starvideos.emulator, a module of the starvideos-emulator "
      .. "rock" .. WHY, out, 1, true)
    assert.matches("csrc/lua/core.c:" .. c .. ": names starvideos.sigv4, a module of the starvideos-s3 rock" .. WHY,
      out, 1, true)
    assert.matches("rocks/redis/lua/starvideos/fleet/extra.lua: in no rockspec (rocks/redis/"
      .. "starvideos-redis-scm-1.rockspec installs the Lua files of rocks/redis/lua/)", out, 1, true)
    local _, n = out:gsub(": names starvideos", "")
    assert.equal(4, n, out) -- (not the comments)
  end)

  -- Each product whole in its rock (issue 70): a C test or a fuzz target of the core's tree that includes a rock's C
  -- (the store URL's grammar was tested and fuzzed from csrc/), a source of the core rock that does, or a fuzz target
  -- naming a rock's module, fails.
  it("fails naming a C file of the core's tree that includes a rock's C, or a fuzz target naming a rock's module",
    function()
      local dir, append = rocks_copy()
      local t = append("csrc/test/test_core.c", '#include "../../rocks/redis/csrc/url.h"\n')
      local m = append("csrc/core/models.c", '#include "../../rocks/s3/csrc/parts.h"\n') -- (the core rock's own)
      local f = append("csrc/fuzz/fuzz_json.c", '#  include <rocks/s3/csrc/sigv4.h>\n'
        .. 'static const char *m = "starvideos.fleet.store";\n')
      local out, ok = helper.capture(shape .. " " .. q(dir) .. " 2>&1")
      assert.is_falsy(ok, out)
      local WHY = ": includes a rock's C (a product's C tests and fuzz targets are its rock's: rocks/<rock>/csrc/)"
      assert.matches("csrc/test/test_core.c:" .. t .. WHY, out, 1, true)
      assert.matches("csrc/core/models.c:" .. m .. WHY, out, 1, true)
      assert.matches("csrc/fuzz/fuzz_json.c:" .. f .. WHY, out, 1, true)
      assert.matches("csrc/fuzz/fuzz_json.c:" .. (f + 1) .. ": names starvideos.fleet.store, a module of the "
        .. "starvideos-redis rock", out, 1, true)
    end)

  -- Each product whole in its rock (issue 70, part 3): a file outside rocks/ (a spec, a bench, the build) that names
  -- a product's module or a rock's files fails, each line named; a comment, the rocks as a glob, and the emulator
  -- (the service the specs and benches talk to) named in a spec or a bench pass; a house's file that names none
  -- fails too.
  it("fails naming each line of a file outside rocks/ that names a product's module or a rock's files", function()
    local dir = rocks_copy()
    assert(helper.execute("mkdir -p " .. q(dir .. "/spec") .. " " .. q(dir .. "/bench")))
    helper.write_file(dir .. "/spec/x_spec.lua", 'local run = require "rocks.redis.spec.support.redis_run"\n'
      .. 'local L = require("starvideos.fleet.ledger")\nlocal E = require "starvideos.emulator.media"\n'
      .. "-- rocks/s3/spec/support/s3_run.lua, in a comment\n")
    helper.write_file(dir .. "/bench/y.lua", 'local E = require "starvideos.emulator"\n')
    helper.write_file(dir .. "/Makefile", "X := rocks/s3/csrc/sigv4.c\n# rocks/redis/rock.mk, in a comment\n"
      .. "include $(wildcard rocks/*/rock.mk)\n")
    assert(helper.execute("cd " .. q(dir) .. " && git init -q && git add -A"))
    local out, ok = helper.capture(shape .. " " .. q(dir) .. " 2>&1")
    assert.is_falsy(ok, out)
    assert.matches("spec/x_spec.lua:1: names rocks/redis/, the starvideos-redis rock's files", out, 1, true)
    assert.matches("spec/x_spec.lua:2: names starvideos.fleet.ledger, a module of the starvideos-redis rock", out, 1,
      true)
    assert.matches("Makefile:1: names rocks/s3/, the starvideos-s3 rock's files", out, 1, true)
    -- (the house's files, not in this copy: their entries named, the list kept to what must name the rocks)
    assert.matches("HOUSE lists spec/hosts/build_spec.lua, which names no rock's module or files (or is not tracked)",
      out, 1, true)
    for _, passing in ipairs { "spec/x_spec.lua:3", "spec/x_spec.lua:4", "bench/y.lua", "Makefile:2", "Makefile:3" } do
      assert.is_nil(out:find(passing .. ":", 1, true), out)
    end
  end)

  -- The core rock depends on what the library needs alone (issue 68): argparse, the command line's once, planted
  -- among its dependencies fails, naming it.
  it("fails naming a dependency of the core rock that the library does not need", function()
    local dir = rocks_copy()
    local path = dir .. "/rockspec/starvideos-scm-1.rockspec"
    local text, n = assert(helper.read_file(path)):gsub('\n  "lua%-cjson >= 2%.1",', '%0\n  "argparse >= 0.7",', 1)
    assert.equal(1, n)
    helper.write_file(path, text)
    local out, ok = helper.capture(shape .. " " .. q(dir) .. " 2>&1")
    assert.is_falsy(ok, out)
    assert.matches("rockspec/starvideos-scm-1.rockspec: depends on argparse >= 0.7, which the library does not need",
      out, 1, true)
  end)

  -- A copy of the checkout's rocks with products' words planted in the core rock's code: a ledger's name built at
  -- run time from a word, a C string and a C name, a header's macro, an S3 header in the command; a comment naming
  -- one passes.  And rocks/folders.lua short of a rock.
  it("fails naming each product's word in the core rock's code, Lua, C or command, names built at run time too",
    function()
    local dir, append = rocks_copy()
    local lua = append("lua/starvideos/video.lua", 'local WORD = "Redis"\n'
      .. 'local function ledger() return require("starvideos.ledger." .. WORD:lower()) end\n'
      .. '-- a redis+sentinel:// store, in a comment: not read\n')
    local c = append("csrc/core/id.c", 'static const char *const SCHEME = "rediss://";\n'
      .. 'unsigned sv_crc16(const char *key, size_t len);\n/* sigv4, in a comment */\n')
    local h = append("csrc/lua/lsv.h", "#define SV_CLUSTER_SLOTS 16384\n")
    local bin = append("bin/starvideos", 'local date = "x-amz-date"\n')
    helper.write_file(dir .. "/rocks/folders.lua",
      'return { "rocks/redis/lua", "rocks/s3/lua", "rocks/observe/lua" }\n')
    local out, ok = helper.capture(shape .. " " .. q(dir) .. " 2>&1")
    assert.is_falsy(ok, out)
    local WHY = ", another rock's product (the core finds a rock only through its extension points, and names none, "
      .. "not even to build a name at run time)"
    for _, hit in ipairs { "lua/starvideos/video.lua:" .. lua .. ": names redis",
      "csrc/core/id.c:" .. c .. ": names rediss", "csrc/core/id.c:" .. (c + 1) .. ": names crc16",
      "csrc/lua/lsv.h:" .. h .. ": names cluster", "bin/starvideos:" .. bin .. ": names amz" } do
      assert.matches(hit .. WHY, out, 1, true)
    end
    local _, n = out:gsub("another rock's product", "")
    assert.equal(5, n, out) -- (not the comments)
    assert.matches("rocks/folders.lua: does not list rocks/emulator/lua (rocks/emulator/"
      .. "starvideos-emulator-scm-1.rockspec's Lua)", out, 1, true)
  end)

  -- A sink's rock owns its option's fields, its states and its note (issue 65): the core naming cfg.storage, a
  -- state's kind "upload" or "refs", or an ETag, in code, fails; in a comment it passes.
  it("fails naming cfg.storage, the kinds \"upload\" and \"refs\" and etag in the core's code, not in comments",
    function()
    local dir, append = rocks_copy()
    local at = append("lua/starvideos/lineage.lua", 'local function bucket(cfg) return cfg.storage ~= nil end\n'
      .. "local KINDS = { 'upload', \"refs\" }\nlocal function tag(r) return r.etag end\n"
      .. "-- cfg.storage, \"upload\", \"refs\" and etag in a comment: not read\n")
    local out, ok = helper.capture(shape .. " " .. q(dir) .. " 2>&1")
    assert.is_falsy(ok, out)
    local WHY = ", a sink's own (its rock checks its options and records its states"
    for _, hit in ipairs { at .. ": names cfg.storage" .. WHY, (at + 1) .. ': names "upload"' .. WHY,
      (at + 1) .. ': names "refs"' .. WHY, (at + 2) .. ": names etag, another rock's product" } do
      assert.matches("lua/starvideos/lineage.lua:" .. hit, out, 1, true)
    end
    local _, n = out:gsub("lua/starvideos/lineage.lua:%d+: names", "")
    assert.equal(4, n, out) -- (not the comment)
  end)

  -- extension.lua's X.HINTS is the one table of the core that names the rocks it ships (issue 54 item 2): a word in
  -- its constructor is not counted, the same word anywhere else of the file is.
  it("counts no product word in extension.lua's X.HINTS, and names one elsewhere in the file", function()
    local dir, append = rocks_copy()
    local path = dir .. "/lua/starvideos/extension.lua"
    local src = assert(helper.read_file(path))
    local planted, n = src:gsub("\nX%.HINTS = {\n", "\nX.HINTS = {\n  gs = { redis = \"starvideos-s3\" },\n", 1)
    assert.equal(1, n)
    helper.write_file(path, planted)
    local out = helper.capture(shape .. " " .. q(dir) .. " 2>&1")
    assert.is_nil(out:find("lua/starvideos/extension.lua", 1, true), out)
    local at = append("lua/starvideos/extension.lua", 'X.OTHER = { sigv4 = true }\n')
    local ok
    out, ok = helper.capture(shape .. " " .. q(dir) .. " 2>&1")
    assert.is_falsy(ok, out)
    local _, hits = out:gsub("lua/starvideos/extension.lua:%d+: names", "")
    assert.equal(1, hits, out)
    assert.matches("lua/starvideos/extension.lua:" .. at .. ": names sigv4, another rock's product", out, 1, true)
  end)

  -- A copy of the checkout's files the rocks' checks read; append adds text at a file's end: the file's lines before.
  local function checkout()
    local dir = helper.tmpdir()
    assert(helper.execute("cd " .. q(helper.root) .. " && cp -R lua rocks rockspec csrc bin docs " .. q(dir)))
    return dir
  end
  local function append(file, text)
    local src = assert(helper.read_file(file))
    local _, n = src:gsub("\n", "")
    helper.write_file(file, src .. text)
    return n
  end
  -- The shape check's failing output over dir (a checkout()) with text added at the end of its file path, and the
  -- file's lines before it.
  local function planted(dir, path, text)
    local n = append(dir .. "/" .. path, text)
    local out, ok = helper.capture(shape .. " " .. q(dir) .. " 2>&1")
    assert.is_falsy(ok, out)
    return out, n
  end

  -- A copy of the checkout with a product rock requiring a core module docs/architecture.md does not list.
  it("fails naming a rock's require of a core module outside docs/architecture.md's list, and passes the listed",
    function()
    local dir = checkout()
    local path = "rocks/observe/lua/starvideos/observe/init.lua"
    local out, n = planted(dir, path, 'local function later() return require("starvideos.job") end\n'
      .. 'local E = require "starvideos.errors"\nlocal C = require "starvideos.core"\n'
      .. 'local X = require "starvideos.extension"\n')
    assert.matches(path .. ":" .. (n + 1) .. ": requires starvideos.job, a core module not in docs/architecture.md's "
      .. "list of what a rock may require of the core", out, 1, true)
    assert.matches(path .. ":" .. (n + 2) .. ": requires starvideos.errors, a core module not", out, 1, true)
    local _, hits = out:gsub("a core module not in", "")
    assert.equal(2, hits, out) -- (core and extension: the list)
  end)

  -- The list of what a rock may require holds at most three modules, and a rock reads of the window (extension.lua's
  -- X.WINDOW) only the names it lists, as the page's table of it says them.
  it("fails a fourth module in the list, a name the window does not give, and a page's row not the window's",
    function()
    local dir = checkout()
    local page = assert(helper.read_file(dir .. "/docs/architecture.md"))
    page = page:gsub("(\n| `starvideos.extension` |[^\n]*)", "%1\n| `starvideos.job` | a job |", 1)
    page = page:gsub("| `errors` | `new_error` `argerror` |", "| `errors` | `new_error` `argerror` `hint` |", 1)
    helper.write_file(dir .. "/docs/architecture.md", page)
    local path = "rocks/redis/lua/starvideos/fleet/scripts.lua"
    local out, n = planted(dir, path, 'local A, B = X.ledger.lease, X.ledger.hidden\n'
      .. 'local R = X.errors\nlocal C = R.new_error or R.secret -- X.ledger.in_a_comment\n'
      .. 'local P, Q = X.config, X.request\nlocal D, E = P.env, Q:not_given()\n')
    assert.matches("docs/architecture.md: 4 core modules a rock may require, more than three", out, 1, true)
    assert.matches("docs/architecture.md: the window's row of errors is not `new_error` `argerror`", out, 1, true)
    assert.matches(path .. ":" .. (n + 1) .. ": reads ledger.hidden, not in the window", out, 1, true)
    assert.matches(path .. ":" .. (n + 3) .. ": reads errors.secret, not in the window", out, 1, true)
    assert.matches(path .. ":" .. (n + 5) .. ": reads request.not_given, not in the window", out, 1, true)
    local _, hits = out:gsub("not in the window", "")
    assert.equal(3, hits, out) -- (several locals at once, a method call; not a listed name, nor a comment)
  end)

  -- job.lua names every field a job has (issue 77): one given elsewhere and not listed, one listed and never given.
  it("fails a field the core gives a job that job.lua's list does not name, and a listed one never given", function()
    local dir = checkout()
    local out = planted(dir, "lua/starvideos/video.lua", "local function f(job) if job then job.unlisted = 1 end end\n")
    assert.matches("the core gives a job the field unlisted, not named in its list", out, 1, true)
    local path = dir .. "/lua/starvideos/job.lua"
    local src = assert(helper.read_file(path))
    helper.write_file(path, (src:gsub("seen_id %(what the ledger", "seen_id, stale_name (what the ledger", 1)))
    out = helper.capture(shape .. " " .. q(dir) .. " 2>&1")
    assert.matches("names stale_name, a field the core never gives a job", out, 1, true)
  end)

  -- The observer read a request's owner and a job's fields (req.owner.job, job.params): it learns by events now.
  it("fails a rock that reads a core job's or request's field, and passes a request's results", function()
    local dir = checkout()
    local path = "rocks/observe/lua/starvideos/observe/observer.lua"
    local out, n = planted(dir, path, "local function f(req, job) return req.done, req.err, req.status "
      .. "end\nlocal function g(req, job) return req.owner.job, job.params, job:advance() end -- job.id\n"
      .. "local function h(req, job) return req.dest, job.create end\n")
    assert.matches(path .. ":" .. (n + 2) .. ": reads req.owner, a field of the core's requests", out, 1, true)
    assert.matches(path .. ":" .. (n + 2) .. ": reads job.params, a field of the core's jobs", out, 1, true)
    assert.matches(path .. ":" .. (n + 3) .. ": reads req.dest, a field of the core's requests", out, 1, true)
    assert.matches(path .. ":" .. (n + 3) .. ": reads job.create, a field of the core's jobs", out, 1, true)
    local _, hits = out:gsub("a field of the core's", "")
    assert.equal(4, hits, out) -- (results read, a method, a comment: none; fields assigned anywhere in the core)
  end)

  it("gives a rock the window's names of a core module and raises on any other, naming the page", function()
    local X = require "starvideos.extension"
    assert.equal(require("starvideos.lease").FIRST, X.ledger.lease.FIRST)
    assert.equal(require("starvideos.errors").new_error, X.errors.new_error)
    local ok, err = pcall(function() return X.ledger.some_rule end)
    assert.is_false(ok)
    assert.matches("starvideos.ledger gives a rock no some_rule: the window is extension.lua's X.WINDOW "
      .. "(docs/architecture.md, \"What a rock may require of the core\")", tostring(err), 1, true)
    ok, err = pcall(function() return X.ledger.lease.number end) -- (lease.lua's, not the interface's)
    assert.is_false(ok)
    assert.matches("the ledger's lease gives a rock no number: docs/architecture.md, \"The ledger interface\"",
      tostring(err), 1, true)
    assert.is_nil(X.job) -- (no part of that name)
    assert.is_nil(X.lease) -- (a module behind the interface: no part)
    local parts, names = 0, 0
    for _, list in pairs(X.WINDOW) do parts, names = parts + 1, names + #list end
    assert.same({ 4, 20 }, { parts, names }) -- (issue 77: at most 4 parts, about 20 names)
  end)

  -- A copy of the library with requires against the order added: a core module's lazy
  -- require of extras/ (inside a function), records/ requiring fleet/, nginx/ requiring
  -- extras/ (beside each other); the entry module (client) and a require in a comment pass.
  it("fails naming each module and its require against the layers' order, a lazy one too", function()
    local dir = helper.tmpdir()
    assert(helper.execute("cp -R " .. q(helper.root .. "/lua") .. " " .. q(dir .. "/lua")))
    assert(helper.execute("cp -R " .. q(helper.root .. "/rocks") .. " " .. q(dir .. "/rocks")))
    local function add(name, text) return append(dir .. "/lua/starvideos/" .. name .. ".lua", text) + 1 end
    local at = add("request", 'local function later() return require("starvideos.extras.notify") end\n')
    add("records/journal", 'local Store = require "starvideos.fleet.store"\n')
    add("nginx/wire", 'local Log = require "starvideos.extras.log"\n-- require "starvideos.fleet.ledger"\n')
    add("client", 'local Ledger = require "starvideos.fleet.ledger"\n')
    add("loop", '-- require("starvideos.nginx.transport")\n')
    local out, ok, code = helper.capture(shape .. " " .. q(dir) .. " 2>&1")
    assert.is_falsy(ok, out)
    assert.equal(1, code)
    assert.matches("lua/starvideos/request.lua:" .. at .. ": starvideos.request (core) requires "
      .. "starvideos.extras.notify (extras), against the layers' order: core may require core", out, 1, true)
    assert.matches("starvideos.records.journal (records) requires starvideos.fleet.store (fleet)", out, 1, true)
    assert.matches("starvideos.nginx.wire (nginx) requires starvideos.extras.log (extras)", out, 1, true)
    assert.is_nil(out:find("requires starvideos.fleet.ledger", 1, true), out)
    assert.is_nil(out:find("starvideos.loop (core) requires", 1, true), out)
    local _, n = out:gsub("against the layers' order", "")
    assert.equal(3, n, out)
  end)

  it("fails naming a function over 60 and a cycle; a module over 400 lines is an alarm it prints; cli/ is not "
    .. "counted", function()
    local dir = tree {
      big = lines(400),
      long = "local M = {}\nfunction M.f()\n" .. lines(60, "  local y = 1") .. "end\nreturn M\n",
      a = 'local b = require "starvideos.b"\nreturn {}\n',
      b = 'local a = require("starvideos.a")\nreturn {}\n',
      ["cli/huge"] = lines(900),
    }
    local out, ok, code = helper.capture(shape .. " " .. q(dir) .. " 2>&1")
    assert.is_falsy(ok)
    assert.equal(1, code)
    assert.matches("shape: alarm: lua/starvideos/big.lua: 401 lines (past 400", out, 1, true)
    assert.matches("lua/starvideos/long.lua:2: a function of 62 lines (at most 60)", out, 1, true)
    assert.matches("a require cycle: starvideos.", out, 1, true)
    assert.is_nil(out:find("huge", 1, true), out)
  end)

  it("passes a module of 400 lines and a function of 60", function()
    local dir = tree { edge = lines(399), fn = "local M = {}\nfunction M.f()\n" .. lines(58, "  local y = 1")
      .. "end\nreturn M\n" }
    c_tree(dir, { ["core/edge.c"] = "static int lone(void) { return 1; }\n\n" .. c_function("edge", 60) })
    local out, ok = helper.capture(shape .. " " .. q(dir) .. " 2>&1")
    assert.is_true(ok, out)
    assert.matches("C: the longest function edge (csrc/core/edge.c:5), 60 lines", out, 1, true)
  end)

  it("fails naming a module that leaves LuaJIT's compiler on (docs/architecture.md's other rules)", function()
    local dir = tree({ bare = "return {}\n", commented = "-- " .. INTERPRETED .. "return {}\n" }, true)
    local out, ok = helper.capture(shape .. " " .. q(dir) .. " 2>&1")
    assert.is_falsy(ok, out)
    assert.matches("lua/starvideos/bare.lua: no line " .. INTERPRETED, out, 1, true)
    assert.matches("lua/starvideos/commented.lua: no line", out, 1, true)
  end)

  it("fails naming a cfg field that holds a function returning a module (the core's options are no hooks)",
    function()
    local dir = tree({ client = "local cfg = {}\ncfg.on_object = function() return require \"starvideos.object\" end\n"
      .. "cfg.on_refs = function ( ) return require('starvideos.refs') end\n"
      .. "cfg.on_done = function(job) return require('starvideos.notify').job_done(job) end\nreturn cfg\n" })
    local out, ok = helper.capture(shape .. " " .. q(dir) .. " 2>&1")
    assert.is_falsy(ok, out)
    assert.matches("lua/starvideos/client.lua:2: cfg.on_object holds a function returning a module", out, 1, true)
    assert.matches("lua/starvideos/client.lua:3: cfg.on_refs holds a function returning a module", out, 1, true)
    assert.is_nil(out:find("on_done", 1, true), out) -- (a function calling one: no module handed around)
  end)

  it("fails naming a C function over 60 lines as file:line:function; test/, fuzz/ and bench/ not counted", function()
    local dir = c_tree(tree {}, {
      ["core/long.c"] = "static int lone(void) { return 1; }\n" .. c_function("too_long", 61),
      ["lua/ok.c"] = c_function("short_one", 20),
      ["test/t.c"] = c_function("test_main", 200),
      ["fuzz/f.c"] = c_function("fuzz_main", 200),
      ["bench/b.c"] = c_function("bench_main", 200),
    })
    local out, ok, code = helper.capture(shape .. " " .. q(dir) .. " 2>&1")
    assert.is_falsy(ok)
    assert.equal(1, code)
    assert.matches("csrc/core/long.c:4:too_long: a C function of 61 lines (at most 60)", out, 1, true)
    assert.is_nil(out:find("short_one", 1, true), out)
    assert.is_nil(out:find("_main", 1, true), out)
  end)
end)
