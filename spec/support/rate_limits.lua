-- The emulator's log of API requests read against its rate_limit {count, per} (emulator/ratelimit.lua: a window
-- begins at its first request): the API requests sent, those sent while an answer of their window had said none
-- was left (after the count-th answered), and those answered 429.
return function(emu, count, per)
  local sent, inside, refused, start, used = 0, 0, 0, nil, 0
  for _, r in ipairs(emu:requests()) do
    if r.path:find("^/v1/") then
      sent = sent + 1
      if not start or r.at >= start + per then start, used = r.at, 0 end
      if used >= count then inside = inside + 1 end
      if r.status == 200 then used = used + 1 end
      if r.status == 429 then refused = refused + 1 end
    end
  end
  return sent, inside, refused
end
