-- What the game shows a player for each kind of error (err.kind, see the
-- README's "Errors"): a headline saying what happened and what to do, and the
-- library's own message as the detail.  Plain Lua, no LÖVE: spec/hosts/love_spec.lua
-- reads it too.
--
--   local messages = require "messages"
--   local headline, detail = messages.describe(err, { out = path, base_url = url })

local messages = {}

local format, tostring, type = string.format, tostring, type

-- The command line as a player runs it: `starvideos` once installed (LuaRocks), the
-- checkout's bin/starvideos when the game loaded the library from a checkout (main.lua
-- sets it), so that the command printed works pasted.
messages.command = "starvideos"

-- The command line's way to fetch task id's video into out, as one line for a shell (what
-- `starvideos` itself prints when stopped): `download ID PATH` once its download began, else
-- `wait ID --out PATH`, which waits and then downloads, polling as the game did (`--interval S`
-- when it was given one: without, `wait` polls every 30 s, long against the emulator).
function messages.fetch_command(id, out, downloading, interval)
  local words = { messages.command, "wait", id }
  if downloading then
    words = { messages.command, "download", id, out }
  else
    if out then words[#words + 1], words[#words + 2] = "--out", out end
    if interval then words[#words + 1], words[#words + 2] = "--interval", format("%.14g", interval) end
  end
  for i, w in ipairs(words) do
    words[i] = w:match("^[%w%-_./:=@]+$") and w or "'" .. w:gsub("'", "'\\''") .. "'"
  end
  return table.concat(words, " ")
end

-- kind -> function(err, ctx) returning the headline
local HEADLINES = {
  invalid_request = function(err)
    if err.field then
      return format("The request is invalid (%s): fix it and start again.", err.field)
    end
    return "The request is invalid: fix it and start again."
  end,
  auth = function()
    return "The API key was refused: set STARVIDEOS_API_KEY to a valid key."
  end,
  not_found = function(err)
    return format("The service does not know task %s.", tostring(err.id or "?"))
  end,
  rate_limited = function(err)
    if err.retry_after then
      return format("Too many requests: the service asks to wait %s s.", tostring(err.retry_after))
    end
    return "Too many requests: wait a little and start again."
  end,
  server = function(err)
    if err.status then
      return format("The service had an error (HTTP %s): try again later.", tostring(err.status))
    end
    return "The service had an error: try again later."
  end,
  network = function(_, ctx)
    return format("Cannot reach the service at %s: check STARVIDEOS_BASE_URL and the network.",
      tostring(ctx.base_url or "?"))
  end,
  timeout = function(err, ctx)
    if err.id then
      return format("Task %s was not ready in time; `%s` picks it up.", err.id,
        messages.fetch_command(err.id, ctx.out, false, ctx.interval))
    end
    return "The service did not answer in time."
  end,
  task_failed = function()
    return "The service could not make this video."
  end,
  protocol = function()
    return "The service's answer could not be read (is STARVIDEOS_BASE_URL the API?)."
  end,
  io = function(_, ctx)
    return format("Cannot write the video to %s: check the folder exists and is writable.",
      tostring(ctx.out or "?"))
  end,
  spend_limited = function()
    return "The spending limit is reached: nothing was sent, nothing paid."
  end,
  refused_before = function()
    return "This same video was refused before: change the prompt or its pictures."
  end,
}

-- What the window says the job is doing: its state, but a download whose bytes are all in
-- is being checked (a whole MP4, its SHA-256: the file read back, seconds for gigabytes).
local STATE_TEXT = { creating = "Sending the request", polling = "Waiting for the video",
  downloading = "Downloading the video", done = "Done", cancelled = "Cancelled" }
function messages.state_text(job)
  if job.state == "downloading" and job.total and (job.bytes or 0) >= job.total then
    return "Checking the video (a whole MP4? its SHA-256)"
  end
  return STATE_TEXT[job.state] or tostring(job.state)
end

-- Every kind the library gives, in the README's order.
messages.KINDS = { "invalid_request", "auth", "not_found", "rate_limited", "spend_limited", "server", "network",
  "timeout", "task_failed", "refused_before", "protocol", "io" }

-- The headline and the detail for err (an error table, or any value the
-- library or LÖVE raised); ctx: { out = the output path, base_url =, interval = the polls' }.
function messages.describe(err, ctx)
  ctx = ctx or {}
  if type(err) ~= "table" then
    return "Something went wrong.", tostring(err)
  end
  local detail = err.message and tostring(err.message) or tostring(err)
  if err.kind == "task_failed" and type(err.task) == "table" and type(err.task.error) == "string" then
    detail = err.task.error
  end
  local headline = HEADLINES[err.kind]
  if not headline then
    return format("Unexpected error (%s).", tostring(err.kind)), detail
  end
  return headline(err, ctx), detail
end

return messages
