-- busted's helper (.busted): at the end of each passing case, the cells of docs/matrix.md its spec file's claims
-- say it proves are recorded (spec/support/matrix.lua's claimed; nothing without $STARVIDEOS_MATRIX).
local busted = require "busted"

busted.subscribe({ "test", "end" }, function(element, _, status)
  if status == "success" and os.getenv("STARVIDEOS_MATRIX") then
    -- (the spec file whose it made the case: "@spec/x_spec.lua"; one of a support module's: the file running)
    local source = element.trace and element.trace.source
    local file = type(source) == "string" and source:match("^@%.?/?(.*_spec%.lua)$") or nil
    require("spec.support.matrix").claimed(element.name, file)
  end
  return nil, true
end)
