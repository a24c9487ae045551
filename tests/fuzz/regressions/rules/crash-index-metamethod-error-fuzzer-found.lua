-- a module that falls back to a base table for names it does not define
local Base = {}
function Base.describe(ctx) return "base" end
local M = setmetatable({}, { __index = function(t, k) return rawget(Bas1, k) end })
function M.price(ctx) return ctx.price end
M.examples = {
  { fn = "describe", input = {}, expect = "base" },
  { fn = "price", input = { price = 5 }, expect = 5 },
}
return M
