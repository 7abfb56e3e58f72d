# zsh -f spec/support/zsh_complete.zsh SCRIPT LINE: what zsh's own completion offers at the end of LINE (a Tab typed
# in an interactive zsh on a pseudo-terminal, SCRIPT sourced after compinit), each match on a line of its own as
# ${(q)...} writes it (a newline or a tab inside a name: $'\n', $'\t'), after a line "<HIT>".  Each match is read
# where zsh hands it to compadd (compadd wrapped: the real one still called), so the script's own _arguments,
# _describe and _files run as a user's Tab runs them (after zsh-capture-completion's way, by Valodim).
zmodload zsh/zpty || exit 3
zpty z zsh -f -i
setup=$(mktemp)
cat > $setup <<SETUP
PROMPT=
autoload -Uz compinit && compinit -u -D
source ${(q)1}
bindkey '^I' complete-word
null-line() { echo -E - \$'\0' }
compprefuncs=( null-line )
comppostfuncs=( null-line exit )
zstyle ':completion:*' list-grouped false
zstyle ':completion:*' insert-tab false
compadd() {
  if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "\$@"; return \$?; fi
  typeset -a __hits
  builtin compadd -A __hits "\$@"
  local h
  for h in \$__hits; do echo -E - "<HIT>\${(q)\${(Q)h}}"; done
  builtin compadd "\$@"
}
echo ok
SETUP
zpty -w z "source ${(q)setup}"
local line
repeat 8; do zpty -r z line; [[ $line == ok* ]] && break; done
zpty -w z "$2"$'\t'
integer tog=0
while zpty -r z line; do
  if [[ $line == *$'\0'* ]]; then (( tog++ )) && break || continue; fi
  (( tog )) && [[ $line == *'<HIT>'* ]] && print -r -- "${${line#*<HIT>}%$'\r'*}"
done
rm -f $setup
