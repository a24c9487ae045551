local M = {}
function M.nan(ctx) return 0/0 end
function M.inf(ctx) return { x = 1/0 } end
function M.fn(ctx) return print end
function M.mixed(ctx) return { 1, 2, x = 3 } end
function M.holes(ctx) local t = { 1 }; t[3] = 3; return t end
function M.cycle(ctx) local t = {}; t.t = t; return t end
function M.badutf8(ctx) return "\xff\xfe" end
function M.floatkey(ctx) return { [1.5] = 1 } end
function M.ctx(ctx) return ctx end
function M.deep(ctx) local t = {} for i = 1, 100 do t = { t } end return t end
return M
