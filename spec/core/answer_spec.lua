-- One answer reader: core.verdict (and so every transport's result) gives the
-- task table built in C from the core's one scan of the answer.  The reference
-- is the path it replaced, kept here only: lua-cjson's decode (cjson.safe, depth
-- 64), then the walk that removed nulls and made whole numbers integers, then
-- the check that the id is a non-empty string.  For every body, the new path
-- gives the same table (same keys, same values, same number types, the sign of
-- a zero) or the same refusal.
local helper = require "spec.helper"
local core = require "starvideos.core"
local cjson_safe = require "cjson.safe"

local NULL = cjson_safe.null
local math_type = math.type -- luacheck: ignore 143 (5.3+ only, checked before use)

-- ------------------------------------------------------ the old path, as it was

local old_cjson = cjson_safe.new()
old_cjson.decode_max_depth(64)

-- core.clean as it was: null gone, a float that holds a whole number in
-- lua_Integer's range made an integer (5.3+), nested tables to depth 64.
local function old_clean(t, depth)
  depth = depth or 0
  for k, v in pairs(t) do
    if v == NULL then
      t[k] = nil
    elseif type(v) == "number" and math_type and math_type(v) == "float" then
      local i = math.tointeger(v) -- luacheck: ignore 143
      if i then t[k] = i end
    elseif type(v) == "table" and depth < 64 then
      old_clean(v, depth + 1)
    end
  end
  return t
end

-- The old path's lua-cjson (Debian's 2.1.0) read every number as a double; a newer one (the 2.1.0.19 built for
-- Lua 5.5) reads an integer literal as an integer, saturated past 64 bits.  So the old path is given each integer
-- literal with an exponent ("e0"), which every lua-cjson reads as a double: the body as the old path read it.
local function integers_as_doubles(text)
  return (text:gsub("%-?[%w%.%+%-]+", function(token) if token:find("^%-?%d+$") then return token .. "e0" end end))
