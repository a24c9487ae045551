-- tax.lua: value-added tax on tax-inclusive prices.
--
-- Chinese retail prices include VAT. A line's gross amount is split into
-- net amount and tax: tax = round_half_up(gross * rate / (100 + rate)),
-- net = gross - tax, rounded per line. The rates by tax category are the
-- common ones; confirm them with the operator's accountant.
local money = bandbill.money

local M = {}

M.rates = {
  internet = 6,       -- value-added telecom service
  bandwidth = 9,      -- basic telecom: leased dedicated bandwidth
  installation = 9,   -- installation and hook-up services
  equipment = 13,     -- sale or rental of equipment
  deposit = 0,        -- a refundable deposit is not revenue
}

-- split{gross = fen, category = "internet"} -> {net, tax, rate}
function M.split(line)
  local rate = M.rates[line.category]
  if rate == nil then
    error("unknown tax category '" .. tostring(line.category) .. "'")
  end
  local tax = money.ratio(line.gross, rate, 100 + rate)
  return { net = line.gross - tax, tax = tax, rate = rate }
end

-- on_net{net = fen, category}: for prices quoted net of tax (business
-- contracts): tax = round_half_up(net * rate / 100), gross = net + tax.
function M.on_net(line)
  local rate = M.rates[line.category]
  if rate == nil then
    error("unknown tax category '" .. tostring(line.category) .. "'")
  end
  local tax = money.percent(line.net, rate)
  return { net = line.net, tax = tax, gross = line.net + tax, rate = rate }
end

M.examples = {
  { fn = "split", name = "a 129.00 plan at 6%",
    input = { gross = 12900, category = "internet" },
    expect = { net = 12170, tax = 730, rate = 6 } },
  { fn = "split", name = "installation at 9%",
    input = { gross = 20000, category = "installation" },
    expect = { net = 18349, tax = 1651, rate = 9 } },
  { fn = "split", name = "1.00 at 6%: 5.66 fen of tax rounds to 6",
    input = { gross = 100, category = "internet" },
    expect = { net = 94, tax = 6, rate = 6 } },
  { fn = "split", name = "a deposit carries no tax",
    input = { gross = 30000, category = "deposit" },
    expect = { net = 30000, tax = 0, rate = 0 } },
  { fn = "split", name = "an unknown category is an error",
    input = { gross = 100, category = "snacks" },
    expect_error = "unknown tax category 'snacks'" },
  { fn = "on_net", name = "half a fen rounds up: 25.25 at 6% is 151.5 fen",
    input = { net = 2525, category = "internet" },
    expect = { net = 2525, tax = 152, gross = 2677, rate = 6 } },
  -- 151.5 rounds to 152 half even too (152 is even); 154.5 does not
  { fn = "on_net", name = "half up, not half even: 25.75 at 6% is 154.5 fen, 155 (half even would say 154)",
    input = { net = 2575, category = "internet" },
    expect = { net = 2575, tax = 155, gross = 2730, rate = 6 } },
  { fn = "split", name = "and back: 2730 at 6% is 154.53 fen of tax, 155, net 25.75 again",
    input = { gross = 2730, category = "internet" },
    expect = { net = 2575, tax = 155, rate = 6 } },
  { fn = "on_net", name = "just under half a fen rounds down: 25.24 at 6% is 151.44 fen",
    input = { net = 2524, category = "internet" },
    expect = { net = 2524, tax = 151, gross = 2675, rate = 6 } },
}

return M
