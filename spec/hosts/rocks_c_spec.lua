-- Each rock's C in its own rock (issue 54, item 3), read off the built modules' symbol tables (`nm`, the local
-- symbols too: every symbol of the core is hidden, so `nm -D` shows luaopen_* alone):
--   * the core's modules (core.so, curl.so, sign.so) hold none of the other rocks' C: no Redis store-URL parser,
--     no crc16 (a key's Cluster slot), no S3 part checksum (a part's SHA-256 and Content-MD5);
--   * the s3 rock's signer (sigv4.so) holds of the core only what it uses: no request, answer, verdict, model,
--     URL, journal or .part code;
--   * the redis rock's grammar (fleet/native.so) holds the parser and the slot, and nothing of the core.
-- The modules of the default VM (build/starvideos/), and LuaJIT's when `make luajit` built them.
local helper = require "spec.helper"

local q = helper.shell_quote

-- The symbols a module defines (nm --defined-only: code, data, local or not): name -> true.
local function defined(so)
  local out, ok = helper.capture("nm --defined-only " .. q(so) .. " 2>&1")
  assert(ok, out)
  local names = {}
  for name in out:gmatch("%x+ %a ([%w_.@]+)") do names[(name:gsub("%.%d+$", ""))] = true end
  return names
end

-- The functions a module imports (nm -u): name -> true.
local function imported(so)
  local out = assert(helper.capture("nm -u " .. q(so) .. " 2>&1"))
  local names = {}
  for name in out:gmatch("U ([%w_]+)") do names[name] = true end
  return names
end

-- The names of `names` that match one of the patterns, sorted.
local function matching(names, patterns)
  local hits = {}
  for name in pairs(names) do
    for _, p in ipairs(patterns) do
      if name:match(p) then hits[#hits + 1] = name break end
    end
  end
  table.sort(hits)
  return hits
end

local DIRS = { helper.root .. "/build/starvideos/" }
if helper.exists(helper.root .. "/build/luajit/starvideos/core.so") then
  DIRS[2] = helper.root .. "/build/luajit/starvideos/"
end

-- Another rock's C: the Redis store-URL grammar (its parser, its schemes, its Lua binding), crc16 (the Cluster
-- slot), the S3 part sums (a part's digests and their Lua method).
local OTHER_ROCKS = { "store_url", "STORE_SCHEMES", "^store_hosts$", "^store_credentials$", "^store_unix$",
  "redis", "slot", "crc16", "sv_stream_part", "^part_begin$", "^s_part$", "^l_part$", "sums", "md5", "^parts_" }
-- The core's own, that the signer neither calls nor should carry.
local NOT_THE_SIGNERS = { "^sv_json_", "^sv_verdict", "^lsv_push_verdict$", "^sv_answer", "^sv_model",
  "^sv_url_", "^sv_proxy_", "^sv_journal", "^sv_part_", "^sv_build_", "^sv_read_limits$", "^sv_limits",
  "^sv_result_path$", "^sv_validate", "^sv_store_", "^sv_redis_", "^lsv_push_part", "^lsv_open_part$",
  "^sv_commit", "^sv_hash_hex$", "^sv_random_hex$", "^sv_request_id$", "^sv_wallclock$" }

describe("the rocks' C, by the symbols of the built modules", function()
  for _, dir in ipairs(DIRS) do
    it("leaves no Redis URL parser, crc16 or S3 part checksum in the core's modules (" .. dir .. ")", function()
      local found = {}
      for _, m in ipairs { "core.so", "curl.so", "sign.so" } do
        local names = defined(dir .. m)
        -- (a symbol table to read: not a stripped module, where nothing would be found)
        assert.is_true(names.sv_buf_add and names.sv_error_set, m .. " has no symbol table")
        found[m] = matching(names, OTHER_ROCKS)
        -- Content-MD5 is a part's, the s3 rock's: the core asks libcrypto for no MD5
        for _, name in ipairs(matching(imported(dir .. m), { "[Mm][Dd]5" })) do table.insert(found[m], name) end
      end
      assert.same({ ["core.so"] = {}, ["curl.so"] = {}, ["sign.so"] = {} }, found)
    end)

    it("links into the s3 rock's signer only what it uses of the core (" .. dir .. ")", function()
      local names = defined(dir .. "sigv4.so")
      assert.is_true(names.sv_sigv4_sign and names.sv_uri_encode, "sigv4.so has no symbol table")
      assert.same({}, matching(names, NOT_THE_SIGNERS))
      assert.is_true(names.sv_stream_feed and names.lsv_fail, "what it uses of the core is there")
    end)

    it("gives the redis rock its grammar, the core's none (" .. dir .. ")", function()
      local names = defined(dir .. "fleet/native.so")
      assert.is_true(names.sv_store_url_parse and names.sv_redis_slot, "fleet/native.so: the parser and the slot")
      assert.same({}, matching(names, { "^sv_buf_", "^sv_error_", "^lsv_", "^sv_json_", "^sv_url_" }))
    end)
  end
end)
