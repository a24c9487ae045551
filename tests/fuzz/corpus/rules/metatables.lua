local M = {}
local Account = {}
Account.__index = Account
function Account.new(b) return setmetatable({ balance = b }, Account) end
function Account:deposit(v) self.balance = self.balance + v; return self end
function M.acct(ctx)
  local a = Account.new(ctx.price):deposit(100)
  return { balance = a.balance }
end
function M.proxy(ctx)
  local t = setmetatable({}, { __index = function(_, k) return k .. "!" end,
                               __len = function() return 3 end })
  return { t.x, #t }
end
M.examples = {
  { fn = "acct", input = { price = 1 }, expect = { balance = 101 } },
}
return M
