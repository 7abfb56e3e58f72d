-- The Lua folders of the rocks beside the core, for a checkout's command line (bin/starvideos reads this file
-- where it sits next to the checkout's lua/; an installed command has none): the core never names them itself.
-- tools/shape_rocks.lua checks it against the rockspecs (rocks/<rock>/*.rockspec: rocks/<rock>/lua each).
return { "rocks/redis/lua", "rocks/s3/lua", "rocks/observe/lua", "rocks/emulator/lua" }
