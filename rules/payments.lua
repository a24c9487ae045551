-- payments.lua: what a payment settles.
--
-- A payment first settles the invoice it was made for (the core does
-- that: it is what the customer paid). What is left settles the other open
-- invoices in the order this rule gives; what is left after them is the
-- customer's credit, which the next bill takes (billing.lua, step credit).
local M = {}

-- allocation_order{payment = {amount = fen, channel = "alipay"},
--                  made_for = "INV-2026-000042" or nil,
--                  open = {{number, issue_date, due_date, balance_due}, ...}}
--   -> {order = {number, ...}}
-- The open invoices the rest of the payment settles, in that order; any
-- left out are not touched (the money stays credit). Default: the oldest
-- bill first (by issue date, then number).
function M.allocation_order(ctx)
  local list = {}
  for i, inv in ipairs(ctx.open) do
    list[i] = { number = inv.number, issue_date = inv.issue_date }
  end
  table.sort(list, function(a, b)
    if a.issue_date ~= b.issue_date then return a.issue_date < b.issue_date end
    return a.number < b.number
  end)
  local order = {}
  for i, inv in ipairs(list) do order[i] = inv.number end
  return { order = order }
end

M.examples = {
  { fn = "allocation_order", name = "the oldest bill first",
    input = { payment = { amount = 30000, channel = "counter" },
              open = { { number = "INV-2026-000031", issue_date = "2026-11-01", due_date = "2026-11-16", balance_due = 12900 },
                       { number = "INV-2026-000007", issue_date = "2026-10-01", due_date = "2026-10-16", balance_due = 12900 } } },
    expect = { order = { "INV-2026-000007", "INV-2026-000031" } } },
  { fn = "allocation_order", name = "the same day: by number",
    input = { payment = { amount = 100, channel = "alipay" }, made_for = "INV-2026-000001",
              open = { { number = "INV-2026-000012", issue_date = "2026-12-01", due_date = "2026-12-16", balance_due = 100 },
                       { number = "INV-2026-000011", issue_date = "2026-12-01", due_date = "2026-12-16", balance_due = 100 } } },
    expect = { order = { "INV-2026-000011", "INV-2026-000012" } } },
  { fn = "allocation_order", name = "nothing else open",
    input = { payment = { amount = 100, channel = "counter" }, open = {} },
    expect = { order = {} } },
}

return M