end
local function as_doubles(body)
  local out, i = {}, 1
  while i <= #body do
    local quote = body:find('"', i, true) or #body + 1
    out[#out + 1] = integers_as_doubles(body:sub(i, quote - 1))
    local j = quote + 1 -- past the string's closing quote (its escapes skipped)
    while j <= #body do
      local at = body:find('[\\"]', j)
      if not at or body:sub(at, at) == '"' then j = (at or #body) + 1 break end
      j = at + 2
    end
    out[#out + 1] = body:sub(quote, j - 1)
    i = j
  end
  return table.concat(out)
end

-- The old reading of a body the old verdict took (a 2xx the core accepted):
-- the task, or "refused" and, for a create, the id core.task_id read.
local function old_decode(body)
  local task = old_cjson.decode(as_doubles(body))
  if type(task) == "table" and type(task.id) == "string" and task.id ~= "" then return old_clean(task) end
  return nil, "refused"
end

-- ------------------------------------------------------------ comparing

local function describe_value(v)
  if type(v) == "number" then
    local zero = v == 0 and 1 / v < 0 and " (-0)" or ""
    return string.format("%s %.17g%s", math_type and math_type(v) or "number", v, zero)
  end
  return string.format("%s %q", type(v), tostring(v))
end

-- nil when a and b are the same value all the way down, else where they differ.
local function difference(a, b, path)
  path = path or "task"
  if type(a) ~= type(b) then return path .. ": " .. describe_value(a) .. " vs " .. describe_value(b) end
  if type(a) == "number" then
    if math_type and math_type(a) ~= math_type(b) then
      return path .. ": " .. describe_value(a) .. " vs " .. describe_value(b)
    end
    if a ~= b and not (a ~= a and b ~= b) then
      return path .. ": " .. describe_value(a) .. " vs " .. describe_value(b)
    end
    if a == 0 and 1 / a ~= 1 / b then return path .. ": the sign of zero differs" end
    return nil
  end
  if type(a) ~= "table" then
    if a ~= b then return path .. ": " .. describe_value(a) .. " vs " .. describe_value(b) end
    return nil
  end
  for k, v in pairs(a) do
    local d = difference(v, rawget(b, k), path .. "[" .. string.format("%q", tostring(k)) .. "]")
    if d then return d end
  end
  for k, v in pairs(b) do
    if rawget(a, k) == nil then return path .. "[" .. tostring(k) .. "]: only in the second: " .. describe_value(v) end
  end
  return nil
end

local function no_null(t, path)
  for k, v in pairs(t) do
    assert(v ~= NULL, (path or "task") .. "." .. tostring(k) .. " is cjson.null")
    if type(v) == "table" then no_null(v, (path or "task") .. "." .. tostring(k)) end
  end
end

-- The new path and the old on one answer: the same table, or both refuse.
-- Returns what the new path gave.
local function same_reading(op, body, status)
  status = status or 200
  local task, err, wire = core.verdict(op, status, body, nil, "none", "")
  assert.equal("none", wire)
  local old_ok = status >= 200 and status <= 299
  if task then
    assert.is_table(task, "a task is a table, not text")
    assert.is_nil(err)
    local want, why = old_decode(body)
    assert(want, "the new path took an answer the old one refused (" .. tostring(why) .. "): " .. body:sub(1, 200))
    local d = difference(task, want)
    assert(d == nil, tostring(d) .. " in " .. body:sub(1, 200))
    no_null(task)
  else
    assert.is_table(err)
    if old_ok then
      -- the old verdict's checks are the core's, unchanged: such an answer was
      -- refused before lua-cjson saw it, or lua-cjson refused it
      assert.equal("protocol", err.kind)
    end
    if op == "create" and old_ok then
      assert.is_true(err.maybe_created, "a refused create 2xx may have created")
    elseif op ~= "create" then
      assert.is_nil(err.maybe_created, "only a create may have created")
    end
    if err.id then assert.is_true(err.maybe_created and err.created) end
  end
  return task, err
end

-- ------------------------------------------------------------ the bodies

-- The fuzz corpus's answers (csrc/fuzz/fuzz_answer.c's format: a byte for the
-- op, two for the status, the Retry-After value up to a newline when there is
-- one, then the body).
local function corpus_answers()
  local list = {}
  local dir = "csrc/fuzz/corpus/answer"
  local p = assert(io.popen("ls " .. dir))
  for name in p:lines() do
    local data = assert(helper.read_file(dir .. "/" .. name))
    local function byte(i) return data:byte(i) or 0 end -- the fuzz reader's bytes past the end are 0
    local op = ({ "create", "query", "download" })[byte(1) % 3 + 1]
    local status = (byte(2) * 256 + byte(3)) % 600
    local rest = data:sub(4)
    local nl = rest:find("\n", 1, true)
    local body = nl and rest:sub(nl + 1) or rest
    list[#list + 1] = { name = name, op = op, status = status, body = body }
  end
  p:close()
  assert(#list >= 10, "the answer corpus is there")
  return list
end

local function nest(n, inner)
  return string.rep('{"a":', n) .. inner .. string.rep("}", n)
end

local function nest_list(n, inner)
  return string.rep("[", n) .. inner .. string.rep("]", n)
end

local TASK = '"id":"task_1","status":"completed"'

-- Answers a hostile or careless server could send, each with what must come
-- of it: "same" (the same table both ways) or "refused".
local HOSTILE = {
  { "the service's own completed task", '{"id":"task_01JD6Z8ZQ3W4Y5X6V7B8N9M0KP","object":"video",'
    .. '"created":1732252800,"model":"videos","status":"completed","video_url":"http://127.0.0.1:8080/v.bin?'
    .. 'expires=1732339200&signature=9f2c4e1a7b3d5f60","actualDuration":5,"error":null}', "same" },
  { "a duplicate top-level key", '{' .. TASK .. ',"model":"a","model":"b"}', "refused" },
  { "the id twice", '{"id":"a","status":"queued","id":"b"}', "refused" },
  { "an escaped key that repeats another", '{' .. TASK .. ',"\\u0069d":"t2"}', "refused" },
  { "a duplicate key nested (the last one counts, as lua-cjson did)", '{' .. TASK .. ',"x":{"k":1,"k":2,"k":null}}',
    "same" },
  { "nulls at every depth", '{' .. TASK .. ',"e":null,"n":{"a":null,"b":3,"l":[1,null,2.25,{"d":null,"x":0}]},'
    .. '"l":[null,null,1,null],"deep":[[null],[{"z":null}]]}', "same" },
  { "a list of nulls only", '{' .. TASK .. ',"l":[null,null,null]}', "same" },
  { "huge numbers", '{' .. TASK .. ',"big":1e300,"huge":1e400,"neg_huge":-1e400,"tiny":1e-400,'
    .. '"long":123456789012345678901234567890}', "same" },
  { "2^53 + 1 and its neighbours", '{' .. TASK .. ',"a":9007199254740993,"b":9007199254740992,'
    .. '"c":-9007199254740993,"d":9007199254740993.0,"e":900719925474099.3e1}', "same" },
  { "the edges of a 64-bit integer", '{' .. TASK .. ',"max":9223372036854775807,"over":9223372036854775808,'
    .. '"min":-9223372036854775808,"under":-9223372036854775809,"f":9.2233720368547758e18}', "same" },
  { "-0 in every form", '{' .. TASK .. ',"z":-0,"zf":-0.0,"ze":-0e5,"pz":0,"pzf":0.0,"l":[-0,0]}', "same" },
  { "numbers with fractions and exponents", '{' .. TASK .. ',"a":2.5,"b":1.5e2,"c":1E2,"d":1e+2,"e":12.5e-1,'
    .. '"f":0.1,"g":-7,"h":123456789012345,"i":1234567890123456,"j":0.30000000000000004}', "same" },
  { "unicode escapes", '{' .. TASK .. ',"s":"caf\\u00e9 \\u4e2d \\u0000 \\/ \\" \\\\ \\b\\f\\n\\r\\t",'
    .. '"raw":"café ☕"}', "same" },
  { "an escaped id", '{"id":"t\\u00e9\\/1","status":"queued"}', "same" },
  { "a surrogate pair", '{' .. TASK .. ',"emoji":"\\ud83d\\ude00","upper":"\\uD83D\\uDE00"}', "same" },
  { "an escaped key", '{' .. TASK .. ',"\\u006bey":1,"k\\ney":2}', "same" },
  { "a lone high surrogate", '{' .. TASK .. ',"s":"\\ud83d"}', "refused" },
  { "a lone low surrogate", '{' .. TASK .. ',"s":"\\ude00"}', "refused" },
  { "a high surrogate and a non-surrogate", '{' .. TASK .. ',"s":"\\ud83d\\u0041"}', "refused" },
  { "a bad \\u escape", '{' .. TASK .. ',"s":"\\u12G4"}', "refused" },
  { "a bad escape", '{' .. TASK .. ',"s":"\\x41"}', "refused" },
  { "a raw control character", '{' .. TASK .. ',"s":"a\tb"}', "refused" },
  { "invalid UTF-8, passed through as bytes", '{' .. TASK .. ',"s":"\255\254"}', "same" },
  { "nesting 64 deep in all", '{' .. TASK .. ',"n":' .. nest(62, "1") .. '}', "same" },
  { "nesting 65 deep", '{' .. TASK .. ',"n":' .. nest(64, "1") .. '}', "refused" },
  { "lists 64 deep", '{' .. TASK .. ',"n":' .. nest_list(63, "null") .. '}', "same" },
  { "lists 65 deep", '{' .. TASK .. ',"n":' .. nest_list(64, "1") .. '}', "refused" },
  { "empty containers", '{' .. TASK .. ',"o":{},"l":[],"ol":[{}],"lo":{"x":[]}}', "same" },
  { "booleans", '{' .. TASK .. ',"t":true,"f":false,"l":[true,false,null]}', "same" },
  { "whitespace everywhere", ' \t\r\n{ "id" : "t" ,\n"status":"queued" , "l" : [ 1 , 2 ] }\n ', "same" },
  { "an id that is a number", '{"id":5,"status":"queued"}', "refused" },
  { "an empty id", '{"id":"","status":"queued"}', "refused" },
  { "an id with a control character", '{"id":"t\\n1","status":"queued"}', "refused" },
  { "an id of 513 bytes", '{"id":"' .. string.rep("a", 513) .. '","status":"queued"}', "refused" },
  { "an id of 512 bytes", '{"id":"' .. string.rep("a", 512) .. '","status":"queued"}', "same" },
  { "no status", '{"id":"t3"}', "refused" },
  { "a status that is not a string", '{"id":"t3","status":5}', "refused" },
  { "a list, not an object", '[{"id":"t","status":"queued"}]', "refused" },
  { "a byte-order mark", '\239\187\191{"id":"t4","status":"queued"}', "refused" },
  { "trailing data", '{"id":"t","status":"queued"} x', "refused" },
  { "two objects", '{"id":"t","status":"queued"}{}', "refused" },
  { "cut short", '{"id":"t5","status":"que', "refused" },
  { "empty", "", "refused" },
  { "HTML", "<html><body>502 Bad Gateway</body></html>", "refused" },
  { "a hex number", '{' .. TASK .. ',"n":0x10}', "refused" },
  { "NaN and Infinity", '{' .. TASK .. ',"n":NaN}', "refused" },
  { "Infinity", '{' .. TASK .. ',"n":Infinity}', "refused" },
  { "a leading zero", '{' .. TASK .. ',"n":012}', "refused" },
  { "a trailing comma", '{' .. TASK .. ',}', "refused" },
  { "single quotes", "{'id':'t','status':'queued'}", "refused" },
  { "a number cut at its exponent", '{' .. TASK .. ',"n":1e}', "refused" },
  { "many members (past the core's list of 32)", (function()
      local parts = {}
      for i = 1, 100 do parts[i] = string.format('"k%d":%d', i, i) end
      return "{" .. table.concat(parts, ",") .. "," .. TASK .. ',"e":null}'
    end)(), "same" },
  { "a long escaped string (past the binding's small buffer)",
    '{' .. TASK .. ',"s":"' .. string.rep("\\u00e9x", 400) .. '"}', "same" },
}

describe("one answer reader (core.verdict builds the task table)", function()
  for _, case in ipairs(HOSTILE) do
    local name, body, want = case[1], case[2], case[3]
    it(string.format("%s: %s", want == "same" and "reads as lua-cjson + clean did" or "refuses", name), function()
      for _, op in ipairs { "query", "create" } do
        local task, err = same_reading(op, body)
        if want == "same" then
          assert(task, string.format("%s refused: %s", op, tostring(err)))
        else
          assert.is_nil(task, op)
        end
      end
    end)
  end

  it("reads every answer of the fuzz corpus as the old path did", function()
    local read, took = 0, 0
    for _, a in ipairs(corpus_answers()) do
      if a.op ~= "download" then
        local task = same_reading(a.op, a.body, a.status)
        read = read + 1
        if task then took = took + 1 end
      end
    end
    assert.is_true(read >= 8)
    assert.is_true(took >= 2, "the corpus holds answers that are tasks")
  end)

  it("gives whole numbers as integers on 5.3+ and floats otherwise, nulls as nil", function()
    local task = assert(core.verdict("query", 200, '{"id":"t","created":1732252800,"n":5,"half":2.5,"big":1e300,'
      .. '"neg":-7,"e":null,"nested":{"a":null,"b":3,"list":[1,null,2.25,{"deep":null,"x":0}]},"huge":1e400,'
      .. '"p":9007199254740993,"z":-0,"status":"queued"}'))
    assert.is_nil(rawget(task, "e"))
    assert.is_nil(rawget(task.nested, "a"))
    assert.is_nil(task.nested.list[2])
    assert.equal(2.25, task.nested.list[3])
    assert.is_nil(rawget(task.nested.list[4], "deep"))
    assert.equal(math.huge, task.huge)
    assert.equal(9007199254740992, task.p) -- read as a double first, as lua-cjson did
    if helper.integers then
      for _, v in ipairs { task.created, task.n, task.neg, task.nested.b, task.nested.list[1], task.nested.list[4].x,
          task.p, task.z } do
        assert.equal("integer", math_type(v))
      end
      assert.equal("1732252800", tostring(task.created))
      assert.equal("float", math_type(task.half))
      assert.equal("float", math_type(task.big))
      assert.equal("float", math_type(task.huge))
    else
      assert.is_true(1 / task.z < 0, "-0 stays -0.0 where every number is a float")
    end
  end)

  it("reads numbers with '.' whatever the C locale says (a locale with a decimal comma)", function()
    -- a child process in de_DE's numeric locale, made with localedef when the
    -- system has none installed (LOCPATH)
    local dir = helper.tmpdir()
    local env = ""
    if not os.setlocale("de_DE.UTF-8", "numeric") then
      local ok = helper.execute("localedef -i de_DE -f UTF-8 " .. dir .. "/de_DE.UTF-8 >/dev/null 2>&1")
      if not ok then
        os.execute("rm -rf " .. dir)
        return pending("no de_DE locale, and localedef could not make one")
      end
      env = "LOCPATH=" .. dir .. " "
    end
    os.setlocale("C", "numeric")
    local script = dir .. "/locale.lua"
    helper.write_file(script, [[
      assert(os.setlocale("de_DE.UTF-8", "numeric"), "setlocale") -- C's strtod now wants "2,5"
      local core = require "starvideos.core"
      local t = assert(core.verdict("query", 200,
        '{"id":"t","status":"q","a":2.5,"b":0.1e1,"c":1234567.25,"d":-0.5e-3,"e":1.0}'))
      io.write(string.format("%.17g %.17g %.17g %.17g %.17g", t.a, t.b, t.c, t.d, t.e))
    ]])
    local p = assert(io.popen(env .. "LUA_PATH=" .. helper.shell_quote(package.path) .. " LUA_CPATH="
      .. helper.shell_quote(helper.cpath .. ";;") .. " " .. helper.shell_quote(helper.lua) .. " " .. script
      .. " 2>&1"))
    local out = p:read("*a")
    p:close()
    os.execute("rm -rf " .. dir)
    assert.equal("2.5 1 1234567.25 -0.00050000000000000001 1", (out:gsub(",", ".")))
  end)

  it("decides maybe_created, created and id in the core, once, for every way a create ends", function()
    -- a 2xx the core refuses: may have created, the id read from its start
    local _, err = core.verdict("create", 200, '{"id":"t7","status":"queued","id":"t8"}')
    assert.equal("protocol", err.kind)
    assert.is_true(err.maybe_created)
    assert.equal("t7", err.id)
    assert.is_true(err.created)
    -- cut short on the wire: the same
    _, err = core.verdict("create", 200, '{"id":"t9","status":"que', nil, "broken", "connection reset")
    assert.is_true(err.maybe_created)
    assert.equal("t9", err.id)
    -- a 4xx created nothing, a 500 may have, a 503 with Retry-After did not
    _, err = core.verdict("create", 400, '{"error":"bad"}')
    assert.is_nil(err.maybe_created)
    _, err = core.verdict("create", 500, '{"error":"oops"}')
    assert.is_true(err.maybe_created)
    assert.is_nil(err.id)
    assert.is_nil(err.created)
    _, err = core.verdict("create", 503, '{"error":"busy"}', "5")
    assert.is_nil(err.maybe_created)
    -- never sent: nothing created; a query never "may have created"
    _, err = core.verdict("create", 0, "", nil, "not_sent", "connection refused")
    assert.is_nil(err.maybe_created)
    _, err = core.verdict("query", 200, '{"id":"t","status":"q","id":"u"}')
    assert.is_nil(err.maybe_created)
    assert.is_nil(err.id)
  end)

  it("takes a create's error answer whose body is a task as that task; any other, and a query's, as an error",
    function()
    local function f(...) return select("#", ...) end
    for _, c in ipairs { { 429 }, { 503, "5" }, { 500 }, { 409 } } do
      local body = '{"id":"task_' .. c[1] .. '","status":"queued","error":null,"n":[1,{"a":2}]}'
      local task, err, wire, said = core.verdict("create", c[1], body, c[2])
      assert.same({ id = "task_" .. c[1], status = "queued", n = { 1, { a = 2 } } }, task, tostring(err))
      assert.is_nil(err)
      assert.equal("none", wire)
      -- its status and Retry-After beside the rate limits: the key holds all the same (key.lua's limits)
      assert.same({ status = c[1], retry_after = c[2] and tonumber(c[2]) }, said)
      assert.equal(4, f(core.verdict("create", c[1], body, c[2])))
    end
    assert.equal(3, f(core.verdict("create", 200, '{"id":"t","status":"queued"}'))) -- (a 2xx says no limits)
    -- not a task: a status not the lifecycle's, no id, an id twice, a query's; the table half built is dropped
    for _, c in ipairs { { "create", '{"id":"req_1","status":"error","error":"slow down"}' },
        { "create", '{"error":"slow down","status":"queued"}' },
        { "create", '{"id":"t1","status":"queued","id":"t2"}' },
        { "create", '{"id":"t1","status":"queued","x":[1,{"y":' },
        { "query", '{"id":"t1","status":"queued"}' } } do
      local task, err = core.verdict(c[1], 429, c[2])
      assert.is_nil(task, c[2])
      assert.equal("rate_limited", err.kind, c[2])
      assert.is_nil(err.maybe_created, c[2])
      assert.equal(3, f(core.verdict(c[1], 429, c[2])))
    end
  end)

  it("says err.transient (the same call may succeed later) as the contract has it: network, timeout, 429, 5xx",
    function()
    local cases = {
      -- op, status, body, retry_after, wire, message, transient
      { "query", 0, "", nil, "not_sent", "connection refused", true },
      { "query", 0, "", nil, "timeout", "no data for 5 s", true },
      { "query", 200, '{"id":"t","sta', nil, "broken", "connection reset", true },
      { "query", 429, '{"error":"slow down"}', "2", "none", "", true },
      { "query", 408, '{"error":"late"}', nil, "none", "", true },
      { "query", 500, '{"error":"oops"}', nil, "none", "", true },
      { "query", 503, '{"error":"busy"}', "5", "none", "", true },
      { "create", 502, '{"error":"bad gateway"}', nil, "none", "", true },
      { "query", 400, '{"error":"bad"}', nil, "none", "", nil },
      { "query", 401, '{"error":"key"}', nil, "none", "", nil },
      { "query", 404, '{"error":"none"}', nil, "none", "", nil },
      { "query", 302, "", nil, "none", "", nil },
      { "query", 200, '{"id":"t","status":"q","id":"u"}', nil, "none", "", nil },
      { "download", 410, '{"error":"expired"}', nil, "none", "", nil },
    }
    for _, c in ipairs(cases) do
      local task, err = core.verdict(c[1], c[2], c[3], c[4], c[5], c[6])
      assert.is_nil(task)
      assert.equal(c[7], err.transient, table.concat({ c[1], c[2], c[5] }, " "))
    end
    -- the kinds a caller may make above the core, read the same way (errors.lua)
    assert.same({ network = true, timeout = true, rate_limited = true, server = true }, core.transient)
  end)

  it("gives a download's whole transfer as \"\" and reads its error page as an error", function()
    local body, err, wire, bytes, total = core.verdict("download", 200, "", nil, "none", "", 10, 10)
    assert.equal("", body)
    assert.is_nil(err)
    assert.equal("none", wire)
    assert.equal(10, bytes)
    assert.equal(10, total)
    body, err = core.verdict("download", 404, '{"error":"gone"}')
    assert.is_nil(body)
    assert.equal("not_found", err.kind)
  end)

  -- Each op's answer is read by its reading (verdict.c: the service's task, a file, another host's bytes), and the op
  -- is tested only for a create's money.  The same 204 is four things; an XML <Error> is words on every host's page.
  it("reads an answer by its op's reading: a task, a file's length, another host's bytes as they are", function()
    local task, err = core.verdict("query", 204, "", nil, "none", "")
    assert.is_nil(task)
    assert.equal("protocol", err.kind)
    local got, _, wire, bytes = core.verdict("exchange", 204, "", nil, "none", "")
    assert.same({ status = 204, body = "" }, got)
    assert.same({ "none", 0 }, { wire, bytes })
    local body, short = core.verdict("download", 200, "", nil, "none", "", 5, 10)
    assert.is_nil(body)
    assert.equal("download: the transfer ended at byte 5 of 10", short.message)
    _, err, wire = core.verdict("download", 206, "", nil, "none", "", 5, 10, nil, nil, nil, nil, 3, 4)
    assert.equal("broken", wire)
    assert.matches("206 does not start at byte 3", err.message, 1, true)
    local xml = '<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>'
    for _, op in ipairs { "download", "exchange", "query", "create" } do
      err = select(2, core.verdict(op, 403, xml, nil, "none", ""))
      assert.equal(op .. ": HTTP 403: AccessDenied: Request has expired", err.message)
      assert.is_nil(err.maybe_created) -- (a 403 creates nothing)
      err = select(2, core.verdict(op, 403, "\239\187\191\n  " .. xml .. "\n", nil, "none", "")) -- (a BOM, blanks)
      assert.equal(op .. ": HTTP 403: AccessDenied: Request has expired", err.message)
      err = select(2, core.verdict(op, 403, '{"error":"<Code>no</Code><Message>m</Message>"}', nil, "none", ""))
      assert.equal(op .. ": HTTP 403: <Code>no</Code><Message>m</Message>", err.message) -- (JSON: its own words)
      err = select(2, core.verdict(op, 500, "", nil, "none", ""))
      assert.equal(op == "create" or nil, err.maybe_created, op) -- (a 500 may have: said of a create alone)
    end
  end)

  it("leaves the Lua stack as it found it on every refusal", function()
    -- a refused answer had a table half built: none of it may stay on the stack
    local function f(...) return select("#", ...) end
    for _, body in ipairs { '{"id":"a","status":"q","x":[1,2,{"y":', '{"a":{"b":[1]},"a":2,"id":"t","status":"q"}',
        '{"id":"t","status":"q","n":' .. nest(64, "1") .. '}' } do
      assert.equal(3, f(core.verdict("query", 200, body)))
      local _, err = core.verdict("query", 200, body)
      assert.equal("protocol", err.kind)
    end
  end)
end)

describe("one answer reader, through a client", function()
  local starvideos = require "starvideos"
  local emu

  setup(function() emu = helper.emulator { queued = 0, processing = 0 } end)
  teardown(function() if emu then emu:stop() end end)
  before_each(function() emu:reset() end)

  local function new_client()
    return starvideos.new { api_key = emu.key, base_url = emu.url, max_retries = 0, interval = 0.05 }
  end

  -- The emulator's own answer, raw, and what the client made of it.
  local function raw(path, method, body)
    local http, ltn12 = require "socket.http", require "ltn12"
    local out = {}
    local _, code = http.request { url = emu.url .. path, method = method or "GET", sink = ltn12.sink.table(out),
      source = body and ltn12.source.string(body) or nil,
      headers = { authorization = "Bearer " .. emu.key, ["content-type"] = "application/json",
        ["content-length"] = body and tostring(#body) or nil } }
    return code, table.concat(out)
  end

  it("reads the emulator's create and query answers (queued, completed, failed) as the old path did", function()
    local code, body = raw("/v1/videos/videos", "POST", '{"model":"videos","prompt":"a cat","duration":5}')
    assert.equal(200, code)
    local created = same_reading("create", body)
    assert.is_table(created)
    local client = new_client()
    for _, outcome in ipairs { "completed", "failed" } do
      emu:config(outcome == "failed" and { outcome = outcome, error = "no video for you" } or { outcome = outcome })
      local task = assert(client:create { model = "videos", prompt = "a " .. outcome, duration = 5 })
      local qcode, qbody = raw("/v1/result/" .. task.id)
      assert.equal(200, qcode)
      local read = same_reading("query", qbody)
      assert.equal(outcome, read.status)
      -- and the client's own query gives that table (but for a fresh video URL token)
      local mine = assert(client:query(task.id))
      read.video_url, mine.video_url = nil, nil
      assert.is_nil(difference(mine, read))
    end
    client:close()
  end)

  it("journals a create the core refused as the core decided it: created (uncertain) with its id, or pending",
    function()
    local cjson = require "cjson"
    local journal = helper.tmpdir() .. "/j.jsonl"
    local client = starvideos.new { api_key = emu.key, base_url = emu.url, max_retries = 0, journal = journal }
    -- a 200 whose answer names its task but has a key twice: may exist, id known
    emu:fault { method = "POST", status = 200, body = '{"id":"video_dup_1","status":"queued","status":"q"}' }
    local none, err = client:create { model = "videos", prompt = "a cat", duration = 5 }
    assert.is_nil(none)
    assert.equal("protocol", err.kind)
    assert.is_true(err.maybe_created)
    assert.is_true(err.created)
    assert.equal("video_dup_1", err.id)
    -- a 500 with no id: may exist, id unknown, the pending record stands
    emu:fault { method = "POST", status = 500 }
    local _, err2 = client:create { model = "videos", prompt = "a dog", duration = 5 }
    assert.is_true(err2.maybe_created)
    assert.is_nil(err2.created)
    assert.is_string(err2.pending)
    client:close()
    local records = {}
    for line in io.lines(journal) do records[#records + 1] = cjson.decode(line) end
    local uncertain
    for _, r in ipairs(records) do
      if r.event == "created" and r.id == "video_dup_1" then uncertain = r end
      assert.is_false(r.event == "abandoned", "nothing was abandoned: both creates may have been paid for")
    end
    assert(uncertain, "the task the refused answer named is journalled")
    assert.is_true(uncertain.uncertain)
  end)

  it("hands a hostile answer's table to the caller as the core built it", function()
    local client = new_client()
    local task = assert(client:create { model = "videos", prompt = "a cat", duration = 5 })
    local body = '{"id":"' .. task.id .. '","status":"processing","created":1732252800,"e":null,'
      .. '"n":{"k":1,"k":2,"l":[1,null,3]},"big":1e400,"p":9007199254740993,"s":"\\ud83d\\ude00"}'
    emu:fault { status = 200, body = body, path = "/v1/result/" }
    local got = assert(client:query(task.id))
    assert.is_nil(difference(got, assert(old_decode(body))))
    -- a duplicate top-level key is refused by the client too
    emu:fault { status = 200, body = '{"id":"' .. task.id .. '","status":"q","status":"r"}', path = "/v1/result/" }
    local none, err = client:query(task.id)
    assert.is_nil(none)
    assert.equal("protocol", err.kind)
    client:close()
  end)
end)
