local M = {}
function M.f(ctx)
  return ctx.price +
end
return M
