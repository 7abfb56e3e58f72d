-- What a key names in the store (fleet/scripts.lua's KEY_NAMES, read by fleet/ask.lua's named) as the rules take it
-- (rules.lua's key_answer, the journal's too): a task saved to an s3:// out is `whole` when the store recorded that
-- out as its path, as the journal's is (issue 55, item 6: a store's rerun fetched and wrote every saved object
-- again).  Without a server: the answer is the script's reply as Redis gives it.  The script itself, against a
-- real redis-server: rocks/redis/spec/store_s3_saved_spec.lua.
local Ask = require "starvideos.fleet.ask"
local Rules = require "starvideos.rules"

local SHA = string.rep("ab", 32)

-- The script's reply of a task: id, fp, body, bytes, model, alive, sha256, path ('' none).
local function reply(bytes, path)
  return { "task", "video_1", "fp1", "{}", bytes, "videos", "", bytes ~= "" and SHA or "", path }
end

describe("the store's key answer", function()
  it("is whole for an s3:// out its task was saved to, as the journal's rule says; not for another out, nor before "
    .. "it is saved", function()
    local want = { key = "s3://vids/a.mp4", fp = "fp1", out = "s3://vids/a.mp4" }
    local e = Ask.named(reply("1000", "s3://vids/a.mp4"))
    assert.same({ "s3://vids/a.mp4", SHA, 1000 }, { e.path, e.sha256, e.bytes })
    local task = assert(Rules.key_answer(e, want, "--store redis://127.0.0.1:1"))
    assert.same({ "video_1", true }, { task.id, task.whole })
    -- not whole: a task not saved yet, or saved to another out
    task = assert(Rules.key_answer(Ask.named(reply("", "")), want, "--store redis://127.0.0.1:1"))
    assert.same({ "video_1", false }, { task.id, task.whole })
    assert.is_nil(Ask.named(reply("", "")).path)
    task = assert(Rules.key_answer(Ask.named(reply("1000", "s3://vids/b.mp4")), want, "--store redis://127.0.0.1:1"))
    assert.is_false(task.whole)
  end)
end)
