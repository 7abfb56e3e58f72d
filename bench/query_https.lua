-- Row 3 of make bench: sequential queries over https (the run's CA trusted
-- through ca_file), against bare libcurl in C and against LuaSec + lua-cjson
-- (bench/lib/query.lua says how).
require "bench.lib.query" { tls = true }
