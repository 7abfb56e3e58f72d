-- Steps the README checks share (spec/love_spec.lua, spec/embed_spec.lua):
-- the lines of a sh block, and the emulator started as a README line says.

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

return readme
