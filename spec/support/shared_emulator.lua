-- One emulator (spec.helper's) for a describe block: started before the block's
-- first test, reset before each, stopped after its last, and the helper's
-- temporary folders removed then.  Called inside the block, which keeps the
-- emulator in a local of its own:
--
--   local emu
--   shared_emulator({ key = KEY, queued = 0.2, processing = 0.2 }, function(e) emu = e end)
--
-- busted's hooks are the spec file's own, not globals that a module sees: they
-- come from require "busted", which registers them in the block being defined.

local busted = require "busted"
local helper = require "spec.helper"

return function(opts, keep)
  local emu
  busted.lazy_setup(function()
    emu = helper.emulator(opts)
    keep(emu)
  end)
  busted.lazy_teardown(function()
    if emu then emu:stop() end
    helper.cleanup()
  end)
  busted.before_each(function() emu:reset() end)
end
