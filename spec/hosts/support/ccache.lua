-- Builds of the rock or of a clone that compile the same C file again, through
-- ccache (Debian: /usr/lib/ccache, its cc and gcc in front of the real ones),
-- into a cache of the spec's own, cold at each run: a compile whose
-- preprocessed text and flags were seen before (csrc/core/*.c: three times in
-- a rock, in every VM's build, in `make`, `make luajit` and `make static`) is
-- the object the compiler made then.  Commands and outputs are the builds' own.
-- Without ccache installed (make deps installs it), the plain compiler.
local helper = require "spec.helper"

local q = helper.shell_quote
local M = {}

-- A cache directory anyone may write (a build that runs as nobody shares it),
-- removed by helper.cleanup, or (`lasting`) by M.remove; nil without ccache.
function M.dir(lasting)
  if not helper.execute("command -v ccache >/dev/null 2>&1 && test -x /usr/lib/ccache/gcc") then return nil end
  local dir = lasting and assert(helper.capture("mktemp -d /tmp/starvideos-ccache.XXXXXX")):match("^(%S+)")
    or helper.tmpdir()
  assert(helper.execute("chmod 1777 " .. q(dir)))
  return dir
end

function M.remove(dir)
  if dir then helper.execute("rm -rf " .. q(dir)) end
end

-- `env` arguments for a build with the cache `dir` (nil: none): PATH is
-- `path` (a shell word; default: the caller's), ccache's compilers first.
function M.env(dir, path)
  path = path or '"$PATH"'
  if not dir then return "PATH=" .. path .. " " end
  return "CCACHE_DIR=" .. q(dir) .. " CCACHE_UMASK=000 PATH=/usr/lib/ccache:" .. path .. " "
end

return M
