-- dunning.lua: the collection ladder.
--
-- For each unpaid bill the daily pass asks `plan` which stage is due
-- today, given the stages already done. Only the latest due stage acts;
-- stages it passed over (the pass did not run, or the customer was
-- paused) are recorded as skipped, so a late pass never fires every
-- missed reminder. The core records each (bill, stage) once, whatever
-- happens to the pass, and carries out the actions: a message through the
-- outbox, the customer's status, the line's state for the network, a
-- collection task.
local M = {}

-- The ladder of the requirements, in days from the due date.
M.stages = {
  { name = "reminder_5", day = -5, actions = { { kind = "notify", template = "renewal_reminder" } } },
  { name = "reminder_3", day = -3, actions = { { kind = "notify", template = "renewal_reminder" } } },
  { name = "due",        day = 0,  actions = { { kind = "notify", template = "due_reminder" } } },
  { name = "overdue_1",  day = 1,  actions = { { kind = "status", to = "overdue" },
                                               { kind = "notify", template = "overdue_notice" },
                                               { kind = "task", priority = "low" } } },
  { name = "throttle_3", day = 3,  actions = { { kind = "notify", template = "suspension_warning", suspend_in_days = 4 },
                                               { kind = "network", state = "throttled", rate = "2M/2M" } } },
  { name = "suspend_7",  day = 7,  actions = { { kind = "status", to = "suspended" },
                                               { kind = "network", state = "suspended" },
                                               { kind = "task", priority = "high" } } },
}

M.vip_grace_days = 5     -- VIP customers: every overdue stage this much later
M.min_balance = 100      -- fen: never chase less than this

-- Public holidays: the ladder does not act on them (no reminder, no line
-- cut while the shops are shut); the next working day acts the latest
-- stage due and records the ones passed over as skipped. The State
-- Council publishes the dates each year; keep this list up to date.
M.holidays = {
  "2026-01-01", "2026-01-02", "2026-01-03",                               -- 元旦
  "2026-02-15", "2026-02-16", "2026-02-17", "2026-02-18", "2026-02-19",   -- 春节
  "2026-02-20", "2026-02-21", "2026-02-22", "2026-02-23",
  "2026-04-04", "2026-04-05", "2026-04-06",                               -- 清明节
  "2026-05-01", "2026-05-02", "2026-05-03", "2026-05-04", "2026-05-05",   -- 劳动节
  "2026-06-19", "2026-06-20", "2026-06-21",                               -- 端午节
  "2026-09-25", "2026-09-26", "2026-09-27",                               -- 中秋节
  "2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05",   -- 国庆节
  "2026-10-06", "2026-10-07",
}
local holiday = {}
for _, d in ipairs(M.holidays) do holiday[d] = true end

-- Notices go where the customer prefers: tag prefer_wechat, or
-- prefer_email, else SMS (a customer without that contact gets it in the
-- log, where staff see it). A stage's notify action may name its own
-- channels = {...} instead.
function M.channels(tags)
  local want = "sms"
  for _, t in ipairs(tags) do
    if t == "prefer_wechat" then return { "wechat" } end
    if t == "prefer_email" then want = "email" end
  end
  return { want }
end

-- The stage's actions as carried out: each notice with its channels, and
-- a warning of suspension with the day it comes (grace included).
local function with_notices(stage, ctx, grace)
  local day = stage.day > 0 and stage.day + grace or stage.day
  local out = {}
  for i, a in ipairs(stage.actions) do
    if a.kind == "notify" then
      local n = {}
      for k, v in pairs(a) do n[k] = v end
      n.channels = a.channels or M.channels(ctx.customer.tags)
      if a.suspend_in_days then n.suspend_on = bandbill.date.add_days(ctx.invoice.due_date, day + a.suspend_in_days) end
      out[i] = n
    else
      out[i] = a
    end
  end
  return out
end

