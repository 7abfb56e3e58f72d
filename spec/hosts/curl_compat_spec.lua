-- libcurl 7.68 and newer: the C builds against 7.68 (tools/curl-compat.sh, the
-- table csrc/curl/curl_versions.txt), and both ways of keeping transfers to http(s)
-- (CURLOPT_PROTOCOLS_STR from 7.85, the bitmask options before) hold on the
-- wire.  C checks, not VM ones: they run under lua5.4 only.

local helper = require "spec.helper"

local q = helper.shell_quote
local root = helper.root

local function sh(cmd)
  return helper.capture("cd " .. q(root) .. " && " .. cmd .. " 2>&1")
end

local write = helper.write_file

-- spec/fixtures/redirect_ftp.lua under the module found through cpath
local function redirect_to_ftp(cpath)
  local dir = helper.tmpdir()
  local out = sh("env -u LUA_CPATH_5_4 LUA_CPATH=" .. q(cpath .. ";;") .. " lua5.4 spec/fixtures/redirect_ftp.lua "
    .. q(dir .. "/video.mp4"))
  return out
end

describe("libcurl 7.68", function()
  if helper.vm ~= "lua5.4" then
    pending("C checks: they run once, under lua5.4 (make test, and the lua5.4 part of make test-all)")
    return
  end

  after_each(helper.cleanup)

  it("every libcurl name the C uses is listed with its version, and the C compiles as 7.68 sees it", function()
    local out, ok = sh("sh tools/curl-compat.sh")
    assert.is_true(ok, out)
    assert.matches("csrc/curl/multi.c compiles as for libcurl 7.68.0", out, 1, true)
    assert.matches("csrc/curl/send.c compiles as for libcurl 7.68.0", out, 1, true)
    assert.matches("csrc/curl/body.c compiles as for libcurl 7.68.0", out, 1, true)
    -- only the transport uses libcurl: the rest of the core (starvideos.core) links without it
    assert.is_nil(out:find("csrc/core/", 1, true))
    assert.matches("newer than 7.68.0 (guarded): CURLOPT_PROTOCOLS_STR CURLOPT_REDIR_PROTOCOLS_STR", out, 1, true)
  end)

  it("fails on a newer name outside a version guard, and on a name missing from the table", function()
    local dir = helper.tmpdir()
    write(dir .. "/unguarded.c", '#include <curl/curl.h>\nvoid f(CURL *e);\n'
      .. 'void f(CURL *e) { curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"); }\n')
    local out, ok = sh("sh tools/curl-compat.sh " .. q(dir .. "/unguarded.c"))
    assert.is_nil(ok, out)
    assert.matches('attempt to use poisoned "CURLOPT_REDIR_PROTOCOLS_STR"', out, 1, true)

    write(dir .. "/guarded.c", '#include <curl/curl.h>\nvoid f(CURL *e);\nvoid f(CURL *e) {\n'
      .. '#if LIBCURL_VERSION_NUM >= 0x075500\n'
      .. '  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");\n'
      .. '#else\n  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));\n'
      .. '#endif\n}\n')
    out, ok = sh("sh tools/curl-compat.sh " .. q(dir .. "/guarded.c"))
    assert.is_true(ok, out)

    write(dir .. "/unlisted.c", '#include <curl/curl.h>\nvoid f(CURL *e);\n'
      .. 'void f(CURL *e) { curl_easy_setopt(e, CURLOPT_VERBOSE, 1L); }\n')
    out, ok = sh("sh tools/curl-compat.sh " .. q(dir .. "/unlisted.c"))
    assert.is_nil(ok, out)
    assert.matches("uses libcurl names not in csrc/curl/curl_versions.txt: CURLOPT_VERBOSE", out, 1, true)
  end)

  it("built as for 7.68 (the bitmask options), refuses a redirect to ftp:// and never connects there", function()
    local out, ok = sh('LUA_INC="$(pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)"' ..
      " sh tools/curl-compat.sh --module build/curl-7.68/lua5.4/starvideos/core.so")
    assert.is_true(ok, out)
    out = redirect_to_ftp(root .. "/build/curl-7.68/lua5.4/?.so")
    assert.matches("^ftp connects=0 wire=fatal err=download: network error: [^\n]*ftp", out)
  end)

  it("built as usual (CURLOPT_PROTOCOLS_STR here), does the same", function()
    local out = redirect_to_ftp(helper.cpath)
    assert.matches("^ftp connects=0 wire=fatal err=download: network error: [^\n]*ftp", out)
  end)
end)
