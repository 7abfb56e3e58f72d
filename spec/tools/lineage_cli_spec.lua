-- Videos that build on videos on the command line (docs/cli.md: again, remix, continue, film, list --tree), run as
-- child processes against the emulator, the ledger a journal: again makes one create of the parent's recorded params
-- changed by the flags given, and run again none; continue without --last-image is refused with nothing sent; a
-- 4-shot storyboard makes 4 creates and one film of the shots' summed duration, its --dry-run sends nothing, a film
-- stopped by Ctrl-C prints the command that goes on, paying no shot twice; a bad storyboard is refused naming the
-- file and the shot; the docs' storyboard without a bucket sends nothing, and its --dry-run with one prices its
-- continue; a remix without --duration takes the parent's; a film stopped after a shot is made exits 1 saying so;
-- list --tree shows three generations, the same after compact.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local C = require "spec.support.cli_run"

local run, lines, q = C.run, C.lines, helper.shell_quote

-- The last create's body the emulator got, decoded.
local function last_body(posts)
  local list = posts()
  return cjson.decode(list[#list].body)
end

local function json_lines(text)
  local list = {}
  for _, l in ipairs(lines(text)) do list[#list + 1] = assert(cjson.decode(l), l) end
  return list
end

describe("lineage on the command line", function()
  local emu
  local env, posts = C.session(function(e) emu = e end)
  local dir, journal
  before_each(function()
    dir = helper.tmpdir()
    journal = dir .. "/tasks.jsonl"
  end)

  -- generate (or again ID) to dir/name.mp4 with the journal: the task's JSON document.
  local function made(words, name)
    local a = { "--out", dir .. "/" .. name .. ".mp4", "--journal", journal, "--interval", "0.1", "--json" }
    for i, w in ipairs(words) do table.insert(a, i, w) end
    local r = run(a, env())
    assert.equals(0, r.code, r.err)
    return assert(cjson.decode(r.out), r.out)
  end

  local function family()
    local parent = made({ "generate", "--model", "videos", "--prompt", "a red fox", "--duration", "4", "--ratio",
      "4:3" }, "parent")
    local child = made({ "again", parent.id, "--prompt", "a blue fox" }, "child")
    local grandchild = made({ "again", child.id, "--duration", "6" }, "grandchild")
    return parent, child, grandchild
  end

  it("again ID --out PATH: one create of the parent's recorded params changed by the flags given (only those); the "
    .. "same command again creates nothing; the parent's own file, named relatively, is refused", function()
    local parent = made({ "generate", "--model", "videos", "--prompt", "a red fox", "--duration", "4", "--ratio",
      "4:3" }, "parent")
    local child = made({ "again", parent.id, "--prompt", "a blue fox", "--duration", "5" }, "child")
    assert.equals(2, #posts())
    assert.same({ model = "videos", prompt = "a blue fox", duration = 5, ratio = "4:3" }, last_body(posts))
    assert.same({ parent.id, "again" }, { child.parent, child.relation })
    local again = made({ "again", parent.id, "--prompt", "a blue fox", "--duration", "5" }, "child")
    assert.same({ 2, child.id }, { #posts(), again.id }, "the rerun follows its task")
    local r = run({ "again", parent.id, "--out", "parent.mp4", "--journal", journal }, env(),
      { lua = "sh -c " .. q("cd " .. q(dir) .. ' && exec "$0" "$@"') .. " " .. q(helper.lua) }) -- (in dir)
    assert.equals(2, r.code, r.err)
    assert.matches("is task " .. parent.id .. "'s own file", r.err, 1, true)
    assert.equals(2, #posts(), "nothing was sent")
  end)

  it("continue without --last-image exits 2 naming it, nothing sent; again of a task not in the ledger too",
    function()
      local parent = made({ "generate", "--model", "videos", "--prompt", "a red fox", "--duration", "4" }, "parent")
      emu:clear()
      local r = run({ "continue", parent.id, "--prompt", "on", "--out", dir .. "/next.mp4", "--journal", journal },
        env())
      assert.equals(2, r.code)
      assert.equals("starvideos continue: --last-image URL|PATH is required: the API takes the first image (task "
        .. parent.id .. "'s last frame) only beside a last image (nothing was sent)", lines(r.err)[1])
      r = run({ "again", "video_nope", "--out", dir .. "/x.mp4", "--journal", journal, "--json" }, env())
      assert.equals(2, r.code)
      local doc = assert(cjson.decode(r.out), r.out)
      assert.same({ "invalid_request", "task" }, { doc.error.kind, doc.error.field })
      assert.matches("task video_nope is not in the ledger", doc.error.message, 1, true)
      assert.same({}, emu:requests(), "nothing was sent")
    end)

  it("film FILE --out PATH: a 4-shot storyboard makes 4 creates and one MP4 of the shots' summed duration; "
    .. "--dry-run first lists the shots and their cost and sends nothing", function()
    local board = dir .. "/storyboard.json"
    helper.write_file(board, cjson.encode { shots = {
      { model = "videos", prompt = "shot one", duration = 4 }, { model = "videos", prompt = "shot two", duration = 5 },
      { model = "videos", prompt = "shot three", duration = 4 }, { model = "videos", prompt = "shot four",
        duration = 6 } } })
    local film = dir .. "/film.mp4"
    local r = run({ "film", board, "--out", film, "--journal", journal, "--prices", '{"videos": 0.4}', "--dry-run" },
      env())
    assert.equals(0, r.code, r.err)
    assert.same({ "SHOT  ACTION  MODEL   PRICE  FILE",
      "1     create  videos  0.4    " .. dir .. "/film.shot01.mp4",
      "2     create  videos  0.4    " .. dir .. "/film.shot02.mp4",
      "3     create  videos  0.4    " .. dir .. "/film.shot03.mp4",
      "4     create  videos  0.4    " .. dir .. "/film.shot04.mp4",
      "4 shots: 4 creates, cost 1.6; 0 made already; nothing was sent" }, lines(r.out))
    assert.same({}, emu:requests(), "the plan sent nothing")
    r = run({ "film", board, "--out", film, "--journal", journal, "--interval", "0.1", "--json" }, env())
    assert.equals(0, r.code, r.err)
    local doc = assert(cjson.decode(r.out), r.out)
    assert.same({ film, 4 }, { doc.path, #doc.shots })
    assert.equals(4, #posts())
    local seconds = helper.capture("ffprobe -v error -show_entries format=duration -of csv=p=0 " .. q(film))
    assert.equals(19, tonumber(seconds))
    r = run({ "film", board, "--out", film, "--journal", journal, "--interval", "0.1" }, env())
    assert.equals(0, r.code, r.err)
    assert.equals(4, #posts(), "run again: no shot paid twice")
  end)

  it("film past --spend-limit: refused before its first shot, in the command line's words, nothing sent", function()
    local board = dir .. "/storyboard.json"
    helper.write_file(board, cjson.encode { shots = {
      { model = "videos", prompt = "shot one", duration = 4 }, { model = "videos", prompt = "shot two", duration = 5 },
      { model = "videos", prompt = "shot three", duration = 4 } } })
    local before = #posts()
    local r = run({ "film", board, "--out", dir .. "/film.mp4", "--journal", journal, "--prices", '{"videos": 0.4}',
      "--spend-limit", '{"amount": 1, "scope": "model", "model": "videos"}' }, env())
    assert.equals(1, r.code, r.err)
    assert.matches("storyboard.json: shot 3: the film's 3 creates (cost 1.2) are more than the spend limits let "
      .. "through: after the shots before it, --spend-limit: 0.8 spent of model videos", r.err, 1, true)
    -- (the option's Lua name nowhere; its kind spend_limited stays)
    assert.is_nil(r.err:find("%f[%w_]spend_limit%f[^%w_]"), r.err)
    assert.equals(before, #posts(), "no shot sent")
  end)

  it("film stopped by Ctrl-C after its second shot: exit 130 and the command that goes on, which run as printed "
    .. "makes the film with 4 creates in all", function()
    emu:config { processing = 2 } -- (a shot takes 2 s: the film is still at work when its second shot is saved)
    local board, film = dir .. "/storyboard.json", dir .. "/film.mp4"
    helper.write_file(board, '{"shots": [{"model": "videos", "prompt": "one", "duration": 4}, {"model": "videos", '
      .. '"prompt": "two", "duration": 5}, {"model": "videos", "prompt": "three", "duration": 4}, {"model": '
      .. '"videos", "prompt": "four", "duration": 6}]}')
    local proc = C.background({ "film", board, "--out", film, "--journal", journal, "--interval", "0.1" }, env())
    assert.is_true(helper.wait_until(function() return helper.exists(dir .. "/film.shot02.mp4") end, 60))
    -- (and shot 3's create answered and recorded: the film sends it as shot 2 is saved, and a create in flight
    -- when Ctrl-C comes is one the client cannot know was made, whose pending record the command that goes on
    -- rightly refuses to send again: seen once in a loaded run)
    assert.is_true(helper.wait_until(function()
      local text = helper.read_file(journal) or ""
      local _, created = text:gsub('"event":"created"', "")
      local _, pending = text:gsub('"event":"pending"', "")
      return created >= 3 and created == pending
    end, 60), helper.read_file(journal))
    assert.equals(130, proc:stop("INT").code)
    local line = proc:err_line("interrupted")
    local command = assert(line:match("`(starvideos film [^`]+)` goes on: it pays for no shot made before"), line)
    assert.equals("starvideos film " .. board .. " --out " .. film .. " --interval 0.1 --journal " .. journal, command)
    assert.falsy(helper.exists(film))
    emu:config { processing = 0.2 }
    local r = C.run_printed(command, env())
    assert.equals(0, r.code, r.err)
    assert.equals(4, #posts(), "each shot paid once")
    assert.equals(19, tonumber((helper.capture("ffprobe -v error -show_entries format=duration -of csv=p=0 "
      .. q(film)))))
  end)

  it("film: a storyboard that is not JSON, or not of the shape, or whose shot is invalid, exits 2 naming the file "
    .. "and the shot, nothing sent", function()
    local board = dir .. "/board.json"
    for _, case in ipairs {
      { "{\"shots\": [", board .. ": not JSON (" },
      { "[1, 2]", board .. ": a JSON object {\"shots\": [" },
      { '{"shots": [{"model": "videos", "prompt": "a", "duration": 4}, 7]}', board .. ": shot 2: a JSON object" },
      { '{"shots": [{"model": "videos", "prompt": "a", "duration": 4}, {"prompt": "b", "continue": true}]}',
        board .. ": shot 2: \"continue\" needs the shot's \"last_image\"" },
      { '{"shots": [{"model": "videos", "prompt": "a", "duration": 4, "continue": true, "last_image": "https://e/x"}]}',
        board .. ": shot 1: \"continue\": the first shot has no shot before it" },
      { '{"shots": [{"model": "videos", "prompt": "a", "duration": 4}, {"model": "videos", "prompt": "b", '
        .. '"duration": 99}]}', board .. ": shot 2: duration: expected a whole number of seconds" },
      { '{"shots": [{"model": "videos", "prompt": "a", "duration": 4}, {"prompt": "b", "remix": 3}]}',
        board .. ": shot 2: \"remix\" expects the number of a shot before it (1 to 1)" },
      { '{"shots": [{"model": "videos", "prompt": "a", "duration": 4}, {"model": "starvideos_o3", "prompt": "b", '
        .. '"remix": 1, "referenceImages": ["https://e/1.png", "https://e/2.png", "https://e/3.png", '
        .. '"https://e/4.png", "https://e/5.png"]}]}', board .. ": shot 2: referenceImages" },
    } do
      helper.write_file(board, case[1])
      local r = run({ "film", board, "--out", dir .. "/f.mp4", "--journal", journal }, env())
      assert.equals(2, r.code, case[1])
      assert.equals("starvideos film: " .. case[2], lines(r.err)[1]:sub(1, #"starvideos film: " + #case[2]), case[1])
    end
    assert.same({}, emu:requests(), "nothing was sent")
  end)

  it("remix ID without --duration or --ratio: one create with the parent's model, duration and ratio, as continue "
    .. "takes them", function()
    local parent = made({ "generate", "--model", "videos", "--prompt", "a red fox", "--duration", "6", "--ratio",
      "4:3" }, "parent")
    local before = emu:creates()
    local child = made({ "remix", parent.id, "--prompt", "as a cartoon" }, "cartoon")
    assert.equals(before + 1, emu:creates())
    local body = last_body(posts)
    assert.same({ "videos", "as a cartoon", 6, "4:3", 1 }, { body.model, body.prompt, body.duration, body.ratio,
      #body.referenceVideos })
    assert.same({ parent.id, "remix" }, { child.parent, child.relation })
  end)

  -- The storyboard of docs/cli.md's "film" (its JSON block), its example.com URLs the emulator's media.
  local function docs_storyboard()
    local text = assert(helper.read_file(helper.root .. "/docs/cli.md"))
    local block = assert(text:match("\n## film\n.-```json\n(.-)```"), "docs/cli.md's storyboard")
    return (block:gsub("https://example%.com/", emu.url .. "/media/"))
  end

  it("film: the docs' storyboard (a continue as its second shot) without a bucket exits 2 naming shot 2 and the "
    .. "bucket, no create sent, its --dry-run too; with a bucket named, --dry-run prices the continue at the model it "
    .. "takes", function()
    local board, film = dir .. "/storyboard.json", dir .. "/film.mp4"
    helper.write_file(board, docs_storyboard())
    local before = emu:creates()
    local nobucket = env { STARVIDEOS_REFS = "" }
    for _, dry in ipairs { false, true } do
      local a = { "film", board, "--out", film, "--journal", journal, "--interval", "0.1" }
      if dry then a[#a + 1] = "--dry-run" end
      local r = run(a, nobucket)
      assert.equals(2, r.code, r.err)
      local said = lines(r.err)[#lines(r.err)]
      local want = "starvideos film: invalid_request: " .. board .. ": shot 2: its first_image (the last frame of "
        .. "shot 1) is a local file, which needs a bucket: storage."
      assert.equals(want, said:sub(1, #want), said)
      assert.matches("(nothing was sent)", said, 1, true)
    end
    assert.equals(before, emu:creates(), "no shot paid")
    local r = run({ "film", board, "--out", film, "--journal", journal, "--prices", '{"videos": 0.4}', "--dry-run" },
      env { STARVIDEOS_REFS = "s3://film-refs/r/", AWS_ACCESS_KEY_ID = "AK", AWS_SECRET_ACCESS_KEY = "SK" })
    assert.equals(0, r.code, r.err)
    assert.same({ "SHOT  ACTION  MODEL   PRICE  FILE",
      "1     create  videos  0.4    " .. dir .. "/film.shot01.mp4",
      "2     create  videos  0.4    " .. dir .. "/film.shot02.mp4 (continues shot 1)",
      "3     create  videos  0.4    " .. dir .. "/film.shot03.mp4",
      "3 shots: 3 creates, cost 1.2; 0 made already; nothing was sent" }, lines(r.out))
    assert.equals(before, emu:creates(), "the plan sent nothing")
  end)

  it("film: a shot that remixes shot 1 is made from its video (its line says so); one refused once shot 1 is made "
    .. "exits 1 saying shot 1 is made and paid for", function()
    local board = dir .. "/remix.json"
    helper.write_file(board, '{"shots": [{"model": "videos", "prompt": "one", "duration": 4}, {"prompt": "two, as a '
      .. 'cartoon", "remix": 1}]}')
    local before = emu:creates()
    local r = run({ "film", board, "--out", dir .. "/a.mp4", "--journal", journal, "--interval", "0.1" }, env())
    assert.equals(0, r.code, r.err)
    assert.equals(before + 2, emu:creates())
    assert.matches("\nshot 2: task %S+ %(remixes %S+%), saved ", r.out)
    r = run({ "film", board, "--out", dir .. "/a.mp4", "--journal", journal, "--dry-run" }, env())
    assert.equals(0, r.code, r.err)
    assert.equals("2     none    videos  -      " .. dir .. "/a.shot02.mp4 (remixes shot 1) (made already)",
      lines(r.out)[3])
    -- (the remix asks whether shot 1's video_url answers, without a bucket: it does not; its file needs one)
    emu:fault { method = "HEAD", path = "/videos/", status = 404, count = 10 }
    r = run({ "film", board, "--out", dir .. "/b.mp4", "--journal", journal, "--interval", "0.1" },
      env { STARVIDEOS_REFS = "" })
    emu:clear_faults()
    assert.equals(1, r.code, r.err)
    assert.equals(before + 3, emu:creates(), "shot 1 paid, shot 2 not")
    local said = lines(r.err)[#lines(r.err)]
    assert.matches("^starvideos film: invalid_request: " .. board:gsub("%p", "%%%0") .. ": shot 2: ", said)
    assert.matches("; shot 1 is made and paid for: run again, the film pays for none of them twice$", said)
  end)

  it("film whose shots are made but whose join fails (an ffmpeg that cannot concat): exit 1 saying the shots are "
    .. "made and paid for; run again with ffmpeg, the film is made and nothing paid twice", function()
    local bin = dir .. "/bin"
    os.execute("mkdir -p " .. q(bin))
    local ffmpeg = helper.capture("command -v ffmpeg"):gsub("%s+$", "")
    helper.write_file(bin .. "/ffmpeg", "#!/bin/sh\ncase \"$*\" in *concat*) echo 'no concat here' >&2; exit 1;; "
      .. "esac\nexec " .. q(ffmpeg) .. ' "$@"\n')
    assert(helper.execute("chmod +x " .. q(bin .. "/ffmpeg")))
    local board, film = dir .. "/two.json", dir .. "/two.mp4"
    helper.write_file(board, '{"shots": [{"model": "videos", "prompt": "one", "duration": 4}, {"model": "videos", '
      .. '"prompt": "two", "duration": 4}]}')
    local before = emu:creates()
    local r = run({ "film", board, "--out", film, "--journal", journal, "--interval", "0.1" },
      env { PATH = bin .. ":" .. os.getenv("PATH") })
    assert.equals(1, r.code, r.err)
    assert.equals(before + 2, emu:creates())
    local said = lines(r.err)[#lines(r.err)]
    assert.matches("ffmpeg could not join the shots: no concat here", r.err, 1, true)
    assert.matches("; shots 1 to 2 are made and paid for: run again, the film pays for none of them twice$", said)
    assert.falsy(helper.exists(film))
    r = run({ "film", board, "--out", film, "--journal", journal, "--interval", "0.1" }, env())
    assert.equals(0, r.code, r.err)
    assert.equals(before + 2, emu:creates(), "none paid twice")
  end)

  it("list --tree: a parent, its child by again and its grandchild by again, each under the one before with its "
    .. "relation (--json: parent, relation, depth); the same after compact (which keeps no prompt)", function()
    local parent, child, grandchild = family()
    local function tree()
      local r = run({ "list", "--journal", journal, "--tree" }, {})
      assert.equals(0, r.code, r.err)
      return lines(r.out)
    end
    local want = {
      parent.id .. "  downloaded  videos  " .. dir .. "/parent.mp4  a red fox",
      "  again: " .. child.id .. "  downloaded  videos  " .. dir .. "/child.mp4  a blue fox",
      "    again: " .. grandchild.id .. "  downloaded  videos  " .. dir .. "/grandchild.mp4  a blue fox",
      "3 tasks: 3 downloaded" }
    assert.same(want, tree())
    local r = run({ "list", "--journal", journal, "--tree", "--json" }, {})
    local got = {}
    for i, t in ipairs(json_lines(r.out)) do got[i] = { t.id, t.parent or "-", t.relation or "-", t.depth } end
    assert.same({ { parent.id, "-", "-", 0 }, { child.id, parent.id, "again", 1 },
      { grandchild.id, child.id, "again", 2 } }, got)
    r = run({ "compact", "--journal", journal }, {})
    assert.equals(0, r.code, r.err)
    assert.matches("3 settled tasks as schedule samples", r.out, 1, true)
    for i = 1, 3 do want[i] = want[i]:gsub("  a %a+ fox$", "") end -- (a compacted task keeps no prompt)
    assert.same(want, tree(), "the lineage survives compaction")
  end)

  it("list --tree of a chain of 3,000 generations: each under the one before, two spaces a generation up to 20, "
    .. "then the depth in brackets; --json gives every depth", function()
    require("bench.lib.chain_journal").write(journal, 3000, dir)
    local r = run({ "list", "--journal", journal, "--tree" }, {})
    assert.equals(0, r.code, r.err)
    local got = lines(r.out)
    assert.equals(3001, #got)
    assert.equals("video_1  created  videos  " .. dir .. "/o1.mp4  p1", got[1])
    assert.equals(string.rep("  ", 20) .. "again: video_21  created  videos  " .. dir .. "/o21.mp4  p21", got[21])
    for i = 22, 3000 do
      local want = string.format("%s[%d] again: video_%d  created  videos  %s/o%d.mp4  p%d", string.rep("  ", 20),
        i - 1, i, dir, i, i)
      if got[i] ~= want then assert.equals(want, got[i], "line " .. i) end
    end
    assert.equals("3000 tasks: 3000 created", got[3001])
    r = run({ "list", "--journal", journal, "--tree", "--json" }, {})
    for i, t in ipairs(json_lines(r.out)) do
      if t.depth ~= i - 1 or t.id ~= "video_" .. i then assert.same({ "video_" .. i, i - 1 }, { t.id, t.depth }) end
    end
  end)
end)
