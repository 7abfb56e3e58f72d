-- The child process of rocks/s3/bench/s3.lua, run under /usr/bin/time for its peak memory:
--   s3_child.lua URL s3://bucket/key    require + new + client:download(URL, s3://...), the store from AWS_*
local url, out = arg[1], arg[2]
local starvideos = require "starvideos"
local client = starvideos.new { api_key = "sk-bench" }
local path, err, sha256 = client:download(url, out)
assert(path == out and sha256 and #sha256 == 64, tostring(err))
client:close()
