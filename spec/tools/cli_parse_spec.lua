-- The command line's parser in process (cli/parser.lua, its own): what it refuses, named as the line has it in
-- one line; and the commands the command line prints to go on (output.again, output.same_command), split by a real
-- shell and parsed back to the same flags and arguments, values that start with - included.

local helper = require "spec.helper"
local args = require "starvideos.cli.args"
local parser = require "starvideos.cli.parser"
local output = require "starvideos.cli.output"

-- The message of the usage error parse raises on argv, or nil and the result when it parses.
local function refusal(argv)
  local ok, e, pos = pcall(parser.parse, argv)
  if ok then return nil, e, pos end
  assert.is_true(args.is_usage(e), tostring(e))
  return e.message
end

-- The words a shell makes of a printed command line, the command's name and the program dropped.
local function words(line)
  local out = assert(helper.capture("sh -c " .. helper.shell_quote("for w in " .. line:gsub("^%S+ ", "", 1)
    .. "; do printf '%s\\n' \"$w\"; done")))
  local list = {}
  for w in out:gmatch("[^\n]+") do list[#list + 1] = w end
  return list
end

describe("the command line's parser", function()
  setup(function() args.INVOKED = "starvideos" end)

  it("names what it refuses as it was typed, in one line", function()
    local long = string.rep("m", 131000)
    for argv, said in pairs {
      [{ "compact", "--journal", "x", "--journal", "y" }] = "--journal given more than once",
      [{ "batch", "--prompts-file", "x", "--prompts-file", "y", "--out-dir", "d" }] =
        "--prompts-file given more than once",
      [{ "validate", "-model", "videos" }] = "unknown option -model (flags start with --; a value that starts with - "
        .. "is given as --flag=VALUE)",
      [{ "status", "a", "-hx" }] = "unknown option -hx (flags start with --; a value that starts with - is given as "
        .. "--flag=VALUE)",
      [{ "status", "a", "--pro'mpt" }] = "unknown option --pro'mpt",
      [{ "status", "a", "--promt'" }] = "unknown option --promt'",
      [{ "it's" }] = 'unknown command "it\'s"',
      [{ "creat'e" }] = 'unknown command "creat\'e" (did you mean create?)',
      [{ "list", "--store", "y", "--journal", "x" }] = "--journal and --store: give one ledger, not both",
      [{ "status", "a", "--" .. long }] = "unknown option --" .. string.rep("m", 38) .. "...",
      [{ "generate", "--" .. long .. "=1" }] = "unknown option --" .. string.rep("m", 38) .. "...",
      [{ long }] = 'unknown command "' .. string.rep("m", 40) .. '..."',
      [{ "status", "--api-key=sk-live-9f3", "a" }] = "--api-key is not accepted: a key on the command line leaks "
        .. "into shell history and process lists; set STARVIDEOS_API_KEY or use --api-key-file PATH",
    } do
      local message = refusal(argv)
      assert.equal(said, message, table.concat(argv, " "):sub(1, 80))
      assert.is_nil(message:find("\n"))
    end
  end)

  it("prints commands that go on which parse back to the same, values that start with - as --flag=value", function()
    local wait = output.again({ name = "wait", out = "-cat.mp4", opts = { interval = 0.5, journal = "-j.jsonl" } },
      "video_1")
    assert.equal("starvideos wait video_1 --out=-cat.mp4 --interval 0.5 --journal=-j.jsonl", wait)
    local opts, pos = parser.parse(words(wait))
    assert.same({ { "video_1" }, "-cat.mp4", 0.5, "-j.jsonl" }, { pos, opts.out, opts.interval, opts.journal })
    local download = output.again({ name = "download", out = "-x.mp4", opts = {} }, "video_2")
    assert.equal("starvideos download video_2 -- -x.mp4", download)
    pos = select(2, parser.parse(words(download)))
    assert.same({ "video_2", "-x.mp4" }, pos)
    local batch = output.same_command("batch", { ["prompts-file"] = "-p.txt", ["out-dir"] = "-out",
      ["ref-image"] = { "-a.png", "b.png" }, fresh = true, ["dry-run"] = true }, {})
    opts = parser.parse(words(batch))
    assert.same({ "-p.txt", "-out", { "-a.png", "b.png" }, true }, { opts["prompts-file"], opts["out-dir"],
      opts["ref-image"], opts["dry-run"] })
    assert.is_nil(opts.fresh, "a rerun that would pay again")
    local film = output.same_command("film", { out = "f.mp4" }, { "-board.json" })
    assert.equal("starvideos film --out f.mp4 -- -board.json", film)
    opts, pos = parser.parse(words(film))
    assert.same({ { "-board.json" }, "f.mp4" }, { pos, opts.out })
  end)
end)
