local M = {}
function M.grow(ctx)
  local t, s = {}, "x"
  for i = 1, 1e9 do t[i] = s; s = s .. s end
  return #t
end
function M.strings(ctx) return string.rep("ab", 1 << 30) end
return M
