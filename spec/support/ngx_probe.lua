-- One client call inside nginx, for spec/hosts/nginx_spec.lua (content_by_lua_file).
-- POST a JSON object: { client = {starvideos.new options}, op = "create" |
-- "query" | "download" | "generate" | "check", id =, url =, path = (download's, generate's
-- out), params = (check's, generate's) }; the answer is JSON: { res = the task, path or notes, err = {kind, message,
-- field, id, created, maybe_created, status}, elapsed = seconds, transport =
-- type(client.transport) }.  Or { case = name, args = } runs that case of
-- spec/support/transport_cases.lua and answers its out.
local cjson = require "cjson.safe"
local starvideos = require "starvideos"

local ngx = rawget(_G, "ngx")

ngx.req.read_body()
local q = assert(cjson.decode(ngx.req.get_body_data() or ""), "a JSON body")
if q.case then -- one case of spec/support/transport_cases.lua, on nginx's transport
  local N = require "starvideos.nginx.transport"
  local x = { which = "ngx", sleep = ngx.sleep, new = starvideos.new,
    transport = function(cfg) -- (a case's table: config.lua's default where it gives none of nginx's own options)
      cfg.keepalive_timeout = cfg.keepalive_timeout or require("starvideos.config").DEFAULTS.keepalive_timeout
      return N.new(cfg, require("starvideos.key").for_client(cfg))
    end,
    now = function() ngx.update_time(); return ngx.now() end }
  local ok, out = pcall(require("transport_cases").run, q.case, q.args, x)
  if not ok then out = { raised = tostring(out) } end
  ngx.header.content_type = "application/json"
  ngx.say(cjson.encode(out))
  return
end
ngx.update_time()
local t0 = ngx.now()
local client = starvideos.new(q.client)
local res, err
if q.op == "create" then
  res, err = client:create { model = "videos", prompt = "a cat", duration = 5 }
elseif q.op == "query" then
  res, err = client:query(q.id)
elseif q.op == "download" then
  res, err = client:download(q.url, q.path)
elseif q.op == "generate" then
  res, err = client:generate(q.params or { model = "videos", prompt = "a cat", duration = 5 },
    { out = q.path, interval = 0.1 })
elseif q.op == "check" then
  res, err = client:check(q.params)
end
local transport = type(client.loop.transport)
client:close()
ngx.update_time()
local out = { res = res, elapsed = ngx.now() - t0, transport = transport }
if err then
  out.err = { kind = err.kind, message = err.message, field = err.field, id = err.id, created = err.created,
    maybe_created = err.maybe_created, status = err.status }
end
ngx.header.content_type = "application/json"
ngx.say(cjson.encode(out))
