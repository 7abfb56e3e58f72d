-- How to go on after Ctrl-C or kill -9 on a fleet (issue 49): the printed command names the store without its
-- password (every other message hides it) and says where the password comes from (STARVIDEOS_STORE, which a
-- file can fill); a store URL without a password is carried as it is.  The hint's own functions, no process:
-- rocks/redis/spec/hosts/store_hints_spec.lua runs the same through a killed batch.
local output = require "starvideos.cli.output"

describe("a hint on a store", function()
  it("with a password: the command's --store is \"$STARVIDEOS_STORE\", the note names it and the URL as ***", function()
    local ctx = { name = "generate", out = "v.mp4", opts = { store = "rediss://app:app-pw@redis.example:6380/2",
      interval = 0.5 } }
    local line = output.next_step(ctx, "t-1")
    assert.is_nil(line:find("app-pw", 1, true), line)
    assert.matches("`starvideos wait t-1 --out v.mp4 --interval 0.5 --store \"$STARVIDEOS_STORE\"` picks it up again "
      .. "(with STARVIDEOS_STORE set "
      .. "to the store's URL rediss://app:***@redis.example:6380/2 and its password, which is never printed: "
      .. "`export STARVIDEOS_STORE=\"$(cat FILE)\"` reads it from a file only you can read)", line, 1, true)
    ctx.completed = true
    line = output.next_step(ctx, "t-1")
    assert.matches("fetches its video (with STARVIDEOS_STORE set to the store's URL rediss://app:***@", line, 1, true)
    for _, url in ipairs { "redis://:pw-1@10.0.0.5:6379/0", "redis+sentinel://:pw-1@h1:26379,h2/mymaster",
      "unix://app:pw-1@/run/redis.sock?db=2" } do
      ctx.opts.store = url
      line = output.next_step(ctx, "t-1")
      assert.is_nil(line:find("pw-1", 1, true), line)
      assert.matches(":***@", line, 1, true)
    end
  end)

  it("the library's words and a lost create's: --store HOST (user and password left out: pasted, it would connect as"
    .. " no user) become the command's own store words", function()
    local refused = "out v.mp4: a create of it was sent and its answer never came (pending record 0a1b of ...): "
      .. "`starvideos pending --store redis://10.0.0.5:6380/2` lists it; `starvideos pending --store "
      .. "redis://10.0.0.5:6380/2 --forget 0a1b` (or --fresh) creates again"
    local opts = { store = "redis://app:app-pw@10.0.0.5:6380/2" }
    local line = output.store_named(refused, opts)
    assert.is_nil(line:find("app-pw", 1, true), line)
    assert.is_nil(line:find("--store redis://10.0.0.5", 1, true), line)
    assert.matches('`starvideos pending --store "$STARVIDEOS_STORE" --forget 0a1b`', line, 1, true)
    assert.equals(1, select(2, line:gsub("with STARVIDEOS_STORE set to the store's URL redis://app:%*%*%*@", "")))
    assert.equals(refused, output.store_named(refused, { store = "redis://10.0.0.5:6380/2" })) -- no password
    line = output.maybe_made({ name = "generate", opts = { store = "redis://app:app-pw@10.0.0.5:6380/2",
      out = "v.mp4" } }, { maybe_created = true, pending = "0a1b" })
    assert.is_nil(line:find("app-pw", 1, true), line)
    assert.matches('`starvideos pending --store "$STARVIDEOS_STORE" --adopt 0a1b TASK_ID` records the task it made',
      line, 1, true)
    assert.matches("which the same command refuses to create again until it is settled", line, 1, true)
  end)

  it("without a password: --store URL carried as it is", function()
    local line = output.next_step({ name = "generate", opts = { store = "redis://10.0.0.5:6379/1" } }, "t-2")
    assert.matches("`starvideos wait t-2 --store redis://10.0.0.5:6379/1` picks it up again", line, 1, true)
    assert.is_nil(line:find("STARVIDEOS_STORE", 1, true), line)
  end)

  -- (a proxy's password the same way: printed, it was "[redacted]", and the line failed pasted)
  it("a proxy with a password: the command's --proxy is \"$STARVIDEOS_PROXY\", the note names it and the URL as ***; "
    .. "a batch's same command too; one without a password carried as it is", function()
    local ctx = { name = "wait", out = "v.mp4", opts = { proxy = "http://alice:pr0xy-pw@127.0.0.1:3128",
      interval = 0.5 } }
    local command, said = output.again(ctx, "t-1")
    assert.equals('starvideos wait t-1 --out v.mp4 --interval 0.5 --proxy "$STARVIDEOS_PROXY"', command)
    assert.equals(" (with STARVIDEOS_PROXY set to the proxy's URL http://alice:***@127.0.0.1:3128 and its password, "
      .. "which is never printed: `export STARVIDEOS_PROXY=\"$(cat FILE)\"` reads it from a file only you can read)",
      said)
    local line = output.next_step(ctx, "t-1")
    assert.is_nil(line:find("pr0xy-pw", 1, true), line)
    assert.matches(command .. "` picks it up again" .. said, line, 1, true)
    local batch, note = output.same_command("batch", { ["prompts-file"] = "p.txt", proxy = ctx.opts.proxy,
      store = "redis://:st0re-pw@10.0.0.5:6379/0" })
    assert.equals('starvideos batch --prompts-file p.txt --store "$STARVIDEOS_STORE" --proxy "$STARVIDEOS_PROXY"',
      batch)
    assert.matches("with STARVIDEOS_STORE set to the store's URL redis://:***@10.0.0.5:6379/0", note, 1, true)
    assert.matches("with STARVIDEOS_PROXY set to the proxy's URL http://alice:***@127.0.0.1:3128", note, 1, true)
    assert.is_nil((batch .. note):find("pw", 1, true), batch .. note)
    ctx.opts.proxy = "http://127.0.0.1:3128"
    assert.matches("`starvideos wait t-1 --out v.mp4 --interval 0.5 --proxy http://127.0.0.1:3128` picks it up again",
      output.next_step(ctx, "t-1"), 1, true)
  end)
end)
