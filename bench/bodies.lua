-- wrk script: every request a distinct BatchCallRequest, so deduplication never replays one.
--
-- wrk -t1 -c32 -d10s -s bench/bodies.lua URL -- RUN REPEAT STOP LOOKUP DRIVERS TRIPS MARKER
--   RUN      a number unique to this wrk run (keeps bodies distinct across runs)
--   REPEAT   share of requests (0-1) that resend one of the last 64 requests with its
--            Idempotency-Key; 0 sends no Idempotency-Key at all (body deduplication only)
--   STOP     stop after this many responses (0: run for the whole duration); wrk itself
--            still sleeps out its duration, so the script then creates the file MARKER and
--            the caller interrupts wrk (SIGINT), which makes it report at once
--   LOOKUP   none: a driver with no trip; trip: a random existing trip by id;
--            driver: a random existing driver, no trip id (their most recent trip)
--   DRIVERS, TRIPS  how many drivers and trips the database holds (trip i has driver i % DRIVERS)
-- Prints one line "BENCH-RESULT {json}" with the counts and latency percentiles (microseconds).

local run, repeat_share, stop_after, lookup, drivers, trips = 0, 0, 0, "none", 1, 1
local marker = nil
local counter, responses, stored = 0, 0, 0
statuses = {} -- global: done() reads it through thread:get
local recent, recent_keys, recent_size = {}, {}, 64
-- Fictional 555-01xx numbers over many area codes: a few thousand distinct numbers.
local area_codes = {
  201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217, 218, 219, 224,
  225, 228, 229, 231, 234, 239, 240, 248, 251, 252, 253, 254, 256, 260, 262, 267, 269, 270,
  276, 281, 301, 302, 303, 304, 305, 307, 308, 309, 310, 312, 313, 314, 315, 316, 317, 318,
}
local headers = { ["Content-Type"] = "application/json" }
local template = '{"callType":"violation","timestamp":"%s","drivers":[{"driverId":"%s",'
  .. '"driverName":"Bench Driver","phoneNumber":"(%d) 555-01%02d",'
  .. '"customRules":"Receiver closes at 6 PM.","violations":{"tripId":"%s",'
  .. '"violationDetails":[{"type":"VIOLATION","description":"Temperature not equal to set point"},'
  .. '{"type":"VIOLATION","description":"Fuel lower than required percentage"},'
  .. '{"type":"REMINDER","description":"Send seal pictures"}]}}]}'

function init(args)
  run = tonumber(args[1] or "0")
  repeat_share = tonumber(args[2] or "0")
  stop_after = tonumber(args[3] or "0")
  lookup = args[4] or "none"
  drivers = tonumber(args[5] or "1")
  trips = tonumber(args[6] or "1")
  marker = args[7]
  math.randomseed(run)
end

local function timestamp(n)
  -- RUN picks the day and hour, the counter the microseconds: unique for 3.6e9 requests.
  local us = n % 1000000
  local seconds = math.floor(n / 1000000)
  return string.format("2026-%02d-%02dT%02d:%02d:%02d.%06dZ", 1 + run % 12,
    1 + math.floor(run / 12) % 28, math.floor(run / 336) % 24, math.floor(seconds / 60) % 60,
    seconds % 60, us)
end

local function new_body(n)
  local driver, trip = string.format("BENCH-%d-%d", run, n), ""
  if lookup == "trip" then
    local t = math.random(0, trips - 1)
    trip = string.format("TRP-%07d", t)
    driver = string.format("DRV-%05d", t % drivers)
  elseif lookup == "driver" then
    driver = string.format("DRV-%05d", math.random(0, drivers - 1))
  end
  local area = area_codes[1 + math.floor(n / 100) % #area_codes]
  return string.format(template, timestamp(n), driver, area, n % 100, trip)
end

function request()
  counter = counter + 1
  if repeat_share > 0 and stored > 0 and math.random() < repeat_share then
    local i = math.random(1, math.min(stored, recent_size))
    headers["Idempotency-Key"] = recent_keys[i]
    return wrk.format("POST", nil, headers, recent[i])
  end
  local body = new_body(counter)
  if repeat_share > 0 then
    local key = string.format("bench-%d-%d", run, counter)
    local slot = 1 + stored % recent_size
    stored = stored + 1
    recent[slot], recent_keys[slot] = body, key
    headers["Idempotency-Key"] = key
  end
  return wrk.format("POST", nil, headers, body)
end

function response(status, _, _)
  responses = responses + 1
  statuses[status] = (statuses[status] or 0) + 1
  if stop_after > 0 and responses == stop_after then
    wrk.thread:stop()
    if marker then
      local file = io.open(marker, "w")
      file:write("done\n")
      file:close()
    end
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, _)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(counts) do
    table.insert(parts, string.format('"%d":%d', status, count))
  end
  io.write(string.format(
    'BENCH-RESULT {"requests":%d,"duration_us":%d,"socket_errors":%d,"p50_us":%d,'
      .. '"p99_us":%d,"max_us":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, table.concat(parts, ",")))
end
