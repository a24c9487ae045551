-- promotions.lua: what a promotion takes off one line of a bill.
--
-- A promotion product (first-year discount, loyalty discount, bundle
-- discount, coupon) names one of these functions as its pricing rule and
-- stores its parameters (validated against M.schemas). What it applies to
-- (which kind of line, which products, the coupon code) is in the
-- product's attributes; the billing run calls the rule once per line the
-- promotion applies to, with the context:
--
--   base        fen: the line's amount before the discount (for the days
--               of the period the service ran, as the tariff computed it)
--   period      {from, to}: the billing period of the line (inclusive)
--   active      {from, to}: when the service ran inside it (default: all
--               of it): `base` covers those days
--   start_date  the first day of the subscription (months are counted from it)
--   ...         the promotion's parameters (and `price`, the product's price)
--
-- and takes {discount = fen, ...}: 0 <= discount <= base. Rounding is half
-- up: the share of the base for the discounted days first (prorated by
-- days), then the percentage of it.
local money, date = bandbill.money, bandbill.date

local M = {}

local percent_field = {
  type = "percent", min = 1, max = 100, order = 1,
  label = { zh = "折扣（减免百分比）", en = "Percent off" },
  help = { zh = "减免的百分比，整数或小数字符串，如 20 或 \"8.5\"",
           en = "Percentage taken off, an integer or a decimal string such as 20 or \"8.5\"" },
}

M.schemas = {
  percent_off = {
    percent = percent_field,
    months = { type = "integer", min = 1, max = 120, required = false, order = 2,
               label = { zh = "优惠月数", en = "Months" },
               help = { zh = "从开通之日起享受优惠的月数；不填则一直享受",
                        en = "Months from the start of the subscription the discount lasts; empty: as long as it runs" } },
  },
  first_year = {
    percent = percent_field,
  },
  tag_price = {
    price = { type = "money", min = 0, order = 1,
              label = { zh = "专享价", en = "Tag price" },
              help = { zh = "该标签客户每个计费周期的价格，含税，单位为分；不足一期按天折算",
                       en = "The price per billing period for customers with the tag, tax included, in fen; prorated by days" } },
  },
  fixed_off = {
    amount = { type = "money", min = 1, order = 1,
               label = { zh = "减免金额", en = "Amount off" },
               help = { zh = "每个计费周期减免的金额，单位为分，不超过该项费用",
                        en = "Taken off each billing period's line, in fen, never more than the line" } },
  },
}

-- Days from a to b inclusive that also lie in [from, to] (0 if none).
local function overlap(a_from, a_to, from, to)
  local f = a_from > from and a_from or from
  local t = a_to < to and a_to or to
  if f > t then return 0 end
  return date.diff(f, t) + 1
end

-- `percent` off the days of the line that fall in the first `months`
-- months of the subscription (every day from its start when months is nil).
local function windowed(ctx, percent, months)
  money.check(ctx.base, "base")
  local p = ctx.period
  local a = ctx.active or p
  local af, pf, at, pt = a.from, p.from, a.to, p.to
  -- the days the base pays for
  local from = af > pf and af or pf
  local to = at < pt and at or pt
  local billed = overlap(from, to, from, to)
  if billed == 0 then
    return { discount = 0, days_discounted = 0, days_billed = 0 }
  end
  local w_from, w_to = from, to
  if ctx.start_date ~= nil then
    w_from = ctx.start_date
  elseif months ~= nil then
    error("start_date is needed to count the months of the offer")
  end
  if months ~= nil then
    -- the offer ends the day before the same day `months` months later
    w_to = date.add_days(date.add_months(ctx.start_date, months), -1)
  end
  local days = overlap(from, to, w_from, w_to)
  local share = money.prorate(ctx.base, days, billed)
  return { discount = money.percent(share, percent), days_discounted = days, days_billed = billed }
end

-- percent_off{base, period, active?, start_date?, percent, months?}
--   -> {discount, days_discounted, days_billed}
function M.percent_off(ctx)
  return windowed(ctx, ctx.percent, ctx.months)
end

-- first_year{base, period, active?, start_date, percent}
--   -> {discount, days_discounted, days_billed}
-- percent off for the first 12 months of the subscription.
function M.first_year(ctx)
  if ctx.start_date == nil then error("start_date is needed to know the first year") end
  return windowed(ctx, ctx.percent, 12)
end

-- fixed_off{base, amount} -> {discount}
-- a fixed amount off each line, never more than the line.
function M.fixed_off(ctx)
  money.check(ctx.base, "base")
  money.check(ctx.amount, "amount")
  local d = ctx.amount
  if d > ctx.base then d = ctx.base end
  if d < 0 then d = 0 end
  return { discount = d }
end

-- tag_price{base, period, active?, active_days?, price}
--   -> {discount, tag_amount, days_used, days_in_period}
-- A special price for customers with a tag (new user, VIP, staff): the
-- line costs no more than `price` for the same days (prorated by days, half
-- up); the discount is what the line costs above that, never below 0.
-- `active_days`, when given, is how many days of `active` the base pays
-- for (fewer when days in the middle were given back, a suspension).
function M.tag_price(ctx)
  money.check(ctx.base, "base")
  money.check(ctx.price, "price")
  local p = ctx.period
  local a = ctx.active or p
  local af, pf, at, pt = a.from, p.from, a.to, p.to
  local from = af > pf and af or pf
  local to = at < pt and at or pt
  local total = date.diff(pf, pt) + 1
  local used = overlap(from, to, from, to)
  if ctx.active_days ~= nil and ctx.active_days < used then used = ctx.active_days end
  local tagged = money.prorate(ctx.price, used, total)
  local d = ctx.base - tagged
  if d < 0 then d = 0 end
  return { discount = d, tag_amount = tagged, days_used = used, days_in_period = total }
