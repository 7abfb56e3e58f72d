-- What a client hands its jobs (client.lua's ctx), made from options without
-- a client, for the specs that drive a job or a request through its seam:
--   local c = require("spec.support.ctx").new { api_key =, base_url =, transport = fake, ... }
--   Job.new(c, goal, id, spec); c.loop:run_one(job); c:release()
local config = require "starvideos.config"
local Key = require "starvideos.key"
local Loop = require "starvideos.loop"
local Ledger = require "starvideos.records.ledger"

local M = {}

local Ctx = {}
Ctx.__index = Ctx

function M.new(opts)
  local cfg = config.client(opts)
  cfg.api_key_set = cfg.api_key ~= nil
  local key = Key.for_client(cfg)
  local loop = Loop.for_client(cfg, key, cfg.transport)
  local c = setmetatable({ cfg = cfg, key = key, loop = loop, deliveries = {} }, Ctx)
  key:join(c) -- a member: its cfg and loop, as a client
  c.ledger = Ledger.new(cfg.journal, cfg, loop, key)
  return c
end

function Ctx:release()
  self.ledger:close()
  self.key:leave(self)
  self.loop:release()
end

return M
