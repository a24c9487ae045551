-- billing.lua: when a subscription is billed, and what its bill holds.
--
-- The core calls M.schedule to learn which period a subscription's next bill
-- covers, then calls every step of M.steps in order. Each step gets the
-- read-only context of the bill (the customer, the subscription, the plan
-- and add-on versions in force, the period, pending charges, deposits,
-- promotions, the balance) plus `ctx.lines`, the lines made so far, and
-- returns the lines it adds and, for the tax step, the tax of each line.
-- The core checks every line before anything is written; a step that
-- returns a float, a string where money is due, a negative amount where
-- none is allowed or nothing at all refuses that customer's bill with the
-- step, this file's line and the path of the bad part. Contracts: the
-- billing section of RULES.md.
--
-- Reorder, remove or add steps by editing M.steps: a name is a function of
-- this file ("recurring") or "module.function" of another file.
local money, date = bandbill.money, bandbill.date

local M = {}

M.steps = { "recurring", "addons", "one_time", "proration", "promotions", "tag_prices", "deposits", "tax", "credit" }

-- Prepaid terms are billed this many days before they start.
M.prepaid_days_before = 7
-- A postpaid bill is due this many days after it is issued.
M.postpaid_due_days = 15
-- Days a subscription was suspended cost nothing.
M.suspended_days_free = true

M.period_months = { month = 1, quarter = 3, half_year = 6, year = 12 }

local function months_of(period)
  local n = M.period_months[period]
  if n == nil then error("unknown billing period '" .. tostring(period) .. "'") end
  return n
end

local function min_date(a, b) if b ~= nil and b < a then return b end return a end
local function max_date(a, b) if b ~= nil and b > a then return b end return a end

-- The first day of the calendar block of n months (months; quarters from
-- January, April, July, October; half years; years) holding d.
local function block_start(d, n)
  local y, m = date.ymd(d)
  return date.make(y, m - (m - 1) % n, 1)
end

-- The day n months after `from` that falls on the anchor day (clamped to the
-- end of a shorter month): terms of a subscription started on the 31st
-- start on the 31st, 28th/29th, 31st, 30th, ...
local function anchored(from, n, anchor)
  local y, m = date.ymd(from)
  local ty, tm = date.ymd(date.add_months(date.make(y, m, 1), n))
  local dim = date.days_in_month(ty, tm)
  return date.make(ty, tm, anchor < dim and anchor or dim)
end

-- schedule{subscription = {id, billing, period, start_date, end_date?, contract_end?,
--          anchor_day, billed_through?, paid_through?, next_bill_date, status}, as_of}
--   -> {period = {from, to}, issue_date, due_date, next_bill_date, billed_through}
-- Postpaid: the calendar block that ends the day before next_bill_date, in
-- arrears. Prepaid: the term after billed_through (the first from the start
-- date), billed M.prepaid_days_before days before it starts.
function M.schedule(ctx)
  local sub = ctx.subscription
  local n = months_of(sub.period)
  if sub.billing == "postpaid" then
    local to = date.add_days(sub.next_bill_date, -1)
    return {
      period = { from = block_start(to, n), to = to },
      issue_date = ctx.as_of,
      due_date = date.add_days(ctx.as_of, M.postpaid_due_days),
      next_bill_date = date.add_months(block_start(sub.next_bill_date, n), n),
      billed_through = min_date(to, sub.end_date),
    }
  elseif sub.billing == "prepaid" then
    -- the first day not billed yet: after the last bill, else after what was
    -- paid before billing took over (paid_through), else the start
    local last = sub.billed_through or sub.paid_through
    local from = last and date.add_days(last, 1) or sub.start_date
    if from < sub.start_date then from = sub.start_date end
    local next_start = anchored(from, n, sub.anchor_day)
    local to = date.add_days(next_start, -1)
    return {
      period = { from = from, to = to },
      issue_date = ctx.as_of,
      due_date = max_date(from, ctx.as_of),
      next_bill_date = date.add_days(next_start, -M.prepaid_days_before),
      billed_through = min_date(to, sub.end_date),
    }
  end
  error("unknown billing '" .. tostring(sub.billing) .. "' (prepaid or postpaid)")