end

local dec = { from = "2026-12-01", to = "2026-12-31" }

M.examples = {
  { fn = "percent_off", name = "20% off a 129.00 month inside the first 6 months",
    input = { base = 12900, period = { from = "2026-05-01", to = "2026-05-31" },
              start_date = "2026-03-01", percent = 20, months = 6 },
    expect = { discount = 2580, days_discounted = 31, days_billed = 31 } },
  { fn = "percent_off", name = "the month after a 6-month offer (to 31 August) pays in full",
    input = { base = 12900, period = { from = "2026-09-01", to = "2026-09-30" },
              start_date = "2026-03-01", percent = 20, months = 6 },
    expect = { discount = 0, days_discounted = 0, days_billed = 30 } },
  { fn = "percent_off", name = "an offer ending on 14 September: 20% of 14/30 of 129.00 = 20% of 60.20",
    input = { base = 12900, period = { from = "2026-09-01", to = "2026-09-30" },
              start_date = "2026-03-15", percent = 20, months = 6 },
    expect = { discount = 1204, days_discounted = 14, days_billed = 30 } },
  { fn = "percent_off", name = "8.5% for as long as it runs: 1096.5 fen rounds up",
    input = { base = 12900, period = dec, start_date = "2026-01-10", percent = "8.5" },
    expect = { discount = 1097, days_discounted = 31, days_billed = 31 } },
  { fn = "percent_off", name = "service from the 17th: the base covers 14 days, all discounted",
    input = { base = 6020, period = { from = "2026-11-01", to = "2026-11-30" },
              active = { from = "2026-11-17", to = "2026-11-30" },
              start_date = "2026-11-17", percent = 20, months = 3 },
    expect = { discount = 1204, days_discounted = 14, days_billed = 14 } },
  { fn = "percent_off", name = "months without a start date is an error",
    input = { base = 12900, period = dec, percent = 20, months = 6 },
    expect_error = "start_date is needed" },

  { fn = "first_year", name = "15% off a month of the first year",
    input = { base = 12900, period = dec, start_date = "2026-01-01", percent = 15 },
    expect = { discount = 1935, days_discounted = 31, days_billed = 31 } },
  { fn = "first_year", name = "the 13th month pays in full",
    input = { base = 12900, period = { from = "2027-01-01", to = "2027-01-31" },
              start_date = "2026-01-01", percent = 15 },
    expect = { discount = 0, days_discounted = 0, days_billed = 31 } },
  { fn = "first_year", name = "anniversary on 20 January: 19 of 31 days, 15% of 79.06",
    input = { base = 12900, period = { from = "2027-01-01", to = "2027-01-31" },
              start_date = "2026-01-20", percent = 15 },
    expect = { discount = 1186, days_discounted = 19, days_billed = 31 } },
  { fn = "first_year", name = "a yearly plan's first year",
    input = { base = 120000, period = { from = "2026-03-01", to = "2027-02-28" },
              start_date = "2026-03-01", percent = 15 },
    expect = { discount = 18000, days_discounted = 365, days_billed = 365 } },
  { fn = "first_year", name = "started on 29 February: the first year ends on 27 February 2029",
    input = { base = 9900, period = { from = "2029-02-01", to = "2029-02-28" },
              start_date = "2028-02-29", percent = 15 },
    expect = { discount = 1432, days_discounted = 27, days_billed = 28 } },
  { fn = "first_year", name = "no start date is an error",
    input = { base = 12900, period = dec, percent = 15 },
    expect_error = "start_date is needed" },

  { fn = "tag_price", name = "a VIP price of 99.00 on a 129.00 month takes off 30.00",
    input = { base = 12900, period = dec, price = 9900 },
    expect = { discount = 3000, tag_amount = 9900, days_used = 31, days_in_period = 31 } },
  { fn = "tag_price", name = "14 of 30 days: 99.00 x 14 / 30 = 46.20 against 60.20",
    input = { base = 6020, period = { from = "2026-11-01", to = "2026-11-30" },
              active = { from = "2026-11-17", to = "2026-11-30" }, price = 9900 },
    expect = { discount = 1400, tag_amount = 4620, days_used = 14, days_in_period = 30 } },
  { fn = "tag_price", name = "a line already below the tag price keeps its price",
    input = { base = 8000, period = dec, price = 9900 },
    expect = { discount = 0, tag_amount = 9900, days_used = 31, days_in_period = 31 } },
  { fn = "fixed_off", name = "10.00 off a 129.00 line",
    input = { base = 12900, amount = 1000 },
    expect = { discount = 1000 } },
  { fn = "fixed_off", name = "never more than the line",
    input = { base = 600, amount = 1000 },
    expect = { discount = 600 } },
  { fn = "fixed_off", name = "an amount in yuan as a float is refused",
    input = { base = 12900, amount = 10.5 },
    expect_error = "amount must be an integer count of fen" },
}

return M
