-- The journal ledger's refusals (records/ledger.lua's methods, refusal.lua's rule): a task that failed for policy or
-- input kept by its create's content address, in the journal (else the key's bucket: this process's, or nginx's
-- dict), so that the same create is refused before it is sent.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

return function(L, append)
  -- The refusal kept of a create's content address (refusal.lua): {id, reason, input, error, tenant}, or nil; without a
  -- journal, the key's bucket's (this process's, or nginx's dict).  refused: a task's policy or input failure kept.
  -- What this process learned (its status records queued: a refusal, a completion; status_upto, the last one's
  -- ticket) is read back once written: with a loop, false until then (asked again on a later turn: a frame's step
  -- never waits on the disk), else waited for.  Other records queued (the creates' pending) are not waited for: the
  -- creates of a batch are asked in its order.
  function L:refusal(addr)
    if not self.path then return self.key.bucket:refusal(self.key.hash .. ":" .. addr) end
    local w, upto = self.writer, self.status_upto
    if upto and w.done < upto and not w:turn() and w.done < upto then
      if self.loop then return false end
      w:flush()
    end
    local st = self:follow()
    return st and st.refused[addr] or nil
  end
  function L:refused(id, addr, reason, input, words, tenant) -- (tenant: its create's; a journal's task has it)
    local e = { event = "status", id = id, status = "failed", addr = addr, reason = reason, input = input,
      error = words, tenant = tenant }
    if not self.path then return self.key.bucket:refuse(self.key.hash .. ":" .. addr, e) end
    return append(self, e, true)
  end
end
