-- Steps the README checks share (spec/hosts/love_spec.lua, spec/hosts/embed_spec.lua,
-- spec/extras/webhook_spec.lua, spec/extras/notify_spec.lua): the lines of a sh block, the
-- emulator started as a README line says, and the README's OpenResty webhook
-- receiver in an nginx of the spec's.

local helper = require "spec.helper"

local shell_quote = helper.shell_quote

local readme = {}

-- The commands of a ```sh block: continuation lines joined, comments dropped.
function readme.sh_lines(block)
  local lines = {}
  for line in block:gsub("\\\n%s*", ""):gmatch("[^\n]+") do lines[#lines + 1] = (line:gsub("%s+#.*$", "")) end
  return lines
end

-- Runs a README's `bin/starvideos emulator ...` line in folder dir (it picks
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

-- A README line with its http://127.0.0.1:PORT made url.
function readme.with_url(line, url)
  assert(line:find("http://127.0.0.1:PORT", 1, true), "no http://127.0.0.1:PORT in: " .. line)
  return (line:gsub("http://127%.0%.0%.1:PORT", url))
end

-- The fenced block of `lang` in the README's "### Webhooks" section.
function readme.webhooks_block(lang)
  local text = assert(helper.read_file(helper.root .. "/README.md"))
  local section = assert(text:match("\n### Webhooks\n(.-)\n##? "), "README has no ### Webhooks section")
  return assert(section:match("```" .. lang .. "\n(.-)```"), "### Webhooks has no " .. lang .. " block")
end

-- nginx serving the README's OpenResty receiver (its ```lua block, as written)
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