-- plan{invoice = {number, due_date, balance_due, plan?, billing?}, customer = {code, status, tags},
--      days = today - due_date, done = {stage names}, promised_until = "YYYY-MM-DD" or nil, today}
--   -> {stage = name or nil, actions = {...}, skip = {names}}
function M.plan(ctx)
  if ctx.invoice.balance_due < M.min_balance then return { actions = {}, skip = {} } end
  if holiday[ctx.today] then return { actions = {}, skip = {} } end
  if ctx.promised_until and ctx.today <= ctx.promised_until then return { actions = {}, skip = {} } end
  local grace = 0
  for _, t in ipairs(ctx.customer.tags) do
    if t == "vip" then grace = M.vip_grace_days end
  end
  local done = {}
  for _, n in ipairs(ctx.done) do done[n] = true end
  local latest, skip = nil, {}
  for _, st in ipairs(M.stages) do
    local day = st.day > 0 and st.day + grace or st.day
    if ctx.days >= day and not done[st.name] then
      if latest then skip[#skip + 1] = latest.name end
      latest = st
    end
  end
  if not latest then return { actions = {}, skip = {} } end
  return { stage = latest.name, actions = with_notices(latest, ctx, grace), skip = skip }
end

local function ctx(days, done, tags, extra)
  local c = { invoice = { number = "INV-2026-000001", due_date = "2026-11-16", balance_due = 12900 },
              customer = { code = "C000000013", status = "active", tags = tags or {} },
              days = days, done = done or {}, today = "2026-11-20" }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

M.examples = {
  { fn = "plan", name = "five days before: the first reminder", input = ctx(-5),
    expect = { stage = "reminder_5", actions = { { kind = "notify", template = "renewal_reminder", channels = { "sms" } } },
               skip = {} } },
  { fn = "plan", name = "six days before: nothing yet", input = ctx(-6), expect = { actions = {}, skip = {} } },
  { fn = "plan", name = "the same day again: done, nothing more", input = ctx(-5, { "reminder_5" }),
    expect = { actions = {}, skip = {} } },
  { fn = "plan", name = "a pass that missed a week acts the latest stage only",
    input = ctx(3, { "reminder_5" }),
    expect = { stage = "throttle_3",
               actions = { { kind = "notify", template = "suspension_warning", suspend_in_days = 4, suspend_on = "2026-11-23",
                             channels = { "sms" } },
                           { kind = "network", state = "throttled", rate = "2M/2M" } },
               skip = { "reminder_3", "due", "overdue_1" } } },
  { fn = "plan", name = "VIP: not suspended on day 8 (day 12 for them)",
    input = ctx(8, { "reminder_5", "reminder_3", "due", "overdue_1", "throttle_3" }, { "vip" }),
    expect = { actions = {}, skip = {} } },
  { fn = "plan", name = "VIP: suspended on day 12",
    input = ctx(12, { "reminder_5", "reminder_3", "due", "overdue_1", "throttle_3" }, { "vip" }),
    expect = { stage = "suspend_7", actions = M.stages[6].actions, skip = {} } },
  { fn = "plan", name = "VIP: overdue on day 6", input = ctx(6, { "reminder_5", "reminder_3", "due" }, { "vip" }),
    expect = { stage = "overdue_1",
               actions = { { kind = "status", to = "overdue" },
                           { kind = "notify", template = "overdue_notice", channels = { "sms" } },
                           { kind = "task", priority = "low" } }, skip = {} } },
  { fn = "plan", name = "VIP: the warning names their later suspension day",
    input = ctx(8, { "reminder_5", "reminder_3", "due", "overdue_1" }, { "vip" }),
    expect = { stage = "throttle_3",
               actions = { { kind = "notify", template = "suspension_warning", suspend_in_days = 4, suspend_on = "2026-11-28",
                             channels = { "sms" } },
                           { kind = "network", state = "throttled", rate = "2M/2M" } }, skip = {} } },
  { fn = "plan", name = "a customer who prefers e-mail is reminded by e-mail",
    input = ctx(0, { "reminder_5", "reminder_3" }, { "prefer_email" }),
    expect = { stage = "due", actions = { { kind = "notify", template = "due_reminder", channels = { "email" } } }, skip = {} } },
  { fn = "plan", name = "WeChat wins over e-mail for a customer who follows the account",
    input = ctx(0, { "reminder_5", "reminder_3" }, { "prefer_email", "prefer_wechat" }),
    expect = { stage = "due", actions = { { kind = "notify", template = "due_reminder", channels = { "wechat" } } }, skip = {} } },
  { fn = "plan", name = "a promise to pay pauses the ladder", input = ctx(8, {}, {}, { promised_until = "2026-11-25" }),
    expect = { actions = {}, skip = {} } },
  { fn = "plan", name = "nothing on a public holiday (National Day), even the suspension",
    input = ctx(7, { "reminder_5", "reminder_3", "due", "overdue_1", "throttle_3" }, {}, { today = "2026-10-03" }),
    expect = { actions = {}, skip = {} } },
  { fn = "plan", name = "the working day after the holidays acts the latest stage only",
    input = ctx(9, { "reminder_5", "reminder_3", "due" }, {}, { today = "2026-10-08" }),
    expect = { stage = "suspend_7", actions = M.stages[6].actions, skip = { "overdue_1", "throttle_3" } } },
  { fn = "plan", name = "less than the minimum is not chased",
    input = { invoice = { number = "X", due_date = "2026-11-16", balance_due = 50 },
              customer = { code = "C", status = "active", tags = {} }, days = 10, done = {}, today = "2026-11-26" },
    expect = { actions = {}, skip = {} } },
}

return M
