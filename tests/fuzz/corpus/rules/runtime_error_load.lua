local M = {}
error("refusing to load: " .. tostring(nil))
return M
