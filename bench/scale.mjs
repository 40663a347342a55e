// Helpers for bench/scale.sh, in Node.js like bench/groups.mjs. Prints one JSON object per call.
//   node bench/scale.mjs metrics BASE              sums of /metrics (groups, actors, depth, delivered, ...) and the scrape's cost
//   node bench/scale.mjs gc BASE                   forces a full collection on the node; its live heap and working set
//   node bench/scale.mjs load BASE PID A RATE S    posts RATE messages/s for S s, round robin over g0..g{A-1}, at a fixed
//                                                  rate (open loop: a slow node is not offered less), sampling the node
//   node bench/scale.mjs drain BASE ACKED T A      waits up to T s until nothing is pending and the delivered count of
//                                                  g0..g{A-1} (their stats, durable) reaches ACKED
//   node bench/scale.mjs retire BASE T             waits up to T s until no actor is left
import http from "node:http";
import { readFileSync } from "node:fs";

const [mode, base, ...rest] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const body = Buffer.from(JSON.stringify({ data: "x".repeat(1012) }));
const ticksPerSecond = 100; // USER_HZ, which /proc reports CPU time in on Linux.

function request(method, path, payload) {
  return new Promise((resolve) => {
    const req = http.request(`${base}${path}`, { method, agent, headers: payload ? { "content-type": "application/json", "content-length": payload.length } : {} }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
      res.on("error", () => resolve({ status: 0, text: "" }));
    });
    req.on("error", () => resolve({ status: 0, text: "" }));
    req.end(payload);
  });
}

async function metrics() {
  const started = performance.now();
  const { status, text } = await request("GET", "/metrics");
  const scrapeMs = performance.now() - started;
  if (status !== 200) throw new Error(`/metrics answered ${status}`);
  const sums = { depth: 0, delivered: 0, ingested: 0, failed: 0, dead: 0, groups: 0, actors: 0, workingSet: 0, heap: 0 };
  const families = { clusterqueue_queue_depth: "depth", clusterqueue_delivered_total: "delivered", clusterqueue_ingested_total: "ingested", clusterqueue_failed_total: "failed", clusterqueue_dead_total: "dead" };
  const gauges = { clusterqueue_groups: "groups", clusterqueue_active_actors: "actors", clusterqueue_process_working_set_bytes: "workingSet", clusterqueue_gc_heap_bytes: "heap" };
  let lines = 0;
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    lines++;
    const brace = line.indexOf("{");
    const name = brace >= 0 ? line.slice(0, brace) : line.slice(0, line.indexOf(" "));
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    // OpenTelemetry's exporter writes an unlabelled series as name{} value.
    const labelled = brace >= 0 && line[brace + 1] !== "}";
    if (labelled && families[name]) sums[families[name]] += value;
    else if (!labelled && gauges[name]) sums[gauges[name]] = value;
  }
  return { ...sums, lines, bytes: Buffer.byteLength(text), scrapeMs: Math.round(scrapeMs * 10) / 10 };
}

function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime, fields 14 and 15 of the whole line
}

