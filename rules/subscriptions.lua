-- subscriptions.lua: how a subscription's dates are set, whether a change to
-- it is allowed, when the change takes effect and what leaving a contract
-- early costs. The core stores and applies what these functions return;
-- the contracts are in docs/RULES.md ("Subscriptions").
--
-- Dates are "YYYY-MM-DD" strings; money is integer fen. A plan's price is
-- the price of one billing period (attrs.period: month, quarter, half_year,
-- year).
local money, date = bandbill.money, bandbill.date

local M = {}

M.period_months = { month = 1, quarter = 3, half_year = 6, year = 12 }

-- Used when a plan's attrs do not say otherwise.
M.default_billing = "postpaid"
M.default_period = "month"
-- Early-termination fee: this percentage of the plan's monthly price for
-- every whole month left in the contract (a plan may set
-- attrs.early_termination_percent, an integer).
M.early_termination_percent = 20

local function months_of(period)
  local n = M.period_months[period]
  if n == nil then error("unknown billing period '" .. tostring(period) .. "'") end
  return n
end

-- Postpaid periods are calendar blocks of n months (months, quarters
-- starting January, April, July and October, half years, years): the first
-- day of the block after the one holding d.
local function next_block_start(d, n)
  local y, m = date.ymd(d)
  local first = m - (m - 1) % n
  return date.add_months(date.make(y, first, 1), n)
end

-- The first day of the next billing period, never before today: a
-- postpaid subscription's next bill date (moved on by whole periods if
-- billing is behind); for prepaid the day after the paid-through date.
local function next_period_start(sub, today)
  local d
  if sub.billing == "prepaid" then
    d = sub.paid_through and date.add_days(sub.paid_through, 1) or sub.next_bill_date
    if d < today then d = today end
  else
    d = sub.next_bill_date
    local n, guard = months_of(sub.period), 0
    while d < today do
      d = date.add_months(d, n)
      guard = guard + 1
      if guard > 1200 then error("next_bill_date " .. sub.next_bill_date .. " is too far behind " .. today) end
    end
  end
  return d
end

-- Whole months from `from` up to the end of the contract (its last day
-- inclusive): the largest m with from + m months <= contract_end + 1 day.
local function whole_months_left(from, contract_end)
  local stop = date.add_days(contract_end, 1)
  local m = 0
  while date.add_months(from, m + 1) <= stop do m = m + 1 end
  return m
end

-- Fee for leaving the contract at `effective`: `per_period` (the plan's
-- price, or the drop in price for a downgrade) turned into a monthly amount,
-- times the whole months left, times the percentage; one rounding, half up.
local function early_fee(plan, per_period, sub, effective)
  if sub.contract_end == nil or effective > sub.contract_end or per_period <= 0 then return 0 end
  local pct = (plan.attrs and plan.attrs.early_termination_percent) or M.early_termination_percent
  local months = whole_months_left(effective, sub.contract_end)
  return money.ratio(per_period * months, pct, 100 * months_of(sub.period))
end

local function locked(plan, sub, effective)
  return plan.attrs and plan.attrs.contract_lock == true and sub.contract_end ~= nil
    and effective <= sub.contract_end
end

local function refuse(reason) return { allowed = false, reason = reason } end

local function allow(effective, fee)
  return { allowed = true, effective_date = effective, fee = fee or 0 }
end

-- Does the add-on go with the plan: attrs.fits absent or empty (any plan),
-- or listing the plan's code.
local function fits(addon, plan)
  local list = addon.attrs and addon.attrs.fits
  if list == nil or #list == 0 then return true end
  for _, code in ipairs(list) do
    if code == plan.code then return true end
  end
  return false
end

