-- starvideos.cli.verify: `starvideos verify PATH` (docs/lineage.md, "Where each video came from"): the file against
-- its provenance record PATH.json (its SHA-256 and size; the record's own fields against its record_sha256), then
-- each parent's record where it is present beside the parent's file (by its SHA-256, as the child's record names
-- it), and that parent's file against it, down the tree; with --pubkey PEM, the record's Ed25519 signature.  Exit 0:
-- all match; 1: something differs (said: a missing or bad signature too); 2: bad input (no such file, not a file, an
-- object's URL, a key file that is no Ed25519 public key).

local P = require "starvideos.provenance"
local args = require "starvideos.cli.args"
local output = require "starvideos.cli.output"
local json = require "starvideos.cli.json"

local type, ipairs, tostring, string_format = type, ipairs, tostring, string.format
local out, number_text = output.out, json.number_text

local M = {}

local function sign() return require "starvideos.sign" end
local function size(path) return require("starvideos.download").size(path) end

local function visible(s) return require("starvideos.shell").visible(tostring(s), true) end

-- The record beside path decoded, or nil, what is wrong with it (naming the file).  (Read with a bound, from a
-- regular file only: download.lua's record_of.)
local function record_of(path)
  local text, unread = P.read_file(path)
  if unread then return nil, visible(unread) end
  if not text then
    return nil, visible(path) .. " has no provenance record (" .. visible(path) .. P.SUFFIX .. " is not there)"
  end
  local rec, why = P.decode(text)
  if not rec then return nil, string_format("%s%s is not a record: %s", visible(path), P.SUFFIX, why) end
  if rec.format ~= P.FORMAT or type(rec.video) ~= "table" then
    return nil, string_format("%s%s is not a starvideos provenance record (format %s)", visible(path), P.SUFFIX,
      visible(rec.format))
  end
  return rec
end

-- The file at path against rec: its problems appended to r.problems; true when it matched.
local function against(path, rec, r)
  local bad = #r.problems
  local function differs(fmt, ...) r.problems[#r.problems + 1] = visible(path) .. ": " .. string_format(fmt, ...) end
  local sealed = P.seal(rec)
  if rec.record_sha256 ~= sealed then
    differs("its record was changed after it was written: its fields hash to %s, its record_sha256 says %s", sealed,
      visible(rec.record_sha256))
  end
  local bytes, sum = size(path), sign().sha256_file(path)
  if bytes ~= rec.video.bytes then differs("the file holds %s bytes; its record says %s", tostring(bytes),
    visible(rec.video.bytes)) end
  if sum ~= rec.video.sha256 then differs("the file's SHA-256 is %s; its record says %s", tostring(sum),
    visible(rec.video.sha256)) end
  return #r.problems == bad
end

local check

-- The parent p (the i-th of path's record) checked where its record is present.
local function parent(path, i, p, r, seen)
  local video = type(p) == "table" and type(p.video) == "table" and p.video or {}
  local what = string_format("%s's parent %d (%s, task %s)", visible(path), i, visible(p.relation), visible(p.task))
  local pp = video.path
  local function note(s) r.notes[#r.notes + 1] = what .. ": " .. s end
  if type(pp) ~= "string" then return note("no file recorded: not checked") end
  if pp:find("^%a[%w+.-]*://") then return note(visible(pp) .. " is an object: not checked here") end
  if not p.record_sha256 then return note("it had no record when this one was written: not checked") end
  local function wrong(s) r.problems[#r.problems + 1] = what .. ": " .. s end
  if pp:sub(1, 1) ~= "/" then -- (the library records a parent's absolute path: a relative one is not followed)
    return wrong(string_format("%s is not an absolute path (a record names its parent's file by one): not read",
      visible(pp)))
  end
  local text, unread = P.read_file(pp)
  if unread then return wrong(visible(unread)) end
  if not text then return note(visible(pp) .. P.SUFFIX .. " is not present: not checked") end
  local sum = sign().sha256(text)
  if sum ~= p.record_sha256 then
    r.problems[#r.problems + 1] = string_format("%s: its record %s%s has SHA-256 %s; this record names %s", what,
      visible(pp), P.SUFFIX, sum, visible(p.record_sha256))
    return
  end
  if seen[pp] then return end
  seen[pp] = true
  local kind = require("starvideos.core").file_kind(pp, true) -- (nothing opened: a FIFO would wait for a writer)
  if not kind then return note(visible(pp) .. " is not present: its record checked only") end
  if kind ~= "file" then
    return wrong(visible(pp) .. " is " .. require("starvideos.download").NOT_A_FILE[kind] .. ": not read")
  end
  return check(pp, r, seen)
end

-- path and its parents down the tree checked: r.checked, r.problems, r.notes filled.
function check(path, r, seen)
  local rec, why = record_of(path)
  if not rec then
    r.problems[#r.problems + 1] = why
    return
  end
  if against(path, rec, r) then
    r.checked[#r.checked + 1] = { path = path, sha256 = rec.video.sha256, bytes = rec.video.bytes, model = rec.model,
      task = rec.task_id, parents = type(rec.parents) == "table" and #rec.parents or 0 }
  end
  for i, p in ipairs(type(rec.parents) == "table" and rec.parents or {}) do parent(path, i, p, r, seen) end
end

-- The signature of path's record (rec) against the public key at pubkey (nil: not asked; a note says it is there).
local function signature(path, rec, pubkey, r)
  local s = rec and rec.signature
  if not pubkey then
    if type(s) == "table" then
      r.notes[#r.notes + 1] = string_format("%s: its record is signed (key %s): not checked (give --pubkey PEM)",
        visible(path), visible(s.key_id))
    end
    return
  end
  if not rec then return end
  local ok, why = P.verify_signature(rec, pubkey)
  if ok == nil then args.usage_error("--pubkey: %s", visible(why)) end
  if ok then r.signed = s.key_id
  else r.problems[#r.problems + 1] = visible(path) .. P.SUFFIX .. ": " .. why end
end

-- The file at path verified (and its record's signature by the Ed25519 public key in the PEM file pubkey, when
-- given): {checked =, problems =, notes =, signed = key_id}.  (Bad input: a usage error, exit 2.)
function M.verify(path, pubkey)
  local word = require("starvideos.shell").word
  local X = require "starvideos.extension"
  if X.scheme(path) then -- (the commands that fetch the object and its record: its sink's, when its rock is here)
    local name = path:match("([^/]+)/*$") or "video.mp4"
    local sink = X.optional("sink", X.scheme(path))
    local fetch = sink and sink.fetch and sink.fetch(path, name)
    args.usage_error("%s is an object's URL: verify reads a file and its record beside it; fetch both, then verify "
      .. "the file: %s", visible(path), fetch and fetch .. " && " .. args.INVOKED .. " verify " .. word(name)
      or "the object as " .. word(name) .. ", its record " .. word(path .. P.SUFFIX) .. " as " .. word(name
      .. P.SUFFIX) .. ", then " .. args.INVOKED .. " verify " .. word(name))
  end
  local file_kind = require("starvideos.core").file_kind
  local kind = file_kind(path, true)
  if kind ~= "file" then
    args.usage_error("%s is %s", visible(path), require("starvideos.download").NOT_A_FILE[kind] or "not there")
  end
  local video = path:sub(-#P.SUFFIX) == P.SUFFIX and path:sub(1, -#P.SUFFIX - 1)
  if video and video ~= "" and not file_kind(path .. P.SUFFIX, true) then -- (a record given: it has none of its own)
    args.usage_error("%s is a provenance record, not a video: give the video it describes (%s verify %s)",
      visible(path), args.INVOKED, word(video))
  end
  local r = { checked = {}, problems = {}, notes = {} }
  check(path, r, { [path] = true })
  signature(path, record_of(path), pubkey, r)
  return r
end

function M.run(ctx, opts, pos)
  local path = pos[1]
  local r = M.verify(path, opts.pubkey)
  local ok = #r.problems == 0
  if ctx.json then
    output.print_json({ path = path, ok = ok, checked = json.array(r.checked), problems = json.array(r.problems),
      notes = json.array(r.notes), signed_by = r.signed })
  else
    for _, c in ipairs(r.checked) do
      out(string_format("matches: %s (SHA-256 %s, %s bytes%s%s)\n", visible(c.path), c.sha256, number_text(c.bytes),
        c.task and ", task " .. visible(c.task) or "", c.parents > 0 and ", " .. c.parents .. " parent(s)" or ""))
    end
    if r.signed then out(string_format("signed: %s%s by key %s\n", visible(path), P.SUFFIX, r.signed)) end
    for _, n in ipairs(r.notes) do out("note: ", n, "\n") end
    for _, p in ipairs(r.problems) do io.stderr:write("differs: ", p, "\n") end
  end
  return ok and 0 or 1
end

return M
