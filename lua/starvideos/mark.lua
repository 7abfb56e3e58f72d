-- The mark inside a saved MP4 (docs/lineage.md, "The mark inside the file"): an XMP packet in a top-level `uuid` box
-- (the XMP specification's placement for MP4, part 3: the UUID BE7ACFCB-97A9-42E8-9C71-999491E3AFAC) saying that the
-- video was made by a trained algorithm (IPTC's digital source type), by which model, for which task, through which
-- library.  The box is appended after the file's last top-level box, where its commit reads the file for its SHA-256
-- (download.lua, csrc/core/part.c's sv_mark): the bytes before it, the pictures', stay as the service sent them.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

local string_char, tostring, math_floor = string.char, tostring, math.floor

local M = {}

M.UUID = "\190\122\207\203\151\169\66\232\156\113\153\148\145\227\175\172" -- BE7ACFCB-97A9-42E8-9C71-999491E3AFAC
M.SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia" -- IPTC's digital source type
M.NS = "https://starvideos.invalid/xmp/1.0/" -- the task's id and the library: names of ours (IPTC has none)

local XML = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;" }

-- s as an XML attribute's value: escaped, control characters (which XML 1.0 cannot hold) dropped.
local function attr(s)
  return (tostring(s):gsub("[%z\1-\8\11\12\14-\31]", ""):gsub("[&<>\"']", XML))
end

-- The XMP packet of a video made by model for task (id) through library ("starvideos 0.4.0").
function M.xmp(model, task, library)
  local lines = {
    '<?xpacket begin="\239\187\191" id="W5M0MpCehiHzreSzNTczkc9d"?>',
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">',
    ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
    '  <rdf:Description rdf:about=""',
    '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"',
    '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"',
    '    xmlns:starvideos="' .. M.NS .. '"',
    '    Iptc4xmpExt:DigitalSourceType="' .. M.SOURCE .. '"',
  }
  if model then lines[#lines + 1] = '    Iptc4xmpExt:AISystemUsed="' .. attr(model) .. '"' end
  lines[#lines + 1] = '    xmp:CreatorTool="' .. attr(library) .. '"'
  if task then lines[#lines + 1] = '    starvideos:TaskId="' .. attr(task) .. '"' end
  lines[#lines + 1] = '    starvideos:Library="' .. attr(library) .. '"/>'
  lines[#lines + 1] = ' </rdf:RDF>'
  lines[#lines + 1] = '</x:xmpmeta>'
  lines[#lines + 1] = '<?xpacket end="r"?>'
  return table.concat(lines, "\n")
end

-- n as 4 bytes, big-endian.
local function u32(n)
  return string_char(math_floor(n / 16777216) % 256, math_floor(n / 65536) % 256, math_floor(n / 256) % 256, n % 256)
end

-- The top-level box holding packet: size, "uuid", the XMP UUID, the packet.
function M.box(packet) return u32(8 + 16 + #packet) .. "uuid" .. M.UUID .. packet end

-- The mark's box of a video made by model for task (its id), through this library (config's VERSION).
function M.of(model, task)
  local library = "starvideos " .. require("starvideos.config").VERSION
  return M.box(M.xmp(model and tostring(model) or nil, task and tostring(task) or nil, library))
end

-- The mark of a job's video (the seat's `mark`: seat.lua): its box (its model, its task), or nil with mark = false
-- (the call's, else the client's: a parent read back to be made from is a copy, never marked: lineage.lua).
function M.of_job(job)
  if job.mark == false or job.mark == nil and job.cfg.mark == false then return nil end
  local task = job.task or {}
  return M.of(job.model or task.model or job.params and job.params.model, job.id)
end

-- A film's mark (its shots' models and task ids: tasks), or nil with mark = false (cfg: the client's).
function M.of_film(cfg, tasks)
  if cfg.mark == false then return nil end
  local models, ids, seen = {}, {}, {}
  for i, t in ipairs(tasks) do
    ids[i] = tostring(t.id)
    if t.model and not seen[t.model] then seen[t.model], models[#models + 1] = true, tostring(t.model) end
  end
  return M.of(models[1] and table.concat(models, ", ") or nil, table.concat(ids, " "))
end

-- mark (M.of's box; nil: none) appended to the file at path, after its last top-level box (core.mark_file): true,
-- why it could not be (a string), or nil without a mark.
function M.append(path, mark)
  if not mark then return nil end
  local done, why = require("starvideos.core").mark_file(path, mark)
  return done or tostring(why)
end

-- The warning event of a video saved at out without its mark (why: the commit's words).
function M.unmarked(out, why)
  return { type = "warning", field = "mark", message = string.format("%s was saved without its mark (the XMP that "
    .. "says it is AI-made): %s", tostring(out), tostring(why)) }
end

return M
