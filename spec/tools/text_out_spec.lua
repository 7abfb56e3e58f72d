-- Text that leaves the library stays text (issue, item 13): a --out or --tenant with bytes that make no UTF-8
-- character keeps --json and list --json JSON (each such byte written \xNN); a task id given to again, remix or
-- continue, and a ledger's parent and relation in list --tree, reach the terminal with their ESC and BEL as \x1b
-- and \x07, as the service's request ids are shown.  Child processes against the emulator, a journal the ledger.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local C = require "spec.support.cli_run"
local shell = require "starvideos.shell"

local run, lines = C.run, C.lines

-- Whether text has a byte past ASCII or a control character but newline: what a terminal would act on, or what
-- would make a document no UTF-8, when the only such bytes given were those.
local function raw(text) return text:find("[%z\1-\9\11-\31\127-\255]") ~= nil end

describe("text that leaves the library", function()
  local env, posts = C.session(function() end)
  local dir, journal
  before_each(function()
    dir = helper.tmpdir()
    journal = dir .. "/tasks.jsonl"
  end)

  it("shell.visible: each byte of no UTF-8 character as \\xNN; with controls, C0, DEL and C1 too; text as it is",
    function()
      assert.equals("caf\\xe9.mp4", shell.visible("caf\233.mp4"))
      assert.equals("ok é 日本 😀", shell.visible("ok é 日本 😀", true))
      -- (a surrogate, an overlong form, past U+10FFFF, cut short)
      assert.equals("\\xed\\xa0\\x80 \\xe0\\x80\\x80 \\xf4\\x90\\x80\\x80 \\xc3",
        shell.visible("\237\160\128 \224\128\128 \244\144\128\128 \195"))
      assert.equals("a\tb\27", shell.visible("a\tb\27"))
      assert.equals("v\\x1b[31mX\\x07 \\x09 \\x7f \\xc2\\x9b", shell.visible("v\27[31mX\7 \9 \127 \194\155", true))
    end)

  it("--out and --tenant of bytes that make no UTF-8 character: generate --json and list --json are JSON, the "
    .. "bytes \\xNN", function()
    local out = dir .. "/caf\233.mp4"
    local r = run({ "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--out", out, "--tenant",
      "t\255", "--journal", journal, "--interval", "0.1", "--json" }, env())
    assert.equals(0, r.code, r.err)
    assert.is_false(raw(r.out), r.out)
    local doc = assert(cjson.decode(r.out), r.out)
    assert.equals(dir .. "/caf\\xe9.mp4", doc.path)
    assert.equals(C.SAMPLE, helper.read_video(out), "the file is written where it was asked")
    r = run({ "list", "--journal", journal, "--json" }, {})
    assert.equals(0, r.code, r.err)
    assert.is_false(raw(r.out), r.out)
    local t = assert(cjson.decode(lines(r.out)[1]), r.out)
    assert.same({ "t\\xff", dir .. "/caf\\xe9.mp4" }, { t.tenant, t.path })
    assert.equals(1, #posts())
  end)

  it("again, remix and continue of a task id with ESC and BEL: the refusal shows them \\x1b and \\x07, nothing "
    .. "sent", function()
    helper.write_file(journal, "")
    local id = "video_\27]0;owned\7\27[2J"
    for _, how in ipairs { "again", "remix", "continue" } do
      for _, extra in ipairs(how == "continue" and { {}, { "--last-image", "https://example.com/last.png" } }
          or { {} }) do
        local a = { how, id, "--out", dir .. "/x.mp4", "--journal", journal }
        for _, w in ipairs(extra) do a[#a + 1] = w end
        local r = run(a, env())
        assert.equals(2, r.code, r.err)
        assert.is_false(raw(r.err), r.err)
        assert.matches("task video_\\x1b]0;owned\\x07\\x1b[2J", r.err, 1, true)
      end
    end
    assert.equals(0, #posts(), "nothing was sent")
  end)

  it("list --tree: a ledger's parent and relation with ESC and BEL are shown \\x1b and \\x07", function()
    local r = run({ "generate", "--model", "videos", "--prompt", "a fox", "--duration", "4", "--out",
      dir .. "/p.mp4", "--journal", journal, "--interval", "0.1", "--json" }, env())
    assert.equals(0, r.code, r.err)
    local parent = assert(cjson.decode(r.out), r.out)
    r = run({ "again", parent.id, "--out", dir .. "/c.mp4", "--journal", journal, "--interval", "0.1", "--json" },
      env())
    assert.equals(0, r.code, r.err)
    local text = helper.read_file(journal) -- (a ledger edited by hand, or by another program)
    local n
    text, n = text:gsub('"relation":"again"', '"relation":"again\\u001b]0;owned\\u0007"')
    assert.is_true(n > 0, text)
    text, n = text:gsub('"parent":"' .. parent.id .. '"', '"parent":"' .. parent.id .. '\\u001b[2J"')
    assert.is_true(n > 0, text)
    helper.write_file(journal, text)
    r = run({ "list", "--journal", journal, "--tree" }, {})
    assert.equals(0, r.code, r.err)
    assert.is_false(raw(r.out), r.out)
    assert.matches("again\\x1b]0;owned\\x07 of " .. parent.id .. "\\x1b[2J: ", r.out, 1, true)
  end)
end)
