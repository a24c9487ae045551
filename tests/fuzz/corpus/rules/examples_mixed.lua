local money = bandbill.money
local M = {}
function M.total(ctx)
  local t = 0
  for _, l in ipairs(ctx.lines) do t = t + l.gross end
  return { total = t, display = money.display(t) }
end
function M.pct(ctx) return money.percent(ctx.price, ctx.rate, "half_even") end
M.examples = {
  { fn = "total", input = { lines = { { gross = 100 }, { gross = 250 } } },
    expect = { total = 350, display = "¥3.50" } },
  { fn = "pct", input = { price = 1000, rate = "8.5" }, expect = 85 },
  { fn = "pct", input = { price = 1000, rate = 8.5 }, expect_error = "write fractions as a string" },
}
return M