end

-- ------------------------------------------------------------------ helpers

-- The function each rule name ("tariffs.monthly") names, looked up once:
-- every bill prices the same few products. A memo, not state between
-- calls: modules never change once loaded, so any copy of the rules finds
-- the same functions whatever it was called for before.
local rule_fns = {}

-- A product version's price for `active` days of `period`, by its own
-- pricing rule ("tariffs.monthly"), tax included.
local function price_of(item, period, active)
  local rule = item.rule
  local f = rule_fns[rule]
  if f == nil then
    local mod, fn = string.match(rule, "^(.+)%.([%w_]+)$")
    if mod == nil then error("product " .. item.code .. ": rule '" .. tostring(rule) .. "' is not module.function") end
    f = require(mod)[fn]
    if type(f) ~= "function" then error("product " .. item.code .. ": no pricing function " .. rule) end
    rule_fns[rule] = f
  end
  local c = bandbill.copy(item.params or {})
  c.price, c.period, c.active = item.price, period, active
  local r = f(c)
  local amount = money.check(r.amount, rule .. " amount")
  if item.price_includes_tax == false and amount ~= 0 then
    -- a price quoted net of tax: the bill carries gross amounts
    amount = require("tax").on_net({ net = amount, category = item.tax_category }).gross
  end
  return amount, r
end

local function span(a) return a.from .. " to " .. a.to end

local function days(a) return date.diff(a.from, a.to) + 1 end

-- ------------------------------------------------------------------ steps

-- recurring: the plan for the days of the period the subscription ran.
function M.recurring(ctx)
  local p, a = ctx.plan, ctx.active
  local amount, r = price_of(p, ctx.period, a)
  return { lines = { {
    kind = "recurring", description = p.name .. ", " .. span(a), amount = amount,
    tax_category = p.tax_category, product = p.code, version = p.version,
    period = { from = a.from, to = a.to },
    detail = { rule = p.rule, days_used = r.days_used, days_in_period = r.days_in_period },
  } } }
end

-- addons: each add-on for its own days inside the period, times its quantity.
function M.addons(ctx)
  local out = {}
  local addons, period = ctx.addons, ctx.period
  for i = 1, #addons do
    local x = addons[i]
    local a = { from = x.from, to = x.to }
    local unit, r = price_of(x, period, a)
    out[#out + 1] = {
      kind = "addon", description = x.name .. ", " .. span(a), quantity = x.quantity, unit_price = unit,
      amount = unit * x.quantity, tax_category = x.tax_category, product = x.code, version = x.version,
      period = a, detail = { rule = x.rule, days_used = r.days_used, days_in_period = r.days_in_period },
    }
  end
  return { lines = out }
end

-- one_time: every charge waiting for a bill.
function M.one_time(ctx)
  local out = {}
  local charges = ctx.charges
  for i = 1, #charges do
    local c = charges[i]
    out[#out + 1] = {
      kind = "one_time", description = c.description, quantity = c.quantity, unit_price = c.unit_price,
      amount = c.quantity * c.unit_price, tax_category = c.tax_category, product = c.product, charge = c.id,
      detail = { source = c.source, created_at = c.created_at },
    }
  end
  return { lines = out }
end

local function is_plan_change(ch)
  return (ch.kind == "upgrade" or ch.kind == "downgrade") and ch.from ~= nil and ch.to ~= nil
end

-- The plan in force on day d: the plan at the start of the period, moved on
-- by each plan change that took effect on or before d. For a day before the
-- period (a change not billed yet inside the last billed period): the plan
-- the first later change moved from, else the last earlier one moved to.
local function plan_on(ctx, d)
  local changes = ctx.changes
  if d < ctx.period.from then
    local p
    for i = 1, #changes do
      local ch = changes[i]
      if is_plan_change(ch) then
        if ch.effective_date <= d then p = ch.to
        else return ch.from end
      end
    end
    return p or ctx.plan
  end
  local p = ctx.plan
  for i = 1, #changes do
    local ch = changes[i]
    if (ch.kind == "upgrade" or ch.kind == "downgrade") and ch.effective_date > ctx.period.from
      and ch.effective_date <= d and ch.to ~= nil then
      p = ch.to
    end
  end
  return p
