// Group set-up for the benchmarks, in Node.js (already needed for the test tools): PUTs or PATCHes groups g0..g{G-1}
// with one body from C concurrent workers, and prints how long it took as JSON.
// Usage: node bench/groups.mjs put|patch BASE G C BODY
const [mode, base, ...rest] = process.argv.slice(2);

async function pool(count, concurrency, work) {
  let next = 0;
  let failures = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      try {
        if (!(await work(i))) failures++;
      } catch {
        failures++;
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { seconds: (performance.now() - started) / 1000, failures };
}

if (mode === "put" || mode === "patch") {
  const [groups, concurrency] = rest.slice(0, 2).map(Number);
  const definition = rest[2];
  const result = await pool(groups, concurrency, async (i) => {
    const response = await fetch(`${base}/v1/groups/g${i}`, { method: mode.toUpperCase(), body: definition, headers: { "content-type": "application/json" } });
    await response.arrayBuffer();
    return response.status === 200 || response.status === 201;
  });
  if (result.failures > 0) {
    console.error(`${result.failures} of ${groups} ${mode} requests failed`);
    process.exit(1);
  }
  console.log(JSON.stringify(result));
} else {
  console.error("usage: load.mjs put|patch BASE GROUPS CONCURRENCY BODY");
  process.exit(2);
}
