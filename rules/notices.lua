-- notices.lua: what customers read, per event and channel, and when they
-- may be messaged.
--
-- The dispatcher calls render{id, event, channel, customer, payload} for
-- each message it sends and checks what comes back:
--   sms, log  {text = "..."}                      an SMS is 1 to 500 characters
--   email     {subject = "...", body = "..."}     plain text; the subject one line
--   wechat    {template_id = "...", url = "...", data = {key = "value" | {value, color}}}
-- or nil when there is no template for the event on that channel (the log
-- channel then shows the payload; another channel fails the attempt). A
-- failing render fails that attempt (tried again later), never the daemon.
-- Edit a text, save, reload (`bandbill rules reload`, SIGHUP, or on its
-- own with rules.watch): the next message uses it.
local money = bandbill.money
local date = bandbill.date

local M = {}

-- Where pay links point: the payload's pay_link ("/pay/INV-2026-000001")
-- is appended to it. Change it to your portal.
M.site = "https://pay.example-isp.cn"

-- Payload values that are money in fen: shown as yuan, "129.00".
M.money = { amount = true, amount_due = true, balance_due = true }

-- No SMS or WeChat messages at night (the operator's time zone); what
-- falls inside the window waits for its end. One-time codes are asked for
-- by the customer at that moment and go at once.
M.quiet_hours = {
  sms = { from = "21:00", to = "08:00", except = { "verification_code", "pppoe_reset_code" } },
  wechat = { from = "21:00", to = "08:00", except = { "verification_code", "pppoe_reset_code" } },
}

-- A notice about an unpaid bill, on every channel (dunning.* and service.*).
-- WeChat template ids are your official account's: replace the TPL_* ones.
local function bill_notice(t)
  return {
    sms = t.sms,
    email = {
      subject = t.subject,
      body = "尊敬的用户（客户编号 {{customer}}）：\n\n" .. t.text ..
             "\n\n账单号：{{invoice}}\n应付金额：{{amount}} 元\n到期日：{{due_date}}\n在线缴费：{{pay_url}}\n\n" ..
             "如您已缴费，请忽略本通知。感谢您的支持！\n",
    },
    wechat = {
      template_id = t.template_id, url = "{{pay_url}}",
      data = { first = t.first, keyword1 = "{{invoice}}", keyword2 = "{{amount}}元", keyword3 = "{{due_date}}",
               remark = t.remark },
    },
  }
end

M.templates = {
  verification_code = {
    sms = "验证码{{code}}，用于验证您在宽带营业厅登记的手机号，10分钟内有效。如非本人操作，请忽略。",
    email = { subject = "您的验证码：{{code}}",
              body = "您好：\n\n您的验证码是 {{code}}，10 分钟内有效。\n如非本人操作，请忽略本邮件。\n" },
    wechat = { template_id = "TPL_VERIFY_CODE",
               data = { first = "您正在验证手机号", keyword1 = "{{code}}", keyword2 = "10分钟",
                        remark = "如非本人操作，请忽略。" } },
  },
  pppoe_reset_code = {
    sms = "您正在重置宽带账号{{username}}的密码，验证码{{code}}，10分钟内有效。如非本人操作，请忽略。",
    email = { subject = "宽带账号 {{username}} 密码重置验证码",
              body = "您好：\n\n您正在重置宽带账号 {{username}} 的密码，验证码是 {{code}}，10 分钟内有效。\n" ..
                     "如非本人操作，请忽略本邮件。\n" },
    wechat = { template_id = "TPL_VERIFY_CODE",
               data = { first = "您正在重置宽带账号{{username}}的密码", keyword1 = "{{code}}", keyword2 = "10分钟",
                        remark = "如非本人操作，请忽略。" } },
  },
  invoice_issued = {
    sms = "您的宽带账单{{number}}{{period_text}}已出，应付{{amount_due}}元，请于{{due_date}}前缴费：{{pay_url}}",
    email = { subject = "宽带账单 {{number}}：应付 {{amount_due}} 元",
              body = "尊敬的用户（客户编号 {{customer}}）：\n\n您的宽带账单已出。\n\n账单号：{{number}}\n" ..
                     "账期：{{period}}\n应付金额：{{amount_due}} 元\n缴费截止：{{due_date}}\n在线缴费：{{pay_url}}\n\n" ..
                     "感谢您的支持！\n" },
    wechat = { template_id = "TPL_BILL_ISSUED", url = "{{pay_url}}",
               data = { first = "您的宽带账单已出", keyword1 = "{{number}}", keyword2 = "{{amount_due}}元",
                        keyword3 = "{{due_date}}", remark = "点击详情在线缴费。" } },
  },
  -- a bill that credit paid in full asks for nothing
  ["invoice_issued/paid"] = {
    sms = "您的宽带账单{{number}}{{period_text}}已出，已由账户余额全额抵扣，无需缴费。",
    email = { subject = "宽带账单 {{number}}：已由余额抵扣",
              body = "尊敬的用户（客户编号 {{customer}}）：\n\n您的宽带账单 {{number}}（账期：{{period}}）已出，" ..
                     "已由账户余额全额抵扣，无需缴费。\n\n感谢您的支持！\n" },
    wechat = { template_id = "TPL_BILL_ISSUED",
               data = { first = "您的宽带账单已出", keyword1 = "{{number}}", keyword2 = "0.00元",
                        keyword3 = "{{due_date}}", remark = "已由账户余额全额抵扣，无需缴费。" } },
  },
  ["dunning.renewal_reminder"] = bill_notice {
    sms = "温馨提示：您的宽带账单{{invoice}}应付{{amount}}元，将于{{due_date}}到期，请及时缴费以免影响使用：{{pay_url}}",
    subject = "宽带续费提醒：{{amount}} 元，{{due_date}} 到期",
    text = "您的宽带账单将于 {{due_date}} 到期，请及时缴费，以免影响使用。",
    template_id = "TPL_RENEWAL_REMINDER", first = "您的宽带即将到期", remark = "点击详情在线缴费。",
  },
  ["dunning.due_reminder"] = bill_notice {
    sms = "您的宽带账单{{invoice}}（{{amount}}元）今天到期，请尽快缴费：{{pay_url}}",
    subject = "宽带账单今天到期：{{amount}} 元",
    text = "您的宽带账单今天（{{due_date}}）到期，请尽快缴费。",
    template_id = "TPL_DUE_REMINDER", first = "您的宽带账单今天到期", remark = "请尽快缴费，点击详情在线缴费。",
  },
  ["dunning.overdue_notice"] = bill_notice {
    sms = "您的宽带账单{{invoice}}（{{amount}}元）已于{{due_date}}逾期未缴，请尽快缴费，以免限速或停机：{{pay_url}}",
    subject = "宽带账单逾期通知：{{amount}} 元",
    text = "您的宽带账单已于 {{due_date}} 逾期未缴。请尽快缴费，以免宽带被限速或停机。",
    template_id = "TPL_OVERDUE_NOTICE", first = "您的宽带账单已逾期", remark = "请尽快缴费，以免限速或停机。",
  },
  ["dunning.suspension_warning"] = bill_notice {
    sms = "重要通知：您的宽带账单{{invoice}}（{{amount}}元）已逾期，宽带已限速，将于{{suspend_on}}停机。请立即缴费：{{pay_url}}",
    subject = "停机预警：请于 {{suspend_on}} 前缴清 {{amount}} 元",
    text = "您的宽带账单已逾期，宽带已限速，将于 {{suspend_on}} 停机。请立即缴费，缴清后自动恢复。",
    template_id = "TPL_SUSPENSION_WARNING", first = "停机预警：您的宽带将于{{suspend_on}}停机",
    remark = "缴清后自动恢复，点击详情在线缴费。",
  },
  ["service.throttled"] = bill_notice {
    sms = "您的宽带因账单{{invoice}}欠费已限速，缴清{{amount}}元后自动恢复：{{pay_url}}",
    subject = "宽带已限速：账单 {{invoice}} 欠费",
    text = "您的宽带因欠费已限速，缴清后自动恢复。",
    template_id = "TPL_SERVICE_CHANGED", first = "您的宽带因欠费已限速", remark = "缴清后自动恢复。",
  },
  ["service.suspended"] = bill_notice {
    sms = "您的宽带因账单{{invoice}}欠费已停机，缴清{{amount}}元后自动恢复：{{pay_url}}",
    subject = "宽带已停机：账单 {{invoice}} 欠费",
    text = "您的宽带因欠费已停机，缴清后自动恢复。",
    template_id = "TPL_SERVICE_CHANGED", first = "您的宽带因欠费已停机", remark = "缴清后自动恢复。",
  },
  ["service.restore"] = {
    sms = "您的缴费已到账，宽带服务已恢复正常。感谢您的支持！",
    email = { subject = "宽带服务已恢复",
              body = "尊敬的用户（客户编号 {{customer}}）：\n\n您的缴费已到账，宽带服务已恢复正常。感谢您的支持！\n" },
    wechat = { template_id = "TPL_SERVICE_CHANGED",
               data = { first = "您的宽带服务已恢复", keyword1 = "已恢复", remark = "感谢您的支持！" } },
  },
}

-- The template of a message: its event's, or a variant of it.
function M.variant(msg)
  if msg.event == "invoice_issued" and msg.payload.amount_due == 0 then return "invoice_issued/paid" end
  return msg.event
end

-- The variables a template may use: the payload's values as text (money
-- as yuan), the customer's code, and what is derived from them.
function M.variables(msg)
  local p, v = msg.payload, {}
  for k, x in pairs(p) do
    if M.money[k] then v[k] = money.format(x)
    elseif type(x) == "string" or math.type(x) == "integer" then v[k] = tostring(x) end
  end
  v.customer = msg.customer
  local link = p.pay_link
  if link == nil and type(p.invoice) == "string" then link = "/pay/" .. p.invoice end
  if type(link) == "string" then v.pay_url = M.site .. link end
  if type(p.period) == "string" then
    v.period = string.gsub(p.period, "%.%.", "至")
    v.period_text = "（" .. v.period .. "）"
  else
    v.period = "-"
    v.period_text = ""
  end
  if type(p.suspend_on) == "string" then v.suspend_on = p.suspend_on
  elseif type(p.suspend_in_days) == "number" and type(p.due_date) == "string" then
    v.suspend_on = date.add_days(p.due_date, p.suspend_in_days)
  end
  return v