end

-- The whole billing period of the last bill (ctx.previous holds the days it
-- billed): its calendar block (postpaid) or its term (prepaid), so that
-- days given back or charged inside it are priced as that bill priced them.
-- nil when there is no earlier bill.
local function previous_period(ctx)
  local pv, sub = ctx.previous, ctx.subscription
  if pv == nil or sub == nil or pv.to >= ctx.period.from then return nil end
  local n = months_of(sub.period)
  if sub.billing == "prepaid" then
    return { from = pv.from, to = date.add_days(anchored(pv.from, n, sub.anchor_day), -1) }
  end
  local from = block_start(pv.from, n)
  return { from = from, to = date.add_days(date.add_months(from, n), -1) }
end

-- proration: a plan change inside the period gives back the old plan from
-- the day it took effect to the end of the service in the period and
-- charges the new plan for the same days (the recurring line billed the
-- plan in force at the start of the period for all of them). A change that
-- took effect inside the last billed period and is not on a bill yet (a
-- prepaid term is billed before it runs) does the same for the rest of that
-- period, priced against it. Suspended days are given back when
-- M.suspended_days_free, in this period and in the last billed one.
function M.proration(ctx)
  local out, a = {}, ctx.active
  local prev = previous_period(ctx)
  local changes = ctx.changes
  for i = 1, #changes do
    local ch = changes[i]
    local eff = ch.effective_date
    local r, per
    if is_plan_change(ch) and eff > ctx.period.from and eff <= a.to then
      r, per = { from = max_date(eff, a.from), to = a.to }, ctx.period
    elseif is_plan_change(ch) and prev ~= nil and eff >= ctx.previous.from and eff <= ctx.previous.to then
      r, per = { from = eff, to = ctx.previous.to }, prev
    end
    if r ~= nil then
      local old = price_of(ch.from, per, r)
      local new = price_of(ch.to, per, r)
      out[#out + 1] = {
        kind = "proration", description = ch.from.name .. " not used, " .. span(r) .. " (" .. ch.kind .. ")",
        amount = -old, tax_category = ch.from.tax_category, product = ch.from.code, version = ch.from.version,
        period = r, detail = { change = ch.id, days = days(r) },
      }
      out[#out + 1] = {
        kind = "proration", description = ch.to.name .. ", " .. span(r) .. " (" .. ch.kind .. ")",
        amount = new, tax_category = ch.to.tax_category, product = ch.to.code, version = ch.to.version,
        period = r, detail = { change = ch.id, days = days(r) },
      }
    end
  end
  if not M.suspended_days_free then return { lines = out } end
  -- suspended stretches inside the service days: from a suspend (or the
  -- start of the period, if the period opens suspended) to the day before
  -- the next resume (or the end of the service days)
  -- suspended since before the period: free from its first day
  local from = ctx.subscription.suspended_since and a.from or nil
  local function give_back_in(f, t, per, within)
    local r = { from = max_date(f, within.from), to = min_date(t, within.to) }
    if r.from > r.to then return end
    local p = plan_on(ctx, r.from)
    local amount = price_of(p, per, r)
    if amount ~= 0 then
      out[#out + 1] = {
        kind = "proration", description = p.name .. " suspended, " .. span(r), amount = -amount,
        tax_category = p.tax_category, product = p.code, version = p.version, period = r,
        detail = { suspended_days = days(r) },
      }
    end
  end
  -- a stretch that ended (resumed) gives back its days in the last billed
  -- period too; one still running gives back this period's days only (the
  -- bill cannot go below zero)
  local function give_back(f, t, ended)
    if ended and prev ~= nil then give_back_in(f, t, prev, ctx.previous) end
    give_back_in(f, t, ctx.period, a)
  end
  for i = 1, #changes do
    local ch = changes[i]
    if ch.kind == "suspend" then
      from = ch.effective_date
    elseif ch.kind == "resume" then
      if from ~= nil then give_back(from, date.add_days(ch.effective_date, -1), true) end
      from = nil
    end
  end
  if from ~= nil then give_back(from, a.to, false) end
  return { lines = out }
