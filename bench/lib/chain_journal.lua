-- A journal of one chain of n generations (spec/tools/lineage_cli_spec.lua's "list --tree of 3,000 generations",
-- bench/tree.lua): task video_i created by `again` of video_(i-1), the first a root, each to its own file
-- dir/o<i>.mp4, prompt "p<i>".  M.write(path, n, dir).
local M = {}

function M.write(path, n, dir)
  local f = assert(io.open(path, "wb"))
  for i = 1, n do
    local parent = i > 1 and string.format(',"parent":"video_%d","relation":"again"', i - 1) or ""
    f:write(string.format('{"event":"created","local":"l%d","id":"video_%d","model":"videos","prompt":"p%d",'
      .. '"out":"%s/o%d.mp4","key":"%s/o%d.mp4","time":1700000000%s}\n', i, i, i, dir, i, dir, i, parent))
  end
  assert(f:close())
end

return M
