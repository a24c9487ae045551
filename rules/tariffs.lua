-- tariffs.lua: what a recurring product costs for one billing period.
--
-- Dates are "YYYY-MM-DD" strings and periods are inclusive of both ends.
-- Amounts are integer fen. A partial period is prorated by days:
-- price * days_used / days_in_period, rounded half up (monthly may say
-- otherwise).
--
-- A product names its pricing rule ("tariffs.monthly") and stores the
-- rule's parameters, which the core validates against M.schemas before it
-- keeps them (see the catalog section of RULES.md). When the rule is
-- called, the context is those parameters, with `price` set to the
-- product version's price, plus the fields of the call (period, active).
local money, date = bandbill.money, bandbill.date

local M = {}

-- The parameters each pricing function takes, for the staff console's
-- forms and for the core's validation. `price` is the product version's
-- price field.
M.schemas = {
  flat = {
    price = { type = "money", min = 0, order = 1,
              label = { zh = "价格", en = "Price" },
              help = { zh = "每个计费周期的价格，含税，单位为分；不足一期按天折算",
                       en = "Price per billing period, tax included, in fen; a partial period is prorated by days" } },
  },
  monthly = {
    price = { type = "money", min = 0, order = 1,
              label = { zh = "每期价格", en = "Price per period" },
              help = { zh = "套餐每个计费周期（月、季、半年、年）的价格，含税，单位为分",
                       en = "Price of one billing period of the plan (month, quarter, half year, year), tax included, in fen" } },
    proration = { type = "enum", values = { "daily", "full", "none" }, default = "daily", order = 2,
                  label = { zh = "不足一期", en = "Partial period" },
                  help = { zh = "daily 按天折算；full 整期收费；none 不收费",
                           en = "daily: prorated by days; full: the whole price; none: free" } },
    rounding = { type = "enum", values = { "half_up", "half_even", "down", "up" }, default = "half_up", order = 3,
                 label = { zh = "舍入方式", en = "Rounding" },
                 help = { zh = "按天折算时分以下的舍入方式",
                          en = "How a prorated amount is rounded to the fen" } },
  },
}

-- Days of `period` during which the service ran (`active` inside it), and
-- the days of the period.
local function days_used(period, active)
  local a = active or period
  local af, pf, at, pt = a.from, period.from, a.to, period.to
  local from = af > pf and af or pf
  local to = at < pt and at or pt
  local total = date.diff(pf, pt) + 1
  local used = 0
  if from <= to then used = date.diff(from, to) + 1 end
  return used, total
end

-- flat{price, period = {from, to}, active = {from, to}}
--   -> {amount, days_used, days_in_period}
-- `active` is when the service ran inside the period (defaults to all of it).
function M.flat(ctx)
  money.check(ctx.price, "price")
  local used, total = days_used(ctx.period, ctx.active)
  return {
    amount = money.prorate(ctx.price, used, total),
    days_used = used,
    days_in_period = total,
  }
end