end

local base_kinds = { plan = { recurring = true, proration = true }, addon = { addon = true }, fee = { one_time = true },
                     any = { recurring = true, proration = true, addon = true, one_time = true } }

local function listed(list, code)
  if list == nil or #list == 0 then return true end
  for _, c in ipairs(list) do if c == code then return true end end
  return false
end

-- Does the subscription carry every product a bundle requires?
local function has_all(ctx, codes)
  for _, want in ipairs(codes or {}) do
    local ok = ctx.plan.code == want
    local addons = ctx.addons
    for k = 1, #addons do if addons[k].code == want then ok = true end end
    if not ok then return false end
  end
  return true
end

-- What a line charges once the credits for the same product are taken off
-- (days suspended, the old plan's unused days): a discount is a share of
-- what the customer pays for, not of a charge given back. `lines` is
-- ctx.lines as a plain table (bandbill.copy): the steps below walk it many
-- times, and a plain table is read without a call into the core.
local function net_of(lines, l)
  local net = l.amount
  for i = 1, #lines do
    local x = lines[i]
    if x.kind == "proration" and x.amount < 0 and x.product == l.product and x.index > l.index then
      net = net + x.amount
    end
  end
  if net < 0 then net = 0 end
  return net
end

-- The lines a promotion applies to: lines of the kinds it names, of its
-- products when it lists some, that still charge something; each with its
-- base (net_of). `at` is the promotion's attrs (or {}).
local function targets(lines, at)
  local kinds = base_kinds[at.applies_to or "plan"] or base_kinds.plan
  local products = at.products
  local out = {}
  for i = 1, #lines do
    local l = lines[i]
    if kinds[l.kind] and l.amount > 0 and listed(products, l.product) then
      local base = net_of(lines, l)
      if base > 0 then out[#out + 1] = { line = l, base = base } end
    end
  end
  return out
end

local function call_promo(promo, c)
  local rule = promo.rule
  local f = rule_fns[rule]
  if f == nil then
    local mod, fn = string.match(rule, "^(.+)%.([%w_]+)$")
    if mod == nil then error("promotion " .. promo.code .. ": rule '" .. tostring(rule) .. "' is not module.function") end
    f = require(mod)[fn]
    if type(f) ~= "function" then error("promotion " .. promo.code .. ": no function " .. rule) end
    rule_fns[rule] = f
  end
  local r = f(c)
  return money.check(r.discount, rule .. " discount"), r
end

-- The days of line l a discount works on: its period less the days that
-- credits for the same product gave back (net_of takes their money off the
-- base, so the days go too: a tag price is then prorated over the days the
-- customer still pays for). Several stretches left (a suspension in the
-- middle): from the first day left to the last, and the number of days
-- left as a second result.
local function covered(lines, l)
  if l.period == nil then return nil, nil end
  local left = { { from = l.period.from, to = l.period.to } }
  for i = 1, #lines do
    local x = lines[i]
    if x.kind == "proration" and x.amount < 0 and x.product == l.product and x.index > l.index and x.period ~= nil then
      local keep = {}
      for k = 1, #left do
        local r = left[k]
        if x.period.to < r.from or x.period.from > r.to then
          keep[#keep + 1] = r
        else
          if x.period.from > r.from then keep[#keep + 1] = { from = r.from, to = date.add_days(x.period.from, -1) } end
          if x.period.to < r.to then keep[#keep + 1] = { from = date.add_days(x.period.to, 1), to = r.to } end
        end
      end
      left = keep
    end
  end
  if #left == 0 then return l.period, nil end
  local n = 0
  for i = 1, #left do n = n + days(left[i]) end
  return { from = left[1].from, to = left[#left].to }, n
end

local function promo_ctx(ctx, promo, l, base, lines)
  local c = bandbill.copy(promo.params or {})
  c.base, c.price, c.period = base, promo.price, ctx.period
  local span, n
  if lines ~= nil then span, n = covered(lines, l) end
  c.active = span or l.period or ctx.active
  if span ~= nil and n < days(span) then c.active_days = n end
  c.start_date = ctx.subscription.start_date
  return c
end

-- promotions: first-year, loyalty, bundle and coupon discounts (a coupon
-- only when attached to the subscription) for which the customer
-- qualifies. Stackable promotions all apply; of the others only the one
-- worth most to the customer.
function M.promotions(ctx)
  local kinds = { first_year = true, loyalty = true, bundle = true, coupon = true }
  -- the lines as a plain table, made once some promotion applies
  local all
  local stack, best, best_total, best_lines, others = {}, nil, 0, nil, {}
  local promos = ctx.promotions
  for i = 1, #promos do
    local promo = promos[i]
    local at = promo.attrs or {}
    local promo_type = at.promo_type
    local ok = kinds[promo_type] ~= nil
      and (promo_type ~= "coupon" or promo.attached)
      and ctx.customer.tenure_months >= (at.min_tenure_months or 0)
      and has_all(ctx, at.requires)
    if ok then
      all = all or bandbill.copy(ctx.lines)
      local lines, total = {}, 0
      local ts = targets(all, at)
      for k = 1, #ts do
        local t = ts[k]
        local l = t.line
        local d, r = call_promo(promo, promo_ctx(ctx, promo, l, t.base, all))
        if d > t.base then d = t.base end
        if d > 0 then
          total = total + d
          lines[#lines + 1] = {
            kind = "discount", description = promo.name .. " on " .. l.description, amount = -d,
            tax_category = l.tax_category, product = promo.code, version = promo.version, period = l.period,
            detail = { line = l.index, promotion = promo.code, rule = promo.rule,
                       days_discounted = r.days_discounted, days_billed = r.days_billed },
          }
        end
      end
      if total > 0 then
        if at.stackable then
          for k = 1, #lines do stack[#stack + 1] = lines[k] end
        elseif total > best_total then
          if best ~= nil then others[#others + 1] = best.code end
          best, best_total, best_lines = promo, total, lines
        else
          others[#others + 1] = promo.code
        end
      end
    end
  end
  local out = {}
  if best ~= nil then
    for i = 1, #best_lines do
      local x = best_lines[i]
      if #others > 0 then x.detail.beats = others end
      out[#out + 1] = x
    end
  end
  for i = 1, #stack do out[#out + 1] = stack[i] end
  return { lines = out }
end

-- tag_prices: special prices for customers with a tag (new users, VIP,
-- staff), each a promotion of promo_type tag_price sold only to that tag.
-- Where several apply to a line, the lowest price wins and the line says
-- why. The price is a ceiling: a line already discounted below it stays.
function M.tag_prices(ctx)
  local out = {}
  -- the lines as a plain table, made only when some tag price applies
  local all
  -- each tag price's lines and their bases, once: {promo, {[index] = base}}
  local offers = {}
  local promos = ctx.promotions
  for i = 1, #promos do
    local promo = promos[i]
    local at = promo.attrs or {}
    if at.promo_type == "tag_price" then
      all = all or bandbill.copy(ctx.lines)
      local bases = {}
      local ts = targets(all, at)
      for k = 1, #ts do bases[ts[k].line.index] = ts[k].base end
      offers[#offers + 1] = { promo = promo, bases = bases }
    end
  end
  if all == nil then return { lines = out } end
  for i = 1, #all do
    local l = all[i]
    local cands, base = {}, 0
    for k = 1, #offers do
      local o = offers[k]
      local b = o.bases[l.index]
      if b ~= nil then cands[#cands + 1], base = o.promo, b end
    end
    if #cands > 0 then
      -- what the line costs after the discounts already on it
      local net = base
      for k = 1, #all do
        local d = all[k]
        if d.kind == "discount" and d.detail ~= nil and d.detail.line == l.index then net = net + d.amount end
      end
      local best, best_d, why = nil, -1, {}
      for k = 1, #cands do
        local promo = cands[k]
        local c = promo_ctx(ctx, promo, l, net, all)
        local d = call_promo(promo, c)
        why[#why + 1] = { promotion = promo.code, price = promo.price, discount = d }
        if d > best_d then best, best_d = promo, d end
      end
      if best_d > 0 then
        local reason = best.name .. " " .. money.format(best.price)
        local beaten = {}
        for k = 1, #why do
          local w = why[k]
          if w.promotion ~= best.code then beaten[#beaten + 1] = w.promotion .. " " .. money.format(w.price) end
        end
        if #beaten > 0 then reason = reason .. " beats " .. table.concat(beaten, ", ") end
        out[#out + 1] = {
          kind = "discount", description = best.name .. " price on " .. l.description, amount = -best_d,
          tax_category = l.tax_category, product = best.code, version = best.version, period = l.period,
          detail = { line = l.index, promotion = best.code, reason = reason, candidates = why },
        }
      end
    end
  end
  return { lines = out }
end

-- deposits: each device deposit held and not yet billed.
function M.deposits(ctx)
  local out = {}
  local deposits = ctx.deposits
  for i = 1, #deposits do
    local d = deposits[i]
    out[#out + 1] = {
      kind = "deposit", description = "Deposit for device " .. d.device, amount = d.amount,
      tax_category = "deposit", product = d.product, deposit = d.id, detail = { taken_on = d.taken_on },
    }
  end
  return { lines = out }
end

-- tax: every line but credit lines, rounded per line by tax.split.
function M.tax(ctx)
  local split = require("tax").split
  local taxes = {}
  local lines = ctx.lines
  for i = 1, #lines do
    local l = lines[i]
    if l.kind ~= "credit" then
      local r = split({ gross = l.amount, category = l.tax_category })
      taxes[#taxes + 1] = { line = l.index, rate = r.rate, tax = r.tax }
    end
  end
  return { taxes = taxes }
end

-- credit: the customer's credit (overpayments, credit notes) pays what it
-- can of the bill.
function M.credit(ctx)
  local c = ctx.balance.credit
  -- most customers have none: then the lines need not be added up
  if c <= 0 then return { lines = {} } end
  local gross = 0
  local lines = ctx.lines
  for i = 1, #lines do
    local l = lines[i]
    if l.kind ~= "credit" then gross = gross + l.amount end
  end
  if c > gross then c = gross end
  if c <= 0 then return { lines = {} } end
  return { lines = { { kind = "credit", description = "Credit applied", amount = -c, tax_category = "credit",
                       detail = { credit_available = ctx.balance.credit } } } }
end

-- ------------------------------------------------------------------ examples

local FIBER = { code = "FIBER300", name = "Fiber 300M", version = 1, price = 12900, price_includes_tax = true,
                tax_category = "internet", rule = "tariffs.monthly", params = { proration = "daily" }, attrs = {} }
local FIBER500 = { code = "FIBER500", name = "Fiber 500M", version = 1, price = 19900, price_includes_tax = true,
                   tax_category = "internet", rule = "tariffs.monthly", params = {}, attrs = {} }
local NOV = { from = "2026-11-01", to = "2026-11-30" }
local POSTPAID = { billing = "postpaid", period = "month", start_date = "2026-01-15", anchor_day = 1,
                   next_bill_date = "2026-12-01", status = "active" }

M.examples = {
  { fn = "schedule", name = "postpaid monthly: the run of 1 December bills November",
    input = { subscription = POSTPAID, as_of = "2026-12-01" },
    expect = { period = NOV, issue_date = "2026-12-01", due_date = "2026-12-16", next_bill_date = "2027-01-01",
               billed_through = "2026-11-30" } },
  { fn = "schedule", name = "postpaid quarterly in arrears, ended inside the quarter",
    input = { subscription = { billing = "postpaid", period = "quarter", start_date = "2026-02-10", anchor_day = 1,
                               next_bill_date = "2026-07-01", end_date = "2026-05-20", status = "terminated" },
              as_of = "2026-07-01" },
    expect = { period = { from = "2026-04-01", to = "2026-06-30" }, issue_date = "2026-07-01",
               due_date = "2026-07-16", next_bill_date = "2026-10-01", billed_through = "2026-05-20" } },
  { fn = "schedule", name = "prepaid: the first term from the start date, billed at once",
    input = { subscription = { billing = "prepaid", period = "quarter", start_date = "2026-01-31", anchor_day = 31,
                               next_bill_date = "2026-01-31", status = "active" }, as_of = "2026-01-31" },
    -- the next term starts on 30 April (the 31st, clamped), so this one ends on the 29th
    expect = { period = { from = "2026-01-31", to = "2026-04-29" }, issue_date = "2026-01-31",
               due_date = "2026-01-31", next_bill_date = "2026-04-23", billed_through = "2026-04-29" } },
  { fn = "schedule", name = "an annual prepaid renewal 7 days before the term",
    input = { subscription = { billing = "prepaid", period = "year", start_date = "2025-04-01", anchor_day = 1,
                               billed_through = "2026-03-31", next_bill_date = "2026-03-25", status = "active" },
              as_of = "2026-03-25" },
    expect = { period = { from = "2026-04-01", to = "2027-03-31" }, issue_date = "2026-03-25",
               due_date = "2026-04-01", next_bill_date = "2027-03-25", billed_through = "2027-03-31" } },
  { fn = "schedule", name = "an unknown billing is an error",
    input = { subscription = { billing = "weekly", period = "month", start_date = "2026-01-01", anchor_day = 1,
                               next_bill_date = "2026-02-01", status = "active" }, as_of = "2026-02-01" },
    expect_error = "unknown billing 'weekly'" },

  { fn = "recurring", name = "from the 17th of a 30-day month: 129.00 x 14 / 30 = 60.20",
    input = { plan = FIBER, period = NOV, active = { from = "2026-11-17", to = "2026-11-30" }, lines = {} },
    expect = { lines = { { kind = "recurring", description = "Fiber 300M, 2026-11-17 to 2026-11-30", amount = 6020,
                           tax_category = "internet", product = "FIBER300", version = 1,
                           period = { from = "2026-11-17", to = "2026-11-30" },
                           detail = { rule = "tariffs.monthly", days_used = 14, days_in_period = 30 } } } } },

  { fn = "proration", name = "upgrade on the 10th: 129.00 back and 199.00 charged for 21 of 30 days",
    -- 12900 x 21 / 30 = 9030; 19900 x 21 / 30 = 13930
    input = { plan = FIBER, period = NOV, active = NOV, subscription = POSTPAID, lines = {},
              changes = { { id = 7, kind = "upgrade", effective_date = "2026-11-10", from = FIBER, to = FIBER500 } } },
    expect = { lines = {
      { kind = "proration", description = "Fiber 300M not used, 2026-11-10 to 2026-11-30 (upgrade)", amount = -9030,
        tax_category = "internet", product = "FIBER300", version = 1, period = { from = "2026-11-10", to = "2026-11-30" },
        detail = { change = 7, days = 21 } },
      { kind = "proration", description = "Fiber 500M, 2026-11-10 to 2026-11-30 (upgrade)", amount = 13930,
        tax_category = "internet", product = "FIBER500", version = 1, period = { from = "2026-11-10", to = "2026-11-30" },
        detail = { change = 7, days = 21 } } } } },

  { fn = "tax", name = "6% on a plan, 9% on installation, none on a credit line",
    -- 12900 x 6 / 106 = 730.19 -> 730; 20000 x 9 / 109 = 1651.38 -> 1651
    input = { lines = { { index = 1, kind = "recurring", amount = 12900, tax_category = "internet" },
                        { index = 2, kind = "one_time", amount = 20000, tax_category = "installation" },
                        { index = 3, kind = "credit", amount = -500, tax_category = "credit" } } },
    expect = { taxes = { { line = 1, rate = 6, tax = 730 }, { line = 2, rate = 9, tax = 1651 } } } },

  { fn = "credit", name = "a credit larger than the bill pays all of it",
    input = { balance = { balance = -50000, open = 0, credit = 50000 },
              lines = { { index = 1, kind = "recurring", amount = 12900, tax_category = "internet" } } },
    expect = { lines = { { kind = "credit", description = "Credit applied", amount = -12900, tax_category = "credit",
                           detail = { credit_available = 50000 } } } } },
  { fn = "credit", name = "no credit, no line",
    input = { balance = { balance = 12900, open = 12900, credit = 0 },
              lines = { { index = 1, kind = "recurring", amount = 12900, tax_category = "internet" } } },
    expect = { lines = {} } },
}

return M
