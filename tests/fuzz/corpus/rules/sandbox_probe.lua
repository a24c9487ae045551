local M = {}
function M.probe(ctx)
  local found = {}
  for _, name in ipairs({ "io", "os", "load", "loadstring", "dofile", "loadfile", "debug", "package",
                          "collectgarbage", "rawset", "getmetatable", "setmetatable", "require", "_G", "_ENV" }) do
    found[#found + 1] = name .. "=" .. type(_ENV[name])
  end
  local ok, err = pcall(function() string.format = nil end)
  found[#found + 1] = tostring(ok)
  ok = pcall(function() return getmetatable("").__index end)
  found[#found + 1] = tostring(ok)
  ok = pcall(setmetatable, {}, { __gc = function() end })
  found[#found + 1] = tostring(ok)
  ok = pcall(rawset, string, "x", 1)
  found[#found + 1] = tostring(ok)
  ok = pcall(function() ctx.price = 1 end)
  found[#found + 1] = tostring(ok)
  return found
end
return M
