local M = {}
local kept
function M.keep(ctx) kept = ctx; return #ctx.lines end
function M.use_kept(ctx) return kept and kept.price end
function M.copy(ctx)
  local c = bandbill.copy(ctx)
  c.price = c.price + 1
  return c
end
function M.iterate(ctx)
  local n = 0
  for k, v in pairs(ctx) do n = n + 1 end
  for i, l in ipairs(ctx.lines) do n = n + l.gross end
  return { n = n, t = type(ctx), s = tostring(ctx), eq = ctx == ctx }
end
function M.next_walk(ctx)
  local k, v = next(ctx)
  local keys = {}
  while k do keys[#keys + 1] = k; k, v = next(ctx, k) end
  return keys
end
M.examples = {
  { fn = "keep", input = { lines = { 1, 2 } }, expect = 2 },
  { fn = "use_kept", input = {}, expect_error = "kept after its call" },
}
return M
