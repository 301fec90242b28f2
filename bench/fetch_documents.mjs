// Fetch every package document named in a file, as clients do, N at a time.
//   node fetch_documents.mjs BASE_URL NAMES_FILE corgi|full CONCURRENCY
// corgi: the abbreviated Accept header pnpm sends, and gzip; full: plain JSON, no compression.
// Prints {"requests", "seconds", "bytes" (body bytes as sent), "failures"} as JSON.
import fs from "node:fs";
import http from "node:http";

const [base, namesFile, mode, concurrency] = process.argv.slice(2);
const names = fs.readFileSync(namesFile, "utf8").split("\n").filter(Boolean);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(concurrency) });
const headers =
  mode === "corgi"
    ? { accept: "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*", "accept-encoding": "gzip" }
    : { accept: "application/json" };

let next = 0, bytes = 0, failures = 0;
function get(name) {
  return new Promise((resolve) => {
    const url = base + name.replace("/", "%2f");
    http.get(url, { agent, headers }, (res) => {
      if (res.statusCode !== 200) failures++;
      res.on("data", (chunk) => { bytes += chunk.length; });
      res.on("end", resolve);
    }).on("error", () => { failures++; resolve(); });
  });
}
async function worker() {
  while (next < names.length) await get(names[next++]);
}
const started = process.hrtime.bigint();
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
agent.destroy();
console.log(JSON.stringify({ requests: names.length, seconds, bytes, failures }));
