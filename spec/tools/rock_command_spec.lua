-- A command the core does not have is a rock's (issue 54 items 2 and 3): bin/starvideos finds it at the command
-- point, starvideos.command.<name>, with no core edit.  A rock's command that gives its usage (arguments, its own
-- flags, summary, example) is parsed, helped and reported as the core's own commands are; one the core has no
-- module for is an unknown command, or, when it is a rock the project ships (`store`: starvideos-redis), refused
-- naming the rock.  The core's command line describes no rock's command itself.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local C = require "spec.support.cli_run"

local q = helper.shell_quote

-- A rock of the spec's own: starvideos.command.toy in a folder of its own, put on LUA_PATH.
local TOY = [[
return {
  usage = { args = { "WORD" }, client = true, summary = "say a word, once or loud", example = "starvideos toy hello",
    flags = { { name = "loud", kind = "bool", text = "say it in capitals" },
      { name = "times", kind = "int", meta = "N", text = "say it N times" } } },
  run = function(cli, opts, pos)
    if (opts.times or 1) < 1 then cli.usage_error("--times expects a whole number >= 1, got %d", opts.times) end
    local word = opts.loud and pos[1]:upper() or pos[1]
    local said = {}
    for i = 1, opts.times or 1 do said[i] = word end
    if cli.json then cli.print_json { said = cli.array { word } } else cli.out(table.concat(said, " "), "\n") end
    return 3
  end,
}
]]

local dir
-- The command line, installed on the PATH (`starvideos ...`), with the toy rock's folder on LUA_PATH.
local function run(...)
  return C.run({ ... }, { LUA_PATH = dir .. "/?.lua;;" })
end

describe("a rock's command", function()
  setup(function()
    dir = helper.tmpdir()
    assert(helper.execute("mkdir -p " .. q(dir .. "/starvideos/command")))
    helper.write_file(dir .. "/starvideos/command/toy.lua", TOY)
  end)

  it("is run with its own flags and the core's, its exit status its own", function()
    local r = run("toy", "hello", "--loud", "--times", "2")
    assert.equal(3, r.code, r.err)
    assert.equal("HELLO HELLO\n", r.out)
    r = run("toy", "hi", "--json")
    assert.equal(3, r.code, r.err)
    assert.same({ said = { "hi" } }, cjson.decode(r.out))
  end)

  it("gives its help as a core command does, and is listed by the top help when it is the project's", function()
    for _, argv in ipairs { { "toy", "--help" }, { "help", "toy" } } do
      local r = run(argv[1], argv[2])
      assert.equal(0, r.code, r.err)
      assert.matches("usage: starvideos toy WORD [options]\n\nSay a word, once or loud.\n", r.out, 1, true)
      assert.matches("\n  %-%-times N +say it N times\n", r.out)
      assert.matches("\n  --base-url URL ", r.out, 1, true)
      assert.matches("\nexample:\n  starvideos toy hello\n", r.out, 1, true)
    end
    local top = run("--help").out
    assert.matches("\n  store +check a fleet's Redis: what it reaches", top)
    assert.matches("\n  emulator +run a local stand%-in for the service", top)
  end)

  it("refuses what its usage does not take as the core's commands do (exit 2, naming it)", function()
    local r = run("toy", "hello", "--louud")
    assert.equal(2, r.code)
    assert.matches("starvideos toy: unknown option --louud (did you mean --loud?)", r.err, 1, true)
    r = run("toy")
    assert.equal(2, r.code)
    assert.matches("starvideos toy: missing WORD", r.err, 1, true)
    r = run("toy", "hello", "--times", "0", "--json")
    assert.equal(2, r.code)
    assert.equal("--times expects a whole number >= 1, got 0", cjson.decode(r.out).error.message)
    r = run("toys")
    assert.equal(2, r.code)
    assert.matches('starvideos: unknown command "toys"', r.err, 1, true)
  end)

  it("store is the redis rock's: the core's command line describes none of it", function()
    local args = require "starvideos.cli.args"
    assert.is_nil(args.COMMANDS.store)
    assert.is_nil(args.COMMANDS.emulator)
    assert.is_nil(args.FLAG.replicas)
    assert.is_nil(args.FLAG.clear)
    assert.is_nil(require("starvideos.cli.parser").top_help():find("\n  store ", 1, true))
    local r = run("store", "--help")
    assert.equal(0, r.code, r.err)
    assert.matches("\n  %-%-replicas N +the replicas the fleet's records wait for", r.out)
  end)
end)
