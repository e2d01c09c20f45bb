-- wrk script: POST submissions to one consultation, each with its own Idempotency-Key.
-- Set by benchmarks/wrk.py through the environment: BENCH_PATH (the submissions URL path),
-- BENCH_EMAIL ("1": submitters leave an address, so each one gets a receipt email).
local threads = {}
local counter = 0
thread_id = 0  -- global: setup() gives each thread its own

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

local path = os.getenv("BENCH_PATH")
local with_email = os.getenv("BENCH_EMAIL") == "1"
local run = tostring(os.time())

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local key = run .. "-" .. thread_id .. "-" .. counter
  local submitter = '{"kind": "resident", "locality": "Gassy"'
  if with_email then
    submitter = submitter .. ', "email": "bench-' .. thread_id .. "-" .. counter .. '@example.org"'
  end
  submitter = submitter .. "}"
  local body = '{"submitter": ' .. submitter .. ', "theme": "social", "title": "Propozycja '
    .. key .. '", "body": "Prosimy o żłobek, chodnik i lepszy autobus do Warszawy. '
    .. 'Treść propozycji mieszkańca, taka jak w prawdziwym formularzu.", '
    .. '"consent": {"processing": true, "contact": false}}'
  local headers = {["Content-Type"] = "application/json", ["Idempotency-Key"] = key}
  return wrk.format(nil, path, headers, body)
end

function done(summary, latency, requests)
  local out = io.open(os.getenv("BENCH_RESULT"), "w")
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "status_errors": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
  out:close()
end
