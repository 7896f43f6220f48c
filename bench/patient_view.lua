-- wrk script for bench/bench_service.py: POST the example patient-view request with a fresh
-- hookInstance per request (each is audited, as in production) and report percentiles.
local body = nil
local counter = 0
local template = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"

function init(args)
  local f = assert(io.open(args[1], "r"))
  body = f:read("*a")
  f:close()
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8), 16) or 0))
end

function request()
  counter = counter + 1
  local id = string.format("wrk-%08x-%08x", math.random(0, 0x7fffffff), counter)
  local b = body:gsub(template:gsub("%-", "%%-"), id, 1)
  return wrk.format("POST", "/cds-services/hypertension-treatment",
                    {["Content-Type"] = "application/json"}, b)
end

function done(summary, latency, requests)
  io.write(string.format("WRK {\"requests\": %d, \"errors\": %d, \"p50_ms\": %.3f, " ..
    "\"p99_ms\": %.3f, \"duration_s\": %.3f}\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.duration / 1e6))
end
