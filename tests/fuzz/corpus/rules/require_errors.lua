local ok1, e1 = pcall(require, "lib.missing")
local ok2, e2 = pcall(require, "../etc/passwd")
local ok3, e3 = pcall(require, "fuzz")
local M = { errs = { tostring(e1), tostring(e2), tostring(e3) } }
function M.get(ctx) return M.errs end
return M
