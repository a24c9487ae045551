-- tariffs.lua: what a recurring product costs for one billing period.
--
-- Dates are "YYYY-MM-DD" strings and periods are inclusive of both ends.
-- Amounts are integer fen. A partial period is prorated by days:
-- price * days_used / days_in_period, rounded half up.
local money, date = bandbill.money, bandbill.date

local M = {}

-- flat{price, period = {from, to}, active = {from, to}}
--   -> {amount, days_used, days_in_period}
-- `active` is when the service ran inside the period (defaults to all of it).
function M.flat(ctx)
  money.check(ctx.price, "price")
  local p = ctx.period
  local a = ctx.active or p
  local from = a.from > p.from and a.from or p.from
  local to = a.to < p.to and a.to or p.to
  local total = date.diff(p.from, p.to) + 1
  local used = 0
  if from <= to then used = date.diff(from, to) + 1 end
  return {
    amount = money.prorate(ctx.price, used, total),
    days_used = used,
    days_in_period = total,
  }
end

M.examples = {
  { fn = "flat", name = "a full month",
    input = { price = 12900, period = { from = "2026-12-01", to = "2026-12-31" } },
    expect = { amount = 12900, days_used = 31, days_in_period = 31 } },
  { fn = "flat", name = "start on the 17th of a 30-day month: 14 of 30 days",
    input = { price = 12900, period = { from = "2026-11-01", to = "2026-11-30" },
              active = { from = "2026-11-17", to = "2026-11-30" } },
    expect = { amount = 6020, days_used = 14, days_in_period = 30 } },
  { fn = "flat", name = "start on the 17th of a 31-day month: 15 of 31 days",
    input = { price = 12900, period = { from = "2026-12-01", to = "2026-12-31" },
              active = { from = "2026-12-17", to = "2026-12-31" } },
    expect = { amount = 6242, days_used = 15, days_in_period = 31 } },
  { fn = "flat", name = "start on 29 February of a leap year: 1 of 29 days",
    input = { price = 12900, period = { from = "2028-02-01", to = "2028-02-29" },
              active = { from = "2028-02-29", to = "2028-03-31" } },
    expect = { amount = 445, days_used = 1, days_in_period = 29 } },
  { fn = "flat", name = "service outside the period costs nothing",
    input = { price = 12900, period = { from = "2026-12-01", to = "2026-12-31" },
              active = { from = "2027-01-05", to = "2027-02-01" } },
    expect = { amount = 0, days_used = 0, days_in_period = 31 } },
  { fn = "flat", name = "a price in yuan as a float is refused",
    input = { price = 129.0, period = { from = "2026-12-01", to = "2026-12-31" } },
    expect_error = "price must be an integer count of fen" },
}

return M