function rssBytes(pid) {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(match[1]) * 1024;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function load(pid, active, rate, seconds) {
  const maxInFlight = 512;
  const statuses = {};
  let sent = 0, acknowledged = 0, inFlight = 0, skipped = 0;
  const samples = [];
  let sampling = false;
  const started = performance.now();
  const cpuStart = cpuTicks(pid);
  let lastSample = { at: started, ticks: cpuStart };
  const post = async (group) => {
    inFlight++;
    const { status } = await request("POST", `/hooks/g${group}`, body);
    inFlight--;
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (status === 202) acknowledged++;
  };
  const sample = async () => {
    sampling = true;
    try {
      const m = await metrics();
      const now = performance.now();
      const ticks = cpuTicks(pid);
      samples.push({ t: Math.round((now - started) / 100) / 10, cores: (ticks - lastSample.ticks) / ticksPerSecond / ((now - lastSample.at) / 1000), rss: rssBytes(pid), ...m });
      lastSample = { at: now, ticks };
    } catch (e) {
      samples.push({ t: (performance.now() - started) / 1000, error: String(e) });
    } finally {
      sampling = false;
    }
  };
  let nextSample = started + 2000;
  while (true) {
    const now = performance.now();
    const elapsed = (now - started) / 1000;
    if (elapsed >= seconds) break;
    const due = Math.floor(elapsed * rate) - sent - skipped;
    for (let i = 0; i < due; i++) {
      // Open loop: a request that cannot be sent in time is counted, not queued, so the offered rate stays fixed.
      if (inFlight >= maxInFlight) skipped++;
      else post((sent++) % active);
    }
    if (now >= nextSample && !sampling) {
      nextSample += 2000;
      sample();
    }
    await sleep(2);
  }
  const offeredFor = (performance.now() - started) / 1000;
  while (inFlight > 0 || sampling) await sleep(5);
  const cpu = (cpuTicks(pid) - cpuStart) / ticksPerSecond;
  const ok = samples.filter((s) => !s.error);
  const max = (k) => Math.max(...ok.map((s) => s[k]));
  return {
    seconds: offeredFor, sent, acknowledged, skipped, statuses, achievedRate: acknowledged / offeredFor,
    cpuSeconds: cpu, cores: cpu / offeredFor,
    maxDepth: max("depth"), lastDepth: ok.at(-1)?.depth, maxActors: max("actors"), maxRss: max("rss"), maxHeap: max("heap"),
    maxScrapeMs: max("scrapeMs"), samples,
  };
}

// Durable totals of g0..g{A-1} from GET /v1/groups/{id}/stats, 32 at a time.
async function totals(active) {
  const sums = { delivered: 0, ingested: 0 };
  let next = 0;
  const worker = async () => {
    while (next < active) {
      const { status, text } = await request("GET", `/v1/groups/g${next++}/stats`);
      if (status !== 200) throw new Error(`stats answered ${status}`);
      const stats = JSON.parse(text);
      sums.delivered += stats.delivered;
      sums.ingested += stats.ingested;
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  return sums;
}

async function waitFor(seconds, done) {
  const started = performance.now();
  let last;
  while ((performance.now() - started) / 1000 < seconds) {
    last = await metrics();
    if (done(last)) return { ok: true, seconds: (performance.now() - started) / 1000, ...last };
    await sleep(250);
  }
  return { ok: false, seconds, ...last };
}

let result;
if (mode === "metrics") result = await metrics();
else if (mode === "gc") {
  const { status, text } = await request("POST", "/v1/debug/gc");
  if (status !== 200) throw new Error(`/v1/debug/gc answered ${status}`);
  result = JSON.parse(text);
} else if (mode === "load") result = await load(Number(rest[0]), Number(rest[1]), Number(rest[2]), Number(rest[3]));
else if (mode === "drain") {
  // The backlog gauges are exact, but past Observability:MaxGroupSeries the counters of groups not named are summed
  // under group="(other)", where a sum over the series counts a group's events twice once it is named again: the
  // totals come from each active group's stats instead, once nothing is pending.
  const [acked, seconds, active] = rest.map(Number);
  const started = performance.now();
  while (true) {
    const m = await metrics();
    const elapsed = (performance.now() - started) / 1000;
    if (m.depth === 0) {
      result = { ...m, ...(await totals(active)), seconds: elapsed };
      result.ok = result.delivered >= acked;
    } else result = { ...m, ok: false, seconds: elapsed };
    if (result.ok || elapsed >= seconds) break;
    await sleep(250);
  }
} else if (mode === "retire") result = await waitFor(Number(rest[0]), (m) => m.actors === 0);
else {
  console.error("usage: scale.mjs metrics|gc|load|drain|retire BASE ...");
  process.exit(2);
}
console.log(JSON.stringify(result));
agent.destroy();
