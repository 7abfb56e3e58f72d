-- spend_limit on a journal, with real processes (spec/support/spend_runs.lua): 8 processes at once, each asking
-- 10 creates of 0.40 against a key limit of 8.00, exactly 20 reach the service (counted at the emulator), each step
-- said once whichever process says it (against 7.90, 19, and the refusals' 100% said once in all); and 30
-- reserving processes killed with kill -9 at random moments, then rerun: no reservation held past the lease, the
-- pending creates the kills left settled as a user does, and the spent total the price of the tasks the service
-- made, none made twice.  The seed is printed.
local helper = require "spec.helper"
local runs = require "spec.support.spend_runs"

describe("spend_limit on a journal shared by a host's processes", function()
  teardown(function() helper.cleanup() end)
  runs.cases("spend_journal_spec", function(dir, emu) return runs.new(dir, "journal", dir .. "/tasks.jsonl", emu) end,
    8, { setup = setup, teardown = teardown, it = it, assert = assert })
end)
