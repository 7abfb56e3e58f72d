-- Row 1 and 2 of make bench: sequential queries over http, against bare
-- libcurl in C and against LuaSocket + lua-cjson (bench/lib/query.lua says how).
require "bench.lib.query" { tls = false }
