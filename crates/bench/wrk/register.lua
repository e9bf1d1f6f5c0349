-- wrk: each request registers the first version of a new model (names unique per thread and
-- request), as a client of `steward serve` would. Token from STEWARD_TOKEN, manifest from the
-- first script argument. Non-201 answers are counted and printed at the end.
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1] or "examples/credit-risk-v1.json", "r"))
  body = f:read("*a")
  f:close()
  n = 0
  refused = 0
  headers = {
    ["Authorization"] = "Bearer " .. os.getenv("STEWARD_TOKEN"),
    ["Content-Type"] = "application/json",
  }
end

function request()
  n = n + 1
  local name = string.format("wrk-%d-%d-%d", tid, os.time() % 100000, n)
  return wrk.format("POST", "/v1/models/" .. name .. "/versions", headers, body)
end

function response(status, headers, body)
  if status ~= 201 then refused = refused + 1 end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("refused") end
  io.write(string.format("not 201: %d\n", total))
end
