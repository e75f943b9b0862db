-- wrk: POST the JSON request body in the environment variable BODY. Each "ASOF" in it is
-- replaced by another instant on every request (from 2026-01-01, after the last demo order
-- line, so the answer stays the same), so that a server's result cache never holds the
-- answer: every request is a miss. ROUND keeps the instants of two runs apart.
local body = os.getenv("BODY")
local round = tonumber(os.getenv("ROUND") or "0")
local started = 0
local counter = 0

function setup(thread)
  thread:set("id", started)
  started = started + 1
end

function request()
  counter = counter + 1
  local t = 1767225600 + round * 10000000 + counter * 16 + (id or 0)
  local b = string.gsub(body, "ASOF", os.date("!%Y-%m-%dT%H:%M:%SZ", t))
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, b)
end
