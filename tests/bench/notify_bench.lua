-- wrk script for tests/bench/notify_bench.sh: each thread posts its own
-- share of the prepared notifications (every one a different order), once.
local bodies, i, step = {}, 0, 1
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  step = tonumber(args[2])
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  i = tid
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
  i = i + step
  if i > #bodies then i = ((i - 1) % #bodies) + 1 end -- past the end: duplicates (acknowledged, not credited)
  return wrk.format(nil, nil, nil, bodies[i])
end
