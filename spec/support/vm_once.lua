-- The fast tier's files that `make test-all` runs once, in Lua 5.4's part, and leaves out of every other VM's
-- (tools/test-all.sh): what each checks does not run on the VM (a page's text, a tool that make lint runs on
-- Lua 5.4, C alone, a script run by node or a shell).  Everything else of the fast tier runs under every VM: the
-- binding, the library, the emulator and the command line, which run under the VM of their part.  A file here
-- proves no promise (spec/support/promises.lua claims none of it, no VM cell of docs/matrix.md names it: the
-- matrix's check at the end of a full run would find the cell empty); spec/matrix_spec.lua checks both.
return {
  ["spec/tools/shape_spec.lua"] = "tools/shape.lua, the checker make lint runs on Lua 5.4",
  ["spec/docs_spec.lua"] = "the reference's and the README's text against the options' tables",
  ["spec/docs_setup_spec.lua"] = "the setup pages' text and commands",
  ["spec/docs_recipes_spec.lua"] = "the docs' recipes and the tiers' installs, read from the pages and the Makefile",
  ["spec/matrix_spec.lua"] = "docs/matrix.md against the declarations of the promises and places",
  ["spec/types_spec.lua"] = "types/starvideos.lua as tools/types.lua makes it",
  ["spec/versioned_spec.lua"] = "the versioned rockspecs as tools/versioned.lua makes them",
  ["spec/core/core_c_spec.lua"] = "the C core's own tests, no Lua inside",
  ["spec/studio_page_spec.lua"] = "the studio's page script, run by node",
  ["spec/tools/completion_spec.lua"] = "the completion scripts, run in bash, zsh and fish",
}
