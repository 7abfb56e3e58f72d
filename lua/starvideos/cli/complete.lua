-- starvideos.cli.complete: `starvideos completion bash|zsh|fish`, the shell's script that completes the command line
-- from cli/args.lua's commands, flags and arguments (and the rocks' commands): a command's own flags; a flag's value
-- as what it takes (its choices, the models, a file name; nothing for a URL, a prompt, a number, an id); an argument
-- as what it is (the shells, a rock's subcommands, a file). A file name is offered whole, whatever its bytes (a
-- space, a tab, a newline): each shell's own file completion, or bash's glob, never a line of text split again.
--
--   script(shell, rocks)  the script; rocks: the rocks' commands as cli/init.lua lists them ({name, summary, usage,
--                         options} each)

local args = require "starvideos.cli.args"

local ipairs, pairs, type, pcall, setmetatable = ipairs, pairs, type, pcall, setmetatable
local string_format, table_concat, table_sort = string.format, table.concat, table.sort

local M = {}

-- ------------------------------------------------------------- what each word takes

-- What a value of meta (a flag's or an argument's) takes: "files", or nil (nothing offered).
local function files(meta)
  local m = meta or ""
  return (m:find("PATH") or m:find("FILE") or m:find("DIR")) and "files" or nil
end

-- The models' names, sorted (the core's table of them: the rules of each model).
local function models()
  local list = {}
  for name in pairs(require("starvideos.core").models) do list[#list + 1] = name end
  table_sort(list)
  return list
end

-- A flag as the scripts read it: {name, text, values = nil (a switch) | number, what = "files" | {choice...} | nil,
-- many = true (may be given again)}.
local function flag(fname, f, text, more)
  local row = { name = fname, text = text or f.text or "", many = f.kind == "list" or nil }
  if f.kind == "bool" then return row end
  row.values = 1 + (more and #more or 0)
  row.what = f.choices or (fname == "model" and models()) or files(f.meta)
  row.meta = f.meta
  return row
end

-- An argument as the scripts read it: {name, what}: its choices (a command's own, or a rock's "check|hold"), files
-- (PATH, FILE), or nothing (an id, a URL).
local function argument(c, a)
  local choices = c.choices and c.choices[a]
  if not choices and a:find("^%l[%l|-]*|[%l|-]*$") then
    choices = {}
    for w in a:gmatch("[^|]+") do choices[#choices + 1] = w end
  end
  return { name = a, what = choices or files(a) }
end

-- The flags a rock's command that parses its own line adds to a parser (its options(cmd), argparse's calls), read.
local function recorded(options)
  local list, rec = {}, {}
  local function add(names, text, values)
    local name = names:match("%-%-([%w-]+)")
    local row = { name = name, text = text or "", values = values }
    list[#list + 1] = row
    local chain = {}
    function chain.argname(_, meta) row.meta = meta; return chain end
    setmetatable(chain, { __index = function() return function() return chain end end })
    return chain
  end
  function rec.option(_, names, text) return add(names, text, 1) end
  function rec.flag(_, names, text) return add(names, text, nil) end
  setmetatable(rec, { __index = function() return function() return rec end end })
  -- (a rock's flags that do not load, a module of its own missing: the command completed without them)
  if not pcall(options, rec) then return {} end
  for _, row in ipairs(list) do row.what, row.own = row.values and files(row.meta) or nil, true end
  return list
end

-- The commands: {name, summary, flags = {flag...}, args = {argument...}}, the core's in their order, then the rocks'.
local function commands(rocks)
  local list, seen = {}, {}
  local function add(name, c, summary, options)
    seen[name] = true
    local cmd = { name = name, summary = summary or c and c.summary or "", flags = {}, args = {} }
    if options then
      cmd.flags = recorded(options)
    elseif c then
      for _, fname in ipairs(c.flags) do
        local more = c.flag_args and c.flag_args[fname]
        local row = flag(fname, args.flag_of(c, fname), c.flag_text and c.flag_text[fname], more)
        row.own = (c.own and c.own[fname] or more) and true or nil -- (read as this command's alone)
        cmd.flags[#cmd.flags + 1] = row
      end
      for _, a in ipairs(c.args) do cmd.args[#cmd.args + 1] = argument(c, a) end
    end
    list[#list + 1] = cmd
  end
  for _, name in ipairs(args.ORDER) do add(name, args.COMMANDS[name]) end
  for _, r in ipairs(rocks or {}) do
    if not seen[r[1]] then
      add(r[1], args.COMMANDS[r[1]] or r[3] and args.command_of(r[1], r[3]), r[2], r[4])
    end
  end
  local rest = {}
  for name in pairs(args.COMMANDS) do if not seen[name] then rest[#rest + 1] = name end end
  table_sort(rest)
  for _, name in ipairs(rest) do add(name, args.COMMANDS[name]) end
  return list
end

-- The first line of text (a help's): a script's description of a flag or a command is one line.
local function line(text)
  return (text:match("^[^\n]*"))
end

-- text in a shell's single quotes.
local function sq(text)
  return "'" .. text:gsub("'", "'\\''") .. "'"
end

-- ------------------------------------------------------------- bash

-- One case of _starvideos_takes (pattern: 'cmd --flag', or *' --flag' for every command): what flag f takes, as
-- "<values> files|choices|none [choice...]".
-- What a value (a flag's, an argument's) is, as the bash script reads it: "files", "choices WORD...", "none".
local function what_of(x)
  return x.what == "files" and "files" or type(x.what) == "table" and "choices " .. table_concat(x.what, " ")
    or "none"
end

local function bash_takes(pattern, f)
  return string_format('    %s) REPLY="%d %s" ;;', pattern, f.values, what_of(f))
end

local BASH = [=[
# bash completion for %s (`%s completion bash`): each command's own flags, a flag's value as
# what it takes (its choices, the models, a file name; nothing for a URL, a prompt or a number), a file name whole.
_starvideos_takes() { # $1: the command, $2: its flag -> REPLY: "<values> files|choices|none [choice...]", or "0"
  case "$1 $2" in
%s
    *) REPLY="0" ;;
  esac
}
_starvideos_arg() { # $1: the command, $2: its argument's number (from 1) -> REPLY: "files", "choices ...", "none"
  case "$1 $2" in
%s
    *) REPLY="none" ;;
  esac
}
_starvideos_files() { # the names that start with $1, each whole (a glob, never words split again)
  local f
  compopt -o filenames 2>/dev/null
  for f in "$1"*; do
    if [[ -e $f || -L $f ]]; then COMPREPLY+=("$f"); fi
  done
}
_starvideos_offer() { # $1: "files", "choices ..." or "none"; $2: the word as typed so far
  local what=$1
  case $what in
    files) _starvideos_files "$2" ;;
    choices\ *) COMPREPLY=($(compgen -W "${what#choices }" -- "$2")) ;;
  esac
}
_starvideos() {
  local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]} i w flag= left=0 pos=0 plain=
  COMPREPLY=()
  cur=${cur#[\"\']}
  cur=${cur//\\/}
  if ((COMP_CWORD == 1)); then
    COMPREPLY=($(compgen -W %s -- "$cur"))
    return 0
  fi
  for ((i = 2; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if [[ $w == = ]]; then continue; fi
    if ((left > 0)); then left=$((left - 1)); continue; fi
    if [[ -z $plain && $w == -- ]]; then plain=1; continue; fi
    if [[ -z $plain && $w == --* ]]; then
      flag=${w%%%%=*}
      _starvideos_takes "$cmd" "$flag"
      left=${REPLY%%%% *}
      if [[ $w == *=* ]] && ((left > 0)); then left=$((left - 1)); fi
      continue
    fi
    if [[ -z $plain && $w == -?* ]]; then continue; fi
    pos=$((pos + 1))
  done
  if ((left > 0)); then
    _starvideos_takes "$cmd" "$flag"
    _starvideos_offer "${REPLY#* }" "$cur"
  elif [[ -z $plain && $cur == --*=* ]]; then # (an = that is not one of bash's word breaks: the flag kept)
    _starvideos_takes "$cmd" "${cur%%%%=*}"
    _starvideos_offer "${REPLY#* }" "${cur#*=}"
    COMPREPLY=("${COMPREPLY[@]/#/${cur%%%%=*}=}")
  elif [[ -z $plain && $cur == -* ]]; then
    _starvideos_flags "$cmd"
    COMPREPLY=($(compgen -W "$REPLY" -- "$cur"))
  else
    _starvideos_arg "$cmd" $((pos + 1))
    _starvideos_offer "$REPLY" "$cur"
  fi
  return 0
}
_starvideos_flags() { # $1: the command -> REPLY: its flags
  case $1 in
%s
    *) REPLY="" ;;
  esac
}
complete -F _starvideos %s
]=]

local function bash(list)
  local own, every, seen, argcases, flagcases, names = {}, {}, {}, {}, {}, {}
  for _, cmd in ipairs(list) do
    names[#names + 1] = cmd.name
    local fl = {}
    for _, f in ipairs(cmd.flags) do
      fl[#fl + 1] = "--" .. f.name
      -- (a flag of the core's table reads the same in every command: one case "* --name"; a command's own, its own)
      if f.values and f.own then
        own[#own + 1] = bash_takes(sq(cmd.name .. " --" .. f.name), f)
      elseif f.values and not seen[f.name] then
        seen[f.name], every[#every + 1] = true, bash_takes("*" .. sq(" --" .. f.name), f)
      end
    end
    flagcases[#flagcases + 1] = string_format("    %s) REPLY=%s ;;", sq(cmd.name), sq(table_concat(fl, " ")))
    for i, a in ipairs(cmd.args) do
      argcases[#argcases + 1] = string_format('    %s) REPLY="%s" ;;', sq(cmd.name .. " " .. i), what_of(a))
    end
  end
  for _, e in ipairs(every) do own[#own + 1] = e end -- (bash takes the first case that matches)
  return string_format(BASH, args.PROG, args.PROG, table_concat(own, "\n"), table_concat(argcases, "\n"),
    sq(table_concat(names, " ")), table_concat(flagcases, "\n"), args.PROG)
end

-- ------------------------------------------------------------- zsh

-- text's first line inside a zsh double-quoted word; escaped: the characters escaped too (_arguments' "]" in an
-- explanation, ":" in a message).
local function zq(text, escaped)
  text = line(text):gsub('[\\"$`]', "\\%0")
  if escaped then text = text:gsub(escaped, "\\%0") end
  return text
end

local function zsh_action(what)
  if what == "files" then return "_files" end
  if type(what) == "table" then return "(" .. table_concat(what, " ") .. ")" end
  return " "
end

local function zsh(list)
  local out = { "#compdef " .. args.PROG, "# zsh completion for " .. args.PROG .. " (`" .. args.PROG
    .. " completion zsh`, in a folder of $fpath as _" .. args.PROG .. ")", "", "_" .. args.PROG .. "() {",
    "  local -a commands", "  commands=(" }
  for _, cmd in ipairs(list) do
    out[#out + 1] = string_format('    "%s:%s"', cmd.name, zq(cmd.summary))
  end
  out[#out + 1] = "  )"
  out[#out + 1] = "  if (( CURRENT == 2 )); then _describe -t commands command commands; return; fi"
  out[#out + 1] = "  local cmd=${words[2]}"
  out[#out + 1] = "  shift words; (( CURRENT-- ))"
  out[#out + 1] = "  case $cmd in"
  for _, cmd in ipairs(list) do
    local specs = {}
    for _, f in ipairs(cmd.flags) do
      local spec = (f.many and "*" or "") .. "--" .. f.name .. "[" .. zq(f.text, "%]") .. "]"
      for i = 1, f.values or 0 do
        spec = spec .. ":" .. zq(i == 1 and f.meta or "VALUE", ":") .. ":" .. zsh_action(f.what)
      end
      specs[#specs + 1] = '"' .. spec .. '"'
    end
    for _, a in ipairs(cmd.args) do
      specs[#specs + 1] = '":' .. zq(a.name, ":") .. ":" .. zsh_action(a.what) .. '"'
    end
    out[#out + 1] = "    " .. cmd.name .. ") _arguments " .. table_concat(specs, " ") .. " ;;"
  end
  out[#out + 1] = "  esac"
  out[#out + 1] = "}"
  out[#out + 1] = ""
  out[#out + 1] = "if [[ $zsh_eval_context[-1] == loadautofunc ]]; then _" .. args.PROG .. ' "$@"; else compdef _'
    .. args.PROG .. " " .. args.PROG .. "; fi"
  return table_concat(out, "\n") .. "\n"
end

-- ------------------------------------------------------------- fish

local FISH = [[
# fish completion for %s (`%s completion fish`: ~/.config/fish/completions/%s.fish)
complete -c %s -f
function __fish_starvideos_seen_command -d 'whether the line'\''s command is $argv[1]'
  set -l words (commandline -opc)
  test (count $words) -ge 2; and test "$words[2]" = "$argv[1]"
end
function __fish_starvideos_argument -d 'whether the word completed is the command'\''s argument $argv[2] (from 1)'
  set -l words (commandline -opc)
  __fish_starvideos_seen_command $argv[1]; or return 1
  set -l n 0
  set -l skip 0
  set -l plain 0
  for w in $words[3..-1]
    if test $skip -gt 0
      set skip (math $skip - 1)
    else if test $plain -eq 0; and test "$w" = "--"
      set plain 1
    else if test $plain -eq 0; and string match -q -- '--*=*' $w
    else if test $plain -eq 0; and string match -q -- '-?*' $w
      set skip (__fish_starvideos_values $argv[1] $w)
    else
      set n (math $n + 1)
    end
  end
  test $skip -eq 0; and test $n -eq (math $argv[2] - 1)
end
function __fish_starvideos_values -d 'how many values flag $argv[2] of command $argv[1] takes'
  switch "$argv[1] $argv[2]"
%s
    case '*'
      echo 0
  end
end
set -g __fish_starvideos_commands %s
]]

local function fish(list)
  local names, values, lines, seen = {}, {}, {}, {}
  for _, cmd in ipairs(list) do
    names[#names + 1] = cmd.name
    local cond = "__fish_starvideos_seen_command " .. cmd.name
    lines[#lines + 1] = string_format("complete -c %s -n 'not __fish_seen_subcommand_from %s' -a %s -d %s",
      args.PROG, "$__fish_starvideos_commands", cmd.name, sq(line(cmd.summary)))
    for _, f in ipairs(cmd.flags) do
      local how = ""
      if f.values and (f.own or not seen[f.name]) then -- (as bash's: a command's own first, then every command's)
        local case = string_format("    case %s\n      echo %d", f.own and sq(cmd.name .. " --" .. f.name)
          or "'*'" .. sq(" --" .. f.name), f.values)
        if f.own then table.insert(values, 1, case) else values[#values + 1], seen[f.name] = case, true end
      end
      if f.values then
        how = f.what == "files" and " -r -F" or type(f.what) == "table" and " -x -a " .. sq(table_concat(f.what, " "))
          or " -x"
      end
      lines[#lines + 1] = string_format("complete -c %s -n %s -l %s%s -d %s", args.PROG, sq(cond), f.name, how,
        sq(line(f.text)))
    end
    for i, a in ipairs(cmd.args) do
      local how = a.what == "files" and " -F" or type(a.what) == "table" and " -a " .. sq(table_concat(a.what, " "))
      if how then
        lines[#lines + 1] = string_format("complete -c %s -n %s%s", args.PROG,
          sq("__fish_starvideos_argument " .. cmd.name .. " " .. i), how)
      end
    end
  end
  return string_format(FISH, args.PROG, args.PROG, args.PROG, args.PROG, table_concat(values, "\n"),
    table_concat(names, " ")) .. table_concat(lines, "\n") .. "\n"
end

local SCRIPTS = { bash = bash, zsh = zsh, fish = fish }

function M.script(shell, rocks)
  return SCRIPTS[shell](commands(rocks))
end

return M
