-- The rule the call benchmark runs: reads a 10-field context and returns
-- three invoice-like lines.
local M = {}

function M.lines(ctx)
  return {
    { kind = "recurring", amount = ctx.price, description = ctx.plan },
    { kind = "addon", amount = ctx.addon, description = ctx.addon_name },
    { kind = "discount", amount = -ctx.discount, description = ctx.promo },
  }
end

M.examples = {
  { fn = "lines", input = { price = 12900, plan = "300M", addon = 1000, addon_name = "IPTV",
      discount = 500, promo = "new user", customer = "C1", period = "2026-12", tags = "vip", region = "X" },
    expect = { { kind = "recurring", amount = 12900, description = "300M" },
               { kind = "addon", amount = 1000, description = "IPTV" },
               { kind = "discount", amount = -500, description = "new user" } } },
}

return M