end

-- {{name}} replaced by the variable; a name the message does not have is
-- an error naming it (a typo must not reach a customer).
function M.fill(template, vars, where)
  return (string.gsub(template, "{{([%w_]+)}}", function(name)
    local x = vars[name]
    if x == nil then error((where or "template") .. ": {{" .. name .. "}} is not a variable of this message", 0) end
    return x
  end))
end

function M.render(msg)
  local key = M.variant(msg)
  local t = M.templates[key]
  if t == nil then return nil end
  local tpl = t[msg.channel]
  -- the log shows what the customer would read by SMS
  if tpl == nil and msg.channel == "log" then tpl = t.sms end
  if tpl == nil then return nil end
  local vars, where = M.variables(msg), key .. "." .. msg.channel
  if msg.channel == "sms" or msg.channel == "log" then
    return { text = M.fill(tpl, vars, where) }
  elseif msg.channel == "email" then
    return { subject = M.fill(tpl.subject, vars, where .. ".subject"), body = M.fill(tpl.body, vars, where .. ".body") }
  elseif msg.channel == "wechat" then
    local data = {}
    for k, x in pairs(tpl.data) do data[k] = M.fill(x, vars, where .. ".data." .. k) end
    return { template_id = tpl.template_id, url = tpl.url and M.fill(tpl.url, vars, where .. ".url"), data = data }
  end
  return nil
