local money, date = bandbill.money, bandbill.date
local M = {}
function M.all(ctx)
  local r = {}
  r.parse = money.parse("¥1,290.50")
  r.ratio = money.ratio(12900, 1, 3, "half_even")
  r.prorate = money.prorate(12900, 14, 30)
  r.alloc = money.allocate(1000, { 1, 1, 1 })
  r.sum = money.sum(ctx.lines, "gross")
  r.fmt = money.format(-50)
  r.check = money.check(ctx.price)
  r.ymd = { date.ymd("2024-02-29") }
  r.next = date.add_months("2024-01-31", 1)
  r.add = date.add_days("2026-12-31", 1)
  r.dim = date.days_in_month(2024, 2)
  r.leap = date.is_leap("2100-01-01")
  r.wd = date.weekday("2026-11-27")
  r.ms = date.month_start("2026-11-27")
  r.me = date.month_end("2026-11-27")
  r.valid = date.valid("2026-02-30")
  r.make = date.make(2026, 11, 27)
  bandbill.log("money", r.parse)
  bandbill.warn("warn", ctx)
  print("printed", ctx.name)
  return r
end
function M.errors(ctx)
  local errs = {}
  for _, f in ipairs({
    function() return money.ratio(1, 1, 0) end,
    function() return money.ratio(math.maxinteger, math.maxinteger, 1) end,
    function() return money.allocate(10, {}) end,
    function() return money.allocate(10, { 0, 0 }) end,
    function() return money.percent(100, "1.2345678") end,
    function() return money.parse("1.234") end,
    function() return date.add_months("2026-01-01", 1e9) end,
    function() return date.make(10000, 1, 1) end,
    function() return money.sum({ 1, 2.5 }) end,
  }) do
    local ok, e = pcall(f)
    errs[#errs + 1] = ok and "ok" or tostring(e)
  end
  return errs
end
M.examples = {
  { fn = "errors", input = {}, expect = {} },
}
return M
