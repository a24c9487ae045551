-- examples built by a constructor, with a shared metatable for defaults
local M = {}
function M.double(x) return x * 2 end
local Example = { __index = { fn = "double", name = "doubling" } }
local function ex(t) return setmetatable(t, Example) end
M.examples = { ex({ input = 2, expect = 4 }), ex({ input = -3, expect = -6 }) }
return M
