-- backtracking in string.find is C code: the instruction budget does not bound it
local M = {}
function M.f(ctx) return (string.rep("a", 3000)):find(".-.-.-.-.-.-b") end
return M
