-- What an strace log of a download says about its commit (spec/support/
-- transport_cases.lua, spec/hosts/ngx_wire_spec.lua): `strace -f -qq -e trace=openat,
-- open,close,fsync,fdatasync,rename,renameat,renameat2`, so each line starts
-- with its thread's id.
--
--   M.read(log, part, path) -> {
--     opens       how many times part was opened to be written (each with
--                 O_EXCL, else bad_open is the first line without it)
--     reads       how many times it was opened read-only (once: the commit's
--                 MP4 check and hash read it back in one read, which checks
--                 that the name is still the file written); read_thread: the
--                 thread of the first
--     synced      part was fsync'd on the descriptor it was opened as, before
--                 the rename; sync_thread: the thread that did it
--     renamed     part was renamed to path after that sync
--     dir_synced  the folder (path's) was fsync'd after the rename
--   }

local M = {}

function M.read(log, part, path)
  local folder = path:match("^(.*)/")
  local r = { opens = 0, reads = 0 }
  local fd, dir_fd
  local waiting = {} -- an open strace split (<unfinished ...>): its name and flags by thread, till it resumed
  for l in log:gmatch("[^\n]+") do
    local pid = l:match("^(%d+)")
    local name, flags = l:match('open[at]*%([^"]*"([^"]*)", ([^,%)]*)')
    local ret = l:match("= (%-?%d+)")
    if name and not ret then waiting[pid or ""] = { name, flags } end
    if not name and l:find("open[at]* resumed>") and waiting[pid or ""] then
      name, flags = waiting[pid or ""][1], waiting[pid or ""][2]
    end
    if not ret then name = nil end -- (counted once it resumed with its descriptor)
    if name == part and not flags:find("O_WRONLY", 1, true) and not flags:find("O_RDWR", 1, true) then
      r.reads, r.read_thread = r.reads + 1, r.read_thread or tonumber(l:match("^(%d+)"))
    elseif name == part then
      r.opens = r.opens + 1
      if not flags:find("O_EXCL", 1, true) then r.bad_open = r.bad_open or l end
      fd = ret
    elseif name == folder and flags:find("O_DIRECTORY", 1, true) then
      dir_fd = ret
    end
    local c = l:match("close%((%d+)")
    if c and c == fd and not r.synced then fd = nil end
    if c and c == dir_fd and not r.dir_synced then dir_fd = nil end
    local s = l:match("fsync%((%d+)") or l:match("fdatasync%((%d+)")
    if s and s == fd and not r.renamed then r.synced, r.sync_thread = true, tonumber(l:match("^(%d+)")) end
    if s and s == dir_fd and r.renamed then r.dir_synced = true end
    local from, to = l:match('rename[at2]*%([^"]*"([^"]*)", [^"]*"([^"]*)"')
    if from == part and to == path then r.renamed = r.synced end
  end
  return r
end

-- The assertions both specs make on it, with A (busted's assert) and the log
-- in every message.
function M.check(A, log, part, path)
  local r = M.read(log, part, path)
  A.equal(1, r.opens, "the .part was opened to be written other than once:\n" .. log)
  A.is_nil(r.bad_open, "the .part was opened without O_EXCL:\n" .. log)
  A.equal(1, r.reads, "the .part was read back other than once (its MP4 check and its hash: one read):\n" .. log)
  A.is_true(r.synced, "the .part was not synced on the descriptor it was written through:\n" .. log)
  A.is_true(r.renamed, "no rename after the sync:\n" .. log)
  A.is_true(r.dir_synced, "the folder was not synced after the rename:\n" .. log)
  return r
end

return M
