-- The child process of bench/download.lua, run under /usr/bin/time for its
-- peak memory:
--   download_child.lua idle BASE_URL            require + new, then exit
--   download_child.lua get BASE_URL URL PATH    require + new + client:download(URL, PATH)
local mode, base, url, path = arg[1], arg[2], arg[3], arg[4]
local starvideos = require "starvideos"
local client = starvideos.new { api_key = "sk-bench", base_url = base }
if mode == "get" then -- verified: its SHA-256 comes back
  local _, err, sha256 = client:download(url, path)
  assert(sha256 and #sha256 == 64, tostring(err))
elseif mode ~= "idle" then
  error("usage: download_child.lua idle BASE_URL | get BASE_URL URL PATH")
end
client:close()
