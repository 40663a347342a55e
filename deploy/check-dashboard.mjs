#!/usr/bin/env node
// Checks a Grafana dashboard's JSON offline, before any Grafana imports it.
//
//   node deploy/check-dashboard.mjs DASHBOARD.json RULES_OUT.yaml
//
// The shape Grafana needs to import it: a title, a uid, a schemaVersion, a datasource variable every query goes
// through (so the dashboard works whatever the Prometheus data source is called), panels with unique ids, a type
// and a title, gridPos inside the 24-column grid without overlaps, and each query panel with at least one target
// carrying an expression and a refId unique in its panel. Every expression, with Grafana's variables given sample
// values, is written to RULES_OUT.yaml as a recording rule, for `promtool check rules` to parse as PromQL.
// One line per finding; exit status 0 when there is none, 1 otherwise.

import { readFileSync, writeFileSync } from "node:fs";

const [file, rulesOut] = process.argv.slice(2);
if (!file || !rulesOut) {
  console.error("usage: check-dashboard.mjs DASHBOARD.json RULES_OUT.yaml");
  process.exit(2);
}

const errors = [];
let dashboard;
try {
  dashboard = JSON.parse(readFileSync(file, "utf8"));
} catch (e) {
  console.log(`FAIL ${file}: not JSON: ${e.message}`);
  process.exit(1);
}

const PANEL_TYPES = new Set(["row", "timeseries", "stat", "table", "gauge", "bargauge", "text", "heatmap"]);
const isInt = (n) => Number.isInteger(n) && n >= 0;

if (typeof dashboard.title !== "string" || dashboard.title === "") errors.push("title is required");
if (typeof dashboard.uid !== "string" || !/^[A-Za-z0-9_-]{1,40}$/.test(dashboard.uid)) errors.push("uid must be 1-40 letters, digits, '-' or '_'");
if (!Number.isInteger(dashboard.schemaVersion) || dashboard.schemaVersion < 36) errors.push("schemaVersion must be 36 or later");
const variables = dashboard.templating?.list ?? [];
const datasource = variables.find((v) => v.type === "datasource" && v.query === "prometheus");
if (!datasource) errors.push("templating needs a datasource variable of type prometheus");
const datasourceRef = datasource ? `\${${datasource.name}}` : null;
const names = new Set(variables.map((v) => v.name));

if (!Array.isArray(dashboard.panels) || dashboard.panels.length === 0) errors.push("panels must be a non-empty list");
const ids = new Set();
const cells = new Map();
const expressions = [];
for (const panel of dashboard.panels ?? []) {
  const where = `panel ${panel.id ?? "?"} (${panel.title ?? "untitled"})`;
  if (!Number.isInteger(panel.id)) errors.push(`${where}: id must be an integer`);
  else if (ids.has(panel.id)) errors.push(`${where}: id is used twice`);
  ids.add(panel.id);
  if (!PANEL_TYPES.has(panel.type)) errors.push(`${where}: type ${panel.type} is not one this project uses`);
  if (typeof panel.title !== "string" || panel.title === "") errors.push(`${where}: title is required`);
  const g = panel.gridPos ?? {};
  if (![g.x, g.y, g.w, g.h].every(isInt) || g.w < 1 || g.h < 1 || g.x + g.w > 24) {
    errors.push(`${where}: gridPos must be whole x, y, w, h within 24 columns`);
  } else {
    for (let x = g.x; x < g.x + g.w; x++) {
      for (let y = g.y; y < g.y + g.h; y++) {
        const other = cells.get(`${x},${y}`);
        if (other !== undefined) errors.push(`${where}: overlaps panel ${other} at column ${x}, row ${y}`);
        cells.set(`${x},${y}`, panel.id);
      }
    }
  }
  if (panel.type === "row" || panel.type === "text") continue;
  if (panel.datasource?.uid !== datasourceRef) errors.push(`${where}: datasource must be ${datasourceRef}`);
  if (!Array.isArray(panel.targets) || panel.targets.length === 0) {
    errors.push(`${where}: no targets`);
    continue;
  }
  const refIds = new Set();
  for (const target of panel.targets) {
    if (typeof target.refId !== "string" || refIds.has(target.refId)) errors.push(`${where}: each target needs a refId of its own`);
    refIds.add(target.refId);
    if (target.datasource?.uid !== datasourceRef) errors.push(`${where}, target ${target.refId}: datasource must be ${datasourceRef}`);
    if (typeof target.expr !== "string" || target.expr.trim() === "") {
      errors.push(`${where}, target ${target.refId}: expr is required`);
      continue;
    }
    for (const used of target.expr.matchAll(/\$(?:\{)?([A-Za-z_][A-Za-z0-9_]*)/g)) {
      if (!names.has(used[1]) && !used[1].startsWith("__")) errors.push(`${where}, target ${target.refId}: uses $${used[1]}, which is no variable of the dashboard`);
    }
    expressions.push({ where: `${panel.id}-${target.refId}`, expr: target.expr });
  }
}

// Grafana's built-in intervals and the dashboard's variables, given values PromQL accepts.
const sample = (expr) =>
  expr.replaceAll("$__rate_interval", "5m").replaceAll("$__interval", "1m").replaceAll("$__range", "1h").replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/g, ".*");
const rules = ["groups:", "  - name: dashboard-expressions", "    rules:"];
for (const { where, expr } of expressions) {
  rules.push(`      - record: dashboard:panel_${where.replace(/[^A-Za-z0-9]/g, "_")}`);
  rules.push(`        expr: ${JSON.stringify(sample(expr))}`);
}
writeFileSync(rulesOut, rules.join("\n") + "\n");

if (errors.length) {
  for (const e of errors) console.log(`FAIL ${file}: ${e}`);
  process.exit(1);
}
console.log(`ok   ${file}: ${dashboard.panels.length} panels, ${expressions.length} expressions (their PromQL goes to promtool)`);
