-- lhost_run_examples -> run_example -> example_text -> lua_getfield(example, "name")
-- runs the example's __index outside any pcall: Lua panic, abort() (found by review,
-- confirmed with fuzz_rules)
local M = {}
function M.f(x) return x end
M.examples = { setmetatable({}, { __index = function(t, k) error("field " .. k) end }) }
return M
