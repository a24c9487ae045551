local helper = require("lib.helper")
local M = {}
function M.lines(ctx) return helper.lines(ctx) end
function M.days(ctx) return helper.days(ctx.period) end
M.examples = {
  { fn = "days", input = { period = { from = "2026-02-01", to = "2026-02-28" } }, expect = 28 },
}
return M
