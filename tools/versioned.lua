-- A rock's versioned rockspec, made from its scm one: what `make release` packs and `make rockspecs` writes beside
-- the scm one (docs/install.md, "Releases"), so that a release's rockspecs cannot drift from the scm ones.
--   lua tools/versioned.lua SCM VERSION [RANGE]   prints the versioned rockspec of the scm rockspec SCM at VERSION
--                                                  (e.g. 0.4.0); RANGE: the core's range (rocks/needs.lua's)
--   dofile("tools/versioned.lua")                   the function make(scm_text, scm_name, version, range): the text,
--                                                  or nil and what is wrong (tools/shape_rocks.lua, the specs)
-- What changes: version ("scm-1" -> VERSION-1), source (the release's archive, starvideos-VERSION.tar.gz, and its
-- folder), every "-scm-1.rockspec" file name, and a product rock's dependency on the core, which gets the range's
-- upper bound ("starvideos >= 0.4" -> "starvideos >= 0.4, < 0.5"); a first line says where it comes from.  Anything
-- else the scm rockspec says, the versioned one says.

-- text with each plain occurrence of from replaced by to, and how many there were
local function replace(text, from, to)
  local pattern = from:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
  return text:gsub(pattern, (to:gsub("%%", "%%%%")))
end

local function make(text, name, version, range)
  if type(version) ~= "string" or not version:match("^%d+%.%d+%.%d+$") then
    return nil, "versioned: the version must be X.Y.Z, not " .. tostring(version)
  end
  local n
  text, n = text:gsub('\nversion = "scm%-1"\n', '\nversion = "' .. version .. '-1"\n')
  if n ~= 1 then return nil, "versioned: " .. name .. ' has no line version = "scm-1"' end
  -- the comment lines right above source, and source itself
  local source = "-- Where the source lives: the archive `make release` writes beside this rockspec (starvideos-"
    .. version .. ".tar.gz, the files\n-- the rocks build from, under starvideos-" .. version .. "/), which each "
    .. "source rock of the release carries.\nsource = {\n  url = \"starvideos-" .. version .. ".tar.gz\",\n"
    .. "  dir = \"starvideos-" .. version .. "\",\n}\n"
  local s, e = text:find("\nsource = %b{}\n")
  if not s then return nil, "versioned: " .. name .. " has no source = {...}" end
  local before = text:sub(1, s)
  repeat
    local stripped = before:gsub("\n%-%-[^\n]*\n$", "\n")
    local done = stripped == before
    before = stripped
  until done
  text = before .. source .. text:sub(e + 1)
  text = replace(text, "-scm-1.rockspec", "-" .. version .. "-1.rockspec")
  local deps = text:match("\ndependencies = (%b{})")
  if not deps then return nil, "versioned: " .. name .. " has no dependencies = {...}" end
  local lo = deps:match('\n%s*"starvideos >= ([%d.]+)",')
  if lo then
    if type(range) ~= "string" or not range:match("^>= " .. lo:gsub("%.", "%%.") .. ", < [%d.]+$") then
      return nil, string.format("versioned: %s needs starvideos >= %s: the core's range must be '>= %s, < X.Y', "
        .. "not %s", name, lo, lo, tostring(range))
    end
    local new = deps:gsub('(\n%s*)"starvideos >= [%d.]+",', function(indent)
      return indent .. '"starvideos ' .. range .. '",'
    end)
    new = new:gsub("; no upper bound while both are scm, which LuaRocks orders above every numbered version",
      ", in the release's minor version: LuaRocks refuses a core outside it")
    text = replace(text, deps, new)
  end
  local scm_name = name:match("[^/]*$")
  return "-- Made by `make release` (tools/versioned.lua) from " .. scm_name .. ": change that one, not this one.\n"
    .. text
end

-- rocks/needs.lua's RANGE as a rockspec says it: ">= 0.4, < 0.5"
local function needs_range(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local lo_op, lo, hi_op, hi = f:read("*a"):match('\nlocal RANGE = { "([<>=]+)", "([%d.]+)", "([<>=]+)", "([%d.]+)" }')
  f:close()
  return lo and (lo_op .. " " .. lo .. ", " .. hi_op .. " " .. hi) or nil
end

if arg and arg[0] and arg[0]:match("versioned%.lua$") and select("#", ...) > 0 then
  local scm, version, range = ...
  local f = io.open(tostring(scm), "rb")
  if not f then
    io.stderr:write("versioned: no rockspec " .. tostring(scm) .. "\n")
    os.exit(2)
  end
  local text = f:read("*a")
  f:close()
  local root = arg[0]:match("^(.-)tools/versioned%.lua$") or ""
  local out, err = make(text, scm, version, range or needs_range(root .. "rocks/needs.lua"))
  if not out then
    io.stderr:write(err .. "\n")
    os.exit(2)
  end
  io.write(out)
  return
end

return { make = make, needs_range = needs_range }
