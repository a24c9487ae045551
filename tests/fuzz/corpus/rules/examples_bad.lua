local M = {}
function M.f(x) return x end
M.examples = {
  { fn = "f", input = 1, expect = 2 },
  { fn = "nope", input = 1, expect = 1 },
  { input = 1 },
  "not a table",
  { fn = "f", args = { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, expect = 1 },
  { fn = "f", args = "x", expect = 1 },
  { fn = "f", input = print, expect = 1 },
  { fn = "f", input = 1, expect_error = "x" },
}
return M
