-- Steps the checks of the docs share (spec/hosts/love_spec.lua, spec/hosts/embed_spec.lua,
-- spec/extras/webhook_spec.lua, spec/extras/notify_spec.lua, spec/hosts/notify_nginx_spec.lua):
-- a section of a markdown page, the lines of a sh block, the emulator started as
-- a line of the docs says, and docs/webhooks.md's OpenResty webhook receiver in
-- an nginx of the spec's.

local helper = require "spec.helper"

local shell_quote = helper.shell_quote

local readme = {}

-- The text of the markdown page at path (from the checkout's top) under the
-- heading line `heading` ("## LÖVE"), up to the next heading of its level or
-- above; raises when the page or the heading is missing.
function readme.section(path, heading)
  local text = assert(helper.read_file(helper.root .. "/" .. path), "cannot read " .. path)
  local level = #heading:match("^#+")
  local start = ("\n" .. text):find("\n" .. heading .. "\n", 1, true)
  assert(start, path .. " has no heading " .. heading)
  local body = text:sub(start + #heading + 1)
  local stop
  for pos, hashes in body:gsub("```.-```", function(b) return (b:gsub("[^\n]", " ")) end):gmatch("()\n(#+) ") do
    if #hashes <= level then stop = pos break end
  end
  return stop and body:sub(1, stop) or body
end

-- The commands of a ```sh block: continuation lines joined, comments dropped.
function readme.sh_lines(block)
  local lines = {}
  for line in block:gsub("\\\n%s*", ""):gmatch("[^\n]+") do lines[#lines + 1] = (line:gsub("%s+#.*$", "")) end
  return lines
end

-- Runs the docs' `bin/starvideos emulator ...` line in folder dir (it picks
-- its port unless the line says --port); returns the URL it printed (nil when
-- none) and a function that stops it.
function readme.emulator(dir, line)
  assert(line:find("^bin/starvideos emulator"), "not an emulator line: " .. line)
  local proc = helper.spawn(helper.UNINSTRUMENTED .. "sh -c "
    .. shell_quote("cd " .. shell_quote(dir) .. " && exec " .. line .. " 2>/dev/null"))
  local url
  for _ = 1, 10 do
    local l = proc.pipe:read("*l")
    url = l and l:match("listening on (http://127%.0%.0%.1:%d+)")
    if url or not l then break end
  end
  return url, function()
    helper.execute("kill " .. proc.pid .. " 2>/dev/null")
    proc.pipe:close()
  end
end

-- A line of the docs with its http://127.0.0.1:PORT made url.
function readme.with_url(line, url)
  assert(line:find("http://127.0.0.1:PORT", 1, true), "no http://127.0.0.1:PORT in: " .. line)
  return (line:gsub("http://127%.0%.0%.1:PORT", url))
end

-- The receivers of docs/webhooks.md, by the language of their fenced block.
local RECEIVERS = { lua = "## An OpenResty receiver", python = "## A Python receiver" }

-- The fenced block of `lang` under its receiver's heading in docs/webhooks.md.
function readme.webhooks_block(lang)
  local heading = assert(RECEIVERS[lang], "docs/webhooks.md has no receiver in " .. tostring(lang))
  local section = readme.section("docs/webhooks.md", heading)
  return assert(section:match("```" .. lang .. "\n(.-)```"), "docs/webhooks.md's " .. heading .. " has no "
    .. lang .. " block")
end

-- nginx serving docs/webhooks.md's OpenResty receiver (its ```lua block, as written)
-- at /hook, with WEBHOOK_SECRET = secret, its files in dir; `more`: lines
-- for the server block; access_log: a file where each request's webhook-id,
-- status and Authorization go ("<id> <status> <authorization or ->" a line),
-- or nil.  { port =, stop = } (nginx_run.serve).
function readme.hook_receiver(dir, secret, more, access_log, port)
  local nginx_run = require "spec.support.nginx_run"
  helper.write_file(dir .. "/hook.lua", readme.webhooks_block("lua"))
  return nginx_run.serve(dir, function(p)
    local lines = nginx_run.conf_head(dir, 1)
    table.insert(lines, 3, "env WEBHOOK_SECRET;")
    if access_log then
      lines[#lines + 1] = "    log_format hooks '$http_webhook_id $status $http_authorization';"
    end
    lines[#lines + 1] = string.format("    server { listen 127.0.0.1:%d;", p)
    if access_log then lines[#lines + 1] = "        access_log " .. access_log .. " hooks;" end
    lines[#lines + 1] = "        client_body_buffer_size 1m;"
    lines[#lines + 1] = string.format("        location = /hook { content_by_lua_file %s; }", dir .. "/hook.lua")
    for _, l in ipairs(more or {}) do lines[#lines + 1] = l end
    for _, l in ipairs { "    }", "}", "" } do lines[#lines + 1] = l end
    return table.concat(lines, "\n")
  end, port, { WEBHOOK_SECRET = secret })
end

return readme