local function fit_reason(addon, plan)
  local names = {}
  for _, code in ipairs(addon.attrs.fits) do names[#names + 1] = code end
  return "add-on " .. addon.code .. " does not fit plan " .. plan.code .. " (it fits " ..
    table.concat(names, ", ") .. ")"
end

-- schedule{start_date, plan = {code, price, tax_category, attrs}}
--   -> {billing, period, contract_end?, anchor_day, next_bill_date, paid_through?}
-- Postpaid: billed on the 1st for the period just used (anchor_day 1).
-- Prepaid: the first term is billed at once (next_bill_date = start_date),
-- nothing is paid yet (paid_through = the day before the start), terms
-- renew on the start's day of the month.
function M.schedule(ctx)
  local attrs = ctx.plan.attrs or {}
  local billing = attrs.billing or M.default_billing
  local period = attrs.period or M.default_period
  if billing ~= "prepaid" and billing ~= "postpaid" then
    error("plan " .. ctx.plan.code .. ": billing must be prepaid or postpaid, not '" .. tostring(billing) .. "'")
  end
  local n = months_of(period)
  local start = ctx.start_date
  local r = { billing = billing, period = period }
  local mc = attrs.min_contract_months or 0
  if math.type(mc) ~= "integer" or mc < 0 then
    error("plan " .. ctx.plan.code .. ": min_contract_months must be a whole number of months")
  end
  if mc > 0 then r.contract_end = date.add_days(date.add_months(start, mc), -1) end
  if billing == "postpaid" then
    r.anchor_day = 1
    r.next_bill_date = next_block_start(start, n)
  else
    local _, _, day = date.ymd(start)
    r.anchor_day = day
    r.next_bill_date = start
    r.paid_through = date.add_days(start, -1)
  end
  return r
end

-- addon_fits{plan = {code, price, attrs}, addon = {code, price, attrs}}
--   -> {allowed, reason?}
function M.addon_fits(ctx)
  if fits(ctx.addon, ctx.plan) then return { allowed = true } end
  return refuse(fit_reason(ctx.addon, ctx.plan))
end

local function plan_change(ctx)
  local sub, from, to, today = ctx.subscription, ctx.from, ctx.to, ctx.today
  if sub.status ~= "active" then
    return refuse("only an active subscription can change plans; this one is " .. sub.status)
  end
  if to.code == from.code then return refuse("the subscription is already on plan " .. to.code) end
  local ta = to.attrs or {}
  local billing, period = ta.billing or M.default_billing, ta.period or M.default_period
  if billing ~= sub.billing or period ~= sub.period then
    return refuse("plan " .. to.code .. " is " .. billing .. " by the " .. period .. " and the subscription " ..
      sub.billing .. " by the " .. sub.period .. ": end it and subscribe anew instead")
  end
  for _, a in ipairs(ctx.addons or {}) do
    if not fits(a, to) then return refuse(fit_reason(a, to) .. ": remove it first") end
  end
  if ctx.kind == "upgrade" then
    if to.price <= from.price then
      return refuse(to.code .. " (" .. money.display(to.price) .. ") does not cost more than " .. from.code ..
        " (" .. money.display(from.price) .. "): that is a downgrade")
    end
    return allow(today, 0)
  end
  if to.price > from.price then
    return refuse(to.code .. " (" .. money.display(to.price) .. ") costs more than " .. from.code ..
      " (" .. money.display(from.price) .. "): that is an upgrade")
  end
  local eff = next_period_start(sub, today)
  if locked(from, sub, eff) then
    return refuse("plan " .. from.code .. " cannot be downgraded before the contract ends on " .. sub.contract_end)
  end
  return allow(eff, early_fee(from, from.price - to.price, sub, eff))
end

-- change{kind, today, subscription, from, to?, addons} -> {allowed, reason?, effective_date?, fee?}
--   upgrade       now
--   downgrade     first day of the next period; fee when inside the contract
--   suspend       now, active subscriptions only
--   resume        now, suspended subscriptions only
--   terminate     active: first day of the next period (the period runs
--                 out); suspended or not yet started: now; fee when inside
--                 the contract (none before the start)
--   addon_add     now, when the add-on fits the plan
--   addon_remove  first day of the next period
function M.change(ctx)
  local k, sub, today = ctx.kind, ctx.subscription, ctx.today
  if sub.status == "terminated" then return refuse("the subscription is terminated") end
  if k == "upgrade" or k == "downgrade" then
    return plan_change(ctx)
  elseif k == "suspend" then
    if sub.status ~= "active" then return refuse("only an active subscription can be suspended; this one is " .. sub.status) end
    return allow(today, 0)
  elseif k == "resume" then
    if sub.status ~= "suspended" then return refuse("only a suspended subscription can be resumed; this one is " .. sub.status) end
    return allow(today, 0)
  elseif k == "terminate" then
    if sub.status == "pending" then return allow(today, 0) end
    local eff = sub.status == "active" and next_period_start(sub, today) or today
    if locked(ctx.from, sub, eff) then
      return refuse("plan " .. ctx.from.code .. " cannot be ended before the contract ends on " .. sub.contract_end)
    end
    return allow(eff, early_fee(ctx.from, ctx.from.price, sub, eff))
  elseif k == "addon_add" then
    if sub.status ~= "active" then return refuse("add-ons are added to active subscriptions; this one is " .. sub.status) end
    for _, a in ipairs(ctx.addons or {}) do
      if a.code == ctx.to.code then return refuse("add-on " .. a.code .. " is already on the subscription") end
    end
    if not fits(ctx.to, ctx.from) then return refuse(fit_reason(ctx.to, ctx.from)) end
    return allow(today, 0)
  elseif k == "addon_remove" then
    for _, a in ipairs(ctx.addons or {}) do
      if a.code == ctx.to.code then return allow(next_period_start(sub, today), 0) end
    end
    return refuse("add-on " .. ctx.to.code .. " is not on the subscription")
  end
  error("unknown change kind '" .. tostring(k) .. "'")
end

-- ------------------------------------------------------------------ examples

local FIBER100 = { code = "FIBER100", price = 9900, tax_category = "internet",
                   attrs = { period = "month", billing = "postpaid", min_contract_months = 12 } }
local FIBER300 = { code = "FIBER300", price = 12998, tax_category = "internet",
                   attrs = { period = "month", billing = "postpaid", min_contract_months = 12 } }
local FIBER500 = { code = "FIBER500", price = 19900, tax_category = "internet",
                   attrs = { period = "month", billing = "postpaid", min_contract_months = 12 } }
local LOCKED = { code = "GOV1000", price = 19900, tax_category = "internet",
                 attrs = { period = "month", billing = "postpaid", contract_lock = true } }
local IPTV = { code = "IPTV", price = 1500, tax_category = "internet",
               attrs = { fits = { "FIBER300", "FIBER500" } } }

-- postpaid, monthly, 24-month contract from 2026-01-15
local SUB = { start_date = "2026-01-15", contract_end = "2028-01-14", status = "active", period = "month",
              billing = "postpaid", anchor_day = 1, next_bill_date = "2026-12-01" }

M.examples = {
  { fn = "schedule", name = "postpaid monthly with a 12-month contract",
    input = { start_date = "2026-11-17", plan = FIBER300 },
    expect = { billing = "postpaid", period = "month", contract_end = "2027-11-16", anchor_day = 1,
               next_bill_date = "2026-12-01" } },
  { fn = "schedule", name = "prepaid: the first term is billed at once, nothing paid yet",
    input = { start_date = "2026-01-31", plan = { code = "PRE100", price = 29700,
              attrs = { period = "quarter", billing = "prepaid" } } },
    expect = { billing = "prepaid", period = "quarter", anchor_day = 31, next_bill_date = "2026-01-31",
               paid_through = "2026-01-30" } },
  { fn = "schedule", name = "postpaid quarters are calendar quarters",
    input = { start_date = "2026-11-17", plan = { code = "Q", price = 29900, attrs = { period = "quarter" } } },
    expect = { billing = "postpaid", period = "quarter", anchor_day = 1, next_bill_date = "2027-01-01" } },
  { fn = "schedule", name = "a one-month contract from 31 January ends 27 February (add_months clamps)",
    input = { start_date = "2026-01-31", plan = { code = "M1", price = 100, attrs = { min_contract_months = 1 } } },
    expect = { billing = "postpaid", period = "month", contract_end = "2026-02-27", anchor_day = 1,
               next_bill_date = "2026-02-01" } },
  { fn = "schedule", name = "an unknown period is an error",
    input = { start_date = "2026-11-17", plan = { code = "X", price = 100, attrs = { period = "week" } } },
    expect_error = "unknown billing period 'week'" },

  { fn = "change", name = "an upgrade takes effect today",
    input = { kind = "upgrade", today = "2026-11-20", subscription = SUB, from = FIBER300, to = FIBER500, addons = {} },
    expect = { allowed = true, effective_date = "2026-11-20", fee = 0 } },
  { fn = "change", name = "a cheaper plan is not an upgrade",
    input = { kind = "upgrade", today = "2026-11-20", subscription = SUB, from = FIBER300, to = FIBER100, addons = {} },
    expect = { allowed = false,
               reason = "FIBER100 (¥99.00) does not cost more than FIBER300 (¥129.98): that is a downgrade" } },
  { fn = "change", name = "a downgrade waits for the next period; 13 months x (129.98 - 99.00) x 20% = 80.548, half up 80.55",
    input = { kind = "downgrade", today = "2026-11-20", subscription = SUB, from = FIBER300, to = FIBER100, addons = {} },
    expect = { allowed = true, effective_date = "2026-12-01", fee = 8055 } },
  { fn = "change", name = "termination at period end: 13 months x 129.98 x 20% = 337.948, half up 337.95",
    input = { kind = "terminate", today = "2026-11-20", subscription = SUB, from = FIBER300, addons = {} },
    expect = { allowed = true, effective_date = "2026-12-01", fee = 33795 } },
  { fn = "change", name = "a quarterly plan: 5 whole months x 299.00 / 3 x 20% = 99.666..., half up 99.67",
    input = { kind = "terminate", today = "2026-06-10",
              subscription = { start_date = "2026-01-01", contract_end = "2026-11-30", status = "active",
                               period = "quarter", billing = "postpaid", anchor_day = 1, next_bill_date = "2026-07-01" },
              from = { code = "Q", price = 29900, tax_category = "internet", attrs = { period = "quarter" } },
              addons = {} },
    expect = { allowed = true, effective_date = "2026-07-01", fee = 9967 } },
  { fn = "change", name = "after the contract a termination is free",
    input = { kind = "terminate", today = "2028-03-05",
              subscription = { start_date = "2026-01-15", contract_end = "2028-01-14", status = "active",
                               period = "month", billing = "postpaid", anchor_day = 1, next_bill_date = "2028-04-01" },
              from = FIBER300, addons = {} },
    expect = { allowed = true, effective_date = "2028-04-01", fee = 0 } },
  { fn = "change", name = "a prepaid downgrade starts the day after the paid-through date",
    input = { kind = "downgrade", today = "2026-11-20",
              subscription = { start_date = "2026-10-05", status = "active", period = "month", billing = "prepaid",
                               anchor_day = 5, next_bill_date = "2026-12-05", paid_through = "2026-12-04" },
              from = { code = "P2", price = 10000, attrs = { billing = "prepaid" } },
              to = { code = "P1", price = 5000, attrs = { billing = "prepaid" } }, addons = {} },
    expect = { allowed = true, effective_date = "2026-12-05", fee = 0 } },
  { fn = "change", name = "a contract lock refuses leaving early",
    input = { kind = "terminate", today = "2026-11-20",
              subscription = { start_date = "2026-01-15", contract_end = "2027-01-14", status = "active",
                               period = "month", billing = "postpaid", anchor_day = 1, next_bill_date = "2026-12-01" },
              from = LOCKED, addons = {} },
    expect = { allowed = false, reason = "plan GOV1000 cannot be ended before the contract ends on 2027-01-14" } },
  { fn = "change", name = "an add-on that does not fit the plan is refused",
    input = { kind = "addon_add", today = "2026-11-20", subscription = SUB, from = FIBER100, to = IPTV, addons = {} },
    expect = { allowed = false, reason = "add-on IPTV does not fit plan FIBER100 (it fits FIBER300, FIBER500)" } },
  { fn = "change", name = "an add-on that fits starts today",
    input = { kind = "addon_add", today = "2026-11-20", subscription = SUB, from = FIBER300, to = IPTV, addons = {} },
    expect = { allowed = true, effective_date = "2026-11-20", fee = 0 } },
  { fn = "change", name = "a plan change that would strand an add-on is refused",
    input = { kind = "downgrade", today = "2026-11-20", subscription = SUB, from = FIBER300, to = FIBER100,
              addons = { IPTV } },
    expect = { allowed = false,
               reason = "add-on IPTV does not fit plan FIBER100 (it fits FIBER300, FIBER500): remove it first" } },
  { fn = "change", name = "an add-on is removed at the end of the period",
    input = { kind = "addon_remove", today = "2026-11-20", subscription = SUB, from = FIBER300, to = IPTV,
              addons = { IPTV } },
    expect = { allowed = true, effective_date = "2026-12-01", fee = 0 } },
  { fn = "change", name = "suspend an active subscription today",
    input = { kind = "suspend", today = "2026-11-20", subscription = SUB, from = FIBER300, addons = {} },
    expect = { allowed = true, effective_date = "2026-11-20", fee = 0 } },
  { fn = "change", name = "resume only what is suspended",
    input = { kind = "resume", today = "2026-11-20", subscription = SUB, from = FIBER300, addons = {} },
    expect = { allowed = false, reason = "only a suspended subscription can be resumed; this one is active" } },
  { fn = "addon_fits", name = "an add-on without a fits list goes with any plan",
    input = { plan = FIBER100, addon = { code = "STATICIP", price = 2000, attrs = {} } },
    expect = { allowed = true } },
}

return M
