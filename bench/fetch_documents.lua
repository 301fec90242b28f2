-- wrk script: request every package document named in a file, in turn, as pnpm does
-- (its abbreviated Accept header, and gzip).
--   wrk -t 1 -c 8 -d 10s -s bench/fetch_documents.lua http://127.0.0.1:PORT -- NAMES_FILE
-- Each thread walks the whole list round and round from its own starting point.
-- At the end prints one line of JSON: requests, seconds, bytes (read, headers included),
-- failures (connect, read, write and timeout errors, and statuses other than 2xx/3xx).
local paths, index, threads = {}, 0, 0
local headers = {
  ["Accept"] = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
  ["Accept-Encoding"] = "gzip",
}

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then table.insert(paths, "/" .. line:gsub("/", "%%2f")) end
  end
  index = (id * 7919) % #paths
end

function request()
  index = index % #paths + 1
  return wrk.format("GET", paths[index], headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "seconds": %.6f, "bytes": %d, "failures": %d}\n',
    summary.requests, summary.duration / 1e6, summary.bytes,
    e.connect + e.read + e.write + e.timeout + e.status))
end
