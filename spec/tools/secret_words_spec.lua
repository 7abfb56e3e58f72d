-- Secrets typed where a name goes (issue, item 14): an API key typed as the command (`starvideos sk-...`) or as
-- --api-key-file's path is never echoed by the refusal (a plain word still is, with its "did you mean"), nor a
-- webhook secret typed as --notify-secret-file's path; the key of $STARVIDEOS_API_KEY is hidden from the first word.

local C = require "spec.support.cli_run"
local args = require "starvideos.cli.args"

local run, lines = C.run, C.lines

describe("a secret typed where a name goes", function()
  local env = function(extra)
    local e = { STARVIDEOS_API_KEY = "plainkey-of-env", STARVIDEOS_BASE_URL = "http://127.0.0.1:9" }
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end

  it("args.secret_like: keys, webhook secrets and long tokens of letters and digits; not words nor paths", function()
    for _, w in ipairs { "sk-abc", "sk_live_x", "whsec_MfKQ9r8G/dF+2w==", "a8f3k2m9q7x1z5c4", "AKIA4EXAMPLE7KEY9Z" } do
      assert.is_true(args.secret_like(w), w)
    end
    for _, w in ipairs { "stauts", "generate", "my-key-file-for-production", "./keys/sk-file", "key.txt",
      "/etc/starvideos/key1234567890abc" } do
      assert.is_false(args.secret_like(w), w)
    end
  end)

  it("typed as the command: a key-like word (sk-..., a long token of letters and digits) or the configured key is "
    .. "not echoed; a slip is, with its did-you-mean", function()
    for _, word in ipairs { "sk-proj-Abc123def456", "a8f3k2m9q7x1z5c4w6", "plainkey-of-env" } do
      for _, argv in ipairs { { word }, { "help", word }, { word, "--json" } } do
        local r = run(argv, env())
        assert.equals(2, r.code, r.err)
        assert.is_nil((r.out .. r.err):find(word, 1, true), r.out .. r.err)
        assert.matches("unknown command", r.out .. r.err, 1, true)
      end
    end
    local r = run({ "sk-proj-Abc123def456" }, env())
    assert.equals("starvideos: unknown command (a word of 20 bytes, not shown: it is no command's name and may be "
      .. "a secret)", lines(r.err)[1])
    r = run({ "stauts" }, env())
    assert.equals('starvideos: unknown command "stauts" (did you mean status?)', lines(r.err)[1])
  end)

  it("typed as --api-key-file's or --notify-secret-file's path: the refusal names the flag, not the word; a path "
    .. "is named", function()
    local r = run({ "status", "video_1", "--api-key-file", "sk-proj-Abc123def456" }, env())
    assert.equals(2, r.code, r.err)
    assert.equals("starvideos status: cannot read the API key file (its path not shown: it looks like the key itself; "
      .. "--api-key-file takes the path of a file that holds it): No such file or directory", lines(r.err)[1])
    r = run({ "status", "video_1", "--api-key-file=sk-proj-Abc123def456", "--json" }, env())
    assert.equals(2, r.code, r.err)
    assert.is_nil((r.out .. r.err):find("Abc123", 1, true), r.out .. r.err)
    r = run({ "wait", "video_1", "--notify", "https://hooks.example/in", "--notify-secret-file",
      "whsec_MfKQ9r8G/dF+2w==" }, env())
    assert.equals(2, r.code, r.err)
    assert.is_nil(r.err:find("MfKQ9r8G", 1, true), r.err)
    assert.matches("--notify-secret-file takes the path of a file", r.err, 1, true)
    r = run({ "status", "video_1", "--api-key-file", "/nonexistent/key.txt" }, env())
    assert.matches("cannot read the API key file: /nonexistent/key.txt: No such file or directory", r.err, 1, true)
  end)
end)
