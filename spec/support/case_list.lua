-- What the case lists (spec/support/*_cases.lua) share: the names the library uses of an interface, read from its
-- code, the names a list's cases cover, and how each case runs on a place of the matrix (docs/matrix.md), proving
-- the promises it names there.
local helper = require "spec.helper"

local M = {}

-- The names the library's files (globs, from the root; skip: paths left out) use by patterns (each capturing a
-- name), read in code, not comments: name -> the first path using it.
function M.uses(globs, skip, patterns)
  local used = {}
  local files = io.popen("cd " .. helper.shell_quote(helper.root) .. " && ls " .. table.concat(globs, " "))
  for path in files:lines() do
    local src = not skip[path] and assert(helper.read_file(helper.root .. "/" .. path)):gsub("%-%-[^\n]*", "") or ""
    for _, pattern in ipairs(patterns) do
      for name in src:gmatch(pattern) do used[name] = used[name] or path end
    end
  end
  files:close()
  return used
end

-- The names the cases cover (each case's covers), each asserted to be listed (name -> true): name -> true.
function M.covered(cases, listed, assert)
  local covered = {}
  for _, case in ipairs(cases) do
    for _, name in ipairs(case.covers) do
      assert.truthy(listed[name], case.name .. " covers " .. name .. ", not in the table")
      covered[name] = true
    end
  end
  return covered
end

-- Each case of list as a test of busted's (b: describe, it, after_each) under title, run by run(case); after:
-- run after each (nil: nothing); place: the matrix's place the list runs on (spec/support/matrix.lua), where a case
-- that passed proves its promises (case.promise: an id or a list; none: no cell), or nil.
function M.each(b, title, list, run, after, place)
  b.describe(title, function()
    if after then b.after_each(after) end
    for _, case in ipairs(list) do
      b.it(case.name, function()
        run(case)
        if place and case.promise then require("spec.support.matrix").record(case.promise, place, case.name) end
      end)
    end
  end)
end

return M
