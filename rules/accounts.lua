-- accounts.lua: PPPoE user names for new service accounts.
--
-- The core calls accounts.username when staff open an account without
-- giving a name. It checks what comes back: a string of 4-32 characters
-- of a-z 0-9 . _ @ -, starting with a letter or a digit. If that name is
-- already taken, it asks again with attempt = 2, 3, ... (up to 5 times),
-- so a rule should give a different name for each attempt.
local M = {}

-- Two letters for the city of the customer's service address. Customers
-- without a service address, or in a city not listed, get the default.
M.city_prefixes = {
  ["杭州市"] = "hz", ["宁波市"] = "nb", ["温州市"] = "wz", ["绍兴市"] = "sx",
  ["嘉兴市"] = "jx", ["湖州市"] = "hu", ["金华市"] = "jh", ["台州市"] = "tz",
}
M.default_prefix = "hz"

-- username{customer = "C000012340", customer_id, city?, district?,
--          sequence = the customer's accounts + 1, attempt = 1, 2, ...}
--   -> "hz12340" for the first account, "hz12340-2" for the second, ...
-- The digits are the customer code's without leading zeros, so the name
-- tells staff whose account it is. A taken name moves to the next suffix.
function M.username(ctx)
  local digits = string.match(ctx.customer, "^%a+(%d+)$")
  if digits == nil then
    error("customer code '" .. tostring(ctx.customer) .. "' does not end in digits")
  end
  digits = (string.gsub(digits, "^0+", ""))
  local prefix = (ctx.city ~= nil and M.city_prefixes[ctx.city]) or M.default_prefix
  local n = ctx.sequence + (ctx.attempt or 1) - 1
  local name = prefix .. digits
  if n > 1 then name = name .. "-" .. n end
  return name
end

M.examples = {
  { fn = "username", name = "the first account of a customer in Hangzhou",
    input = { customer = "C000012340", customer_id = 1234, city = "杭州市", district = "西湖区",
              sequence = 1, attempt = 1 },
    expect = "hz12340" },
  { fn = "username", name = "the customer's third account gets a suffix",
    input = { customer = "C000012340", customer_id = 1234, city = "杭州市", district = "西湖区",
              sequence = 3, attempt = 1 },
    expect = "hz12340-3" },
  { fn = "username", name = "a customer in Ningbo",
    input = { customer = "C000567894", customer_id = 56789, city = "宁波市", district = "海曙区",
              sequence = 1, attempt = 1 },
    expect = "nb567894" },
  { fn = "username", name = "no service address: the default prefix",
    input = { customer = "C000000013", customer_id = 1, sequence = 1, attempt = 1 },
    expect = "hz13" },
  { fn = "username", name = "the name was taken: the second attempt moves to the next suffix",
    input = { customer = "C000012340", customer_id = 1234, city = "杭州市", district = "西湖区",
              sequence = 1, attempt = 2 },
    expect = "hz12340-2" },
  { fn = "username", name = "a customer code without digits is refused",
    input = { customer = "ABC", customer_id = 9, sequence = 1, attempt = 1 },
    expect_error = "does not end in digits" },
}

return M
