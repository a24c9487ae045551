local M = {}
function M.spin(ctx) while true do end end
function M.spin_pcall(ctx)
  while true do pcall(function() while true do end end) end
end
function M.recurse(ctx) return M.recurse(ctx) + 1 end
return M