end

local function reminder(channel, extra)
  local p = { template = "renewal_reminder", invoice = "INV-2026-000001", due_date = "2026-11-16", amount = 12900,
              stage = "reminder_5", pay_link = "/pay/INV-2026-000001" }
  for k, x in pairs(extra or {}) do p[k] = x end
  return { id = 7, event = "dunning.renewal_reminder", channel = channel, customer = "C000000013", payload = p }
end

M.examples = {
  { fn = "render", name = "a renewal reminder by SMS: money in yuan, the pay link on the portal",
    input = reminder("sms"),
    expect = { text = "温馨提示：您的宽带账单INV-2026-000001应付129.00元，将于2026-11-16到期，请及时缴费以免影响使用：" ..
                      "https://pay.example-isp.cn/pay/INV-2026-000001" } },
  { fn = "render", name = "the log shows the SMS text",
    input = reminder("log", { amount = 5 }),
    expect = { text = "温馨提示：您的宽带账单INV-2026-000001应付0.05元，将于2026-11-16到期，请及时缴费以免影响使用：" ..
                      "https://pay.example-isp.cn/pay/INV-2026-000001" } },
  { fn = "render", name = "a suspension warning by WeChat names the day",
    input = { id = 8, event = "dunning.suspension_warning", channel = "wechat", customer = "C000000013",
              payload = { invoice = "INV-2026-000001", due_date = "2026-11-16", amount = 12900, suspend_on = "2026-11-23",
                          pay_link = "/pay/INV-2026-000001" } },
    expect = { template_id = "TPL_SUSPENSION_WARNING", url = "https://pay.example-isp.cn/pay/INV-2026-000001",
               data = { first = "停机预警：您的宽带将于2026-11-23停机", keyword1 = "INV-2026-000001", keyword2 = "129.00元",
                        keyword3 = "2026-11-16", remark = "缴清后自动恢复，点击详情在线缴费。" } } },
  { fn = "render", name = "the suspension day from suspend_in_days when the rule gives no date",
    input = { id = 8, event = "dunning.suspension_warning", channel = "sms", customer = "C000000013",
              payload = { invoice = "INV-2026-000001", due_date = "2026-11-16", amount = 12900, suspend_in_days = 7 } },
    expect = { text = "重要通知：您的宽带账单INV-2026-000001（129.00元）已逾期，宽带已限速，将于2026-11-23停机。请立即缴费：" ..
                      "https://pay.example-isp.cn/pay/INV-2026-000001" } },
  { fn = "render", name = "an e-bill by e-mail",
    input = { id = 9, event = "invoice_issued", channel = "email", customer = "C000000013",
              payload = { number = "INV-2026-000002", customer = "C000000013", amount_due = 32900, due_date = "2026-12-16",
                          period = "2026-11-01..2026-11-30", pay_link = "/pay/INV-2026-000002" } },
    expect = { subject = "宽带账单 INV-2026-000002：应付 329.00 元",
               body = "尊敬的用户（客户编号 C000000013）：\n\n您的宽带账单已出。\n\n账单号：INV-2026-000002\n" ..
                      "账期：2026-11-01至2026-11-30\n应付金额：329.00 元\n缴费截止：2026-12-16\n" ..
                      "在线缴费：https://pay.example-isp.cn/pay/INV-2026-000002\n\n感谢您的支持！\n" } },
  { fn = "render", name = "a bill paid by credit asks for nothing",
    input = { id = 10, event = "invoice_issued", channel = "sms", customer = "C000000013",
              payload = { number = "INV-2026-000003", amount_due = 0, due_date = "2026-12-16" } },
    expect = { text = "您的宽带账单INV-2026-000003已出，已由账户余额全额抵扣，无需缴费。" } },
  { fn = "render", name = "a verification code",
    input = { id = 11, event = "verification_code", channel = "sms", customer = "C000000013",
              payload = { code = "424242", customer = "C000000013" } },
    expect = { text = "验证码424242，用于验证您在宽带营业厅登记的手机号，10分钟内有效。如非本人操作，请忽略。" } },
  { fn = "render", name = "no template: nil",
    input = { id = 12, event = "something.else", channel = "sms", payload = {} }, expect = nil },
  { fn = "fill", name = "a variable the message does not have is an error",
    args = { "应付{{amout}}元", { amount = "129.00" }, "dunning.due_reminder.sms" },
    expect_error = "dunning.due_reminder.sms: {{amout}} is not a variable of this message" },
}

return M
