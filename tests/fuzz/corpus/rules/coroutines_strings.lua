local M = {}
function M.co(ctx)
  local co = coroutine and coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
  return co and co() or "no coroutines"
end
function M.str(ctx)
  local s = ("%5.2f|%q|%s"):format(1.5, "a\0b", ctx.name)
  return { s:upper(), s:len(), string.rep("-", 3, ","), utf8.char(233, 0x4e2d), utf8.len("été"),
           ("a,b,,c"):gsub(",", ";"), ("x=1"):match("(%w+)=(%d+)"), tostring(math.pi) }
end
function M.sort(ctx)
  local t = { 5, 3, 9, 1 }
  table.sort(t, function(a, b) return a > b end)
  return table.concat(t, " ")
end
return M