-- monthly{price, proration?, rounding?, period = {from, to}, active = {from, to}?}
--   -> {amount, days_used, days_in_period}
-- The price of one billing period of a plan (whatever its length: the
-- period passed in is one month, quarter, half year or year). A period the
-- service ran in full costs the price; a partial one (the first or the
-- last) follows `proration`; a period it did not run in costs nothing.
function M.monthly(ctx)
  money.check(ctx.price, "price")
  local used, total = days_used(ctx.period, ctx.active)
  local how = ctx.proration or "daily"
  local amount
  if used == total then
    amount = ctx.price
  elseif used == 0 then
    amount = 0
  elseif how == "daily" then
    amount = money.prorate(ctx.price, used, total, ctx.rounding or "half_up")
  elseif how == "full" then
    amount = ctx.price
  elseif how == "none" then
    amount = 0
  else
    error("unknown proration '" .. tostring(how) .. "' (daily, full or none)")
  end
  return { amount = amount, days_used = used, days_in_period = total }
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

  -- monthly: 9900 * 22 / 31 = 7025.806... fen
  { fn = "monthly", name = "a full quarter costs the quarter's price",
    input = { price = 35700, proration = "daily", rounding = "half_up",
              period = { from = "2026-01-01", to = "2026-03-31" } },
    expect = { amount = 35700, days_used = 90, days_in_period = 90 } },
  { fn = "monthly", name = "from 10 December: 22 of 31 days, half up",
    input = { price = 9900, proration = "daily", rounding = "half_up",
              period = { from = "2026-12-01", to = "2026-12-31" },
              active = { from = "2026-12-10", to = "2026-12-31" } },
    expect = { amount = 7026, days_used = 22, days_in_period = 31 } },
  { fn = "monthly", name = "the same rounded down",
    input = { price = 9900, proration = "daily", rounding = "down",
              period = { from = "2026-12-01", to = "2026-12-31" },
              active = { from = "2026-12-10", to = "2026-12-31" } },
    expect = { amount = 7025, days_used = 22, days_in_period = 31 } },
  { fn = "monthly", name = "parameters left out: daily and half up",
    input = { price = 9900,
              period = { from = "2026-12-01", to = "2026-12-31" },
              active = { from = "2026-12-10", to = "2026-12-31" } },
    expect = { amount = 7026, days_used = 22, days_in_period = 31 } },
  { fn = "monthly", name = "half a fen, half even: 9997 * 15 / 30 = 4998.5 goes to 4998",
    input = { price = 9997, proration = "daily", rounding = "half_even",
              period = { from = "2026-11-01", to = "2026-11-30" },
              active = { from = "2026-11-16", to = "2026-11-30" } },
    expect = { amount = 4998, days_used = 15, days_in_period = 30 } },
  { fn = "monthly", name = "half a fen, half up: 4998.5 goes to 4999",
    input = { price = 9997, proration = "daily", rounding = "half_up",
              period = { from = "2026-11-01", to = "2026-11-30" },
              active = { from = "2026-11-16", to = "2026-11-30" } },
    expect = { amount = 4999, days_used = 15, days_in_period = 30 } },
  { fn = "monthly", name = "a partial period charged in full",
    input = { price = 9900, proration = "full", rounding = "half_up",
              period = { from = "2026-12-01", to = "2026-12-31" },
              active = { from = "2026-12-10", to = "2026-12-31" } },
    expect = { amount = 9900, days_used = 22, days_in_period = 31 } },
  { fn = "monthly", name = "a partial period for free",
    input = { price = 9900, proration = "none", rounding = "half_up",
              period = { from = "2026-12-01", to = "2026-12-31" },
              active = { from = "2026-12-10", to = "2026-12-31" } },
    expect = { amount = 0, days_used = 22, days_in_period = 31 } },
  { fn = "monthly", name = "a quarter from 20 February: 40 of 90 days, 1196000 / 90 = 13288.9",
    input = { price = 29900, proration = "daily", rounding = "half_up",
              period = { from = "2027-01-01", to = "2027-03-31" },
              active = { from = "2027-02-20", to = "2027-03-31" } },
    expect = { amount = 13289, days_used = 40, days_in_period = 90 } },
  { fn = "monthly", name = "a leap year ended on 30 June: 182 of 366 days",
    input = { price = 120000, proration = "daily", rounding = "half_up",
              period = { from = "2028-01-01", to = "2028-12-31" },
              active = { from = "2027-12-01", to = "2028-06-30" } },
    expect = { amount = 59672, days_used = 182, days_in_period = 366 } },
  { fn = "monthly", name = "a period without service costs nothing, even charged in full",
    input = { price = 9900, proration = "full", rounding = "half_up",
              period = { from = "2026-12-01", to = "2026-12-31" },
              active = { from = "2027-01-01", to = "2027-01-31" } },
    expect = { amount = 0, days_used = 0, days_in_period = 31 } },
  { fn = "monthly", name = "an unknown proration is an error",
    input = { price = 9900, proration = "weekly",
              period = { from = "2026-12-01", to = "2026-12-31" },
              active = { from = "2026-12-10", to = "2026-12-31" } },
    expect_error = "unknown proration 'weekly'" },
  { fn = "monthly", name = "a price in yuan as a float is refused",
    input = { price = 99.0, period = { from = "2026-12-01", to = "2026-12-31" } },
    expect_error = "price must be an integer count of fen" },
}

return M
