-- Runs one case of spec/support/transport_cases.lua on libcurl's transport, in
-- a process of its own (so that strace can follow it, as it follows nginx's
-- worker):  lua spec/support/case_run.lua IN.json OUT.json
-- IN holds { case = name, args = {...} }; OUT gets the case's JSON out.
local cjson = require "cjson.safe"
local socket = require "socket"
local starvideos = require "starvideos"
local cases = require "spec.support.transport_cases"

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local q = assert(cjson.decode(slurp(assert(arg[1], "usage: case_run.lua IN.json OUT.json"))))
local x = { which = "curl", sleep = socket.sleep, now = socket.gettime, new = starvideos.new,
  transport = require("starvideos.curl").new }
local ok, out = pcall(cases.run, q.case, q.args, x)
if not ok then out = { raised = tostring(out) } end
local f = assert(io.open(assert(arg[2]), "wb"))
f:write(assert(cjson.encode(out)))
f:close()
