#!/usr/bin/env node
// Checks rendered Kubernetes manifests offline, before any cluster sees them.
//
//   node deploy/validate-manifests.mjs [--label NAME] FILE|-      (multi-document YAML; `-` reads standard input)
//
// For each object:
//   - its apiVersion/kind must be in KINDS below: a kind this project does not expect is an error, not a pass;
//   - it is validated against the Kubernetes OpenAPI schema through kubernetes-models (types, required fields, enums);
//   - every field must exist in that schema. kubernetes-models' validators accept unknown fields, so a mis-indented or
//     misspelt field (which the API server would reject, or silently drop) is found here by walking the field lists
//     of kubernetes-models' type declarations;
//   - custom resources it has no model for (the Prometheus Operator's) get a structural check only: apiVersion,
//     kind, metadata.name and a spec object. This is said in the output.
// Then, over the whole render, rules of ClusterQueue's own (clusterQueueRules below): the grace period covers the
// node's drain, several replicas need the postgres store, and a node with Kubernetes discovery gets what it needs
// from the render (named ports, headless Service, RBAC to list pods, its pod IP, a token).
//   --expect-kubernetes-discovery   also fail unless some ClusterQueue container has ClusterQueue__Cluster__Discovery=Kubernetes
// Needs `npm ci --prefix tools` (kubernetes-models and yaml). Exit status 0 when every object passes, 1 otherwise.

import { readFileSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createRequire } from "node:module";

const tools = resolve(dirname(fileURLToPath(import.meta.url)), "..", "tools");
const modules = join(tools, "node_modules");
if (!existsSync(join(modules, "kubernetes-models")) || !existsSync(join(modules, "yaml"))) {
  console.error("validate-manifests: run `npm ci --prefix tools` first (kubernetes-models and yaml are missing)");
  process.exit(2);
}
const YAML = createRequire(join(tools, "package.json"))("yaml");

// apiVersion/kind -> module under kubernetes-models. Only what a ClusterQueue deployment renders or plausibly will
// (kustomize, the Helm chart, a chart test hook); anything else is reported so that it is looked at, then added here.
const KINDS = {
  "v1/ConfigMap": "v1/ConfigMap",
  "v1/Secret": "v1/Secret",
  "v1/Service": "v1/Service",
  "v1/ServiceAccount": "v1/ServiceAccount",
  "v1/Namespace": "v1/Namespace",
  "v1/PersistentVolumeClaim": "v1/PersistentVolumeClaim",
  "v1/Pod": "v1/Pod",
  "apps/v1/Deployment": "apps/v1/Deployment",
  "apps/v1/StatefulSet": "apps/v1/StatefulSet",
  "batch/v1/Job": "batch/v1/Job",
  "policy/v1/PodDisruptionBudget": "policy/v1/PodDisruptionBudget",
  "autoscaling/v2/HorizontalPodAutoscaler": "autoscaling/v2/HorizontalPodAutoscaler",
  "networking.k8s.io/v1/Ingress": "networking.k8s.io/v1/Ingress",
  "networking.k8s.io/v1/NetworkPolicy": "networking.k8s.io/v1/NetworkPolicy",
  "rbac.authorization.k8s.io/v1/Role": "rbac.authorization.k8s.io/v1/Role",
  "rbac.authorization.k8s.io/v1/RoleBinding": "rbac.authorization.k8s.io/v1/RoleBinding",
};
// Custom resources kubernetes-models has no schema for.
const STRUCTURAL_ONLY = new Set(["monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PodMonitor", "monitoring.coreos.com/v1/PrometheusRule"]);

// ---- field lists from kubernetes-models' .d.ts files ----------------------------------------------------------
// Each model's declaration file has one `export interface I<Name> { "field"?: Type; ... }` with the fields at four
// spaces of indentation, and imports naming the file of every referenced type. A referenced file that declares an
// interface is descended into; one that declares only a type alias (Quantity, IntOrString, Time) is a leaf.
const declarations = new Map();

function resolveImport(fromFile, specifier) {
  if (specifier.startsWith(".")) return resolve(dirname(fromFile), specifier.replace(/\.js$/, ".d.ts"));
  return join(modules, specifier.replace(/\.js$/, "") + ".d.ts");
}

function parseType(text, imports) {
  const t = text.trim().replace(/;$/, "");
  let m = /^Array<(\w+)>$/.exec(t);
  if (m && imports.has(m[1])) return { ref: imports.get(m[1]), array: true };
  if (imports.has(t)) return { ref: imports.get(t), array: false };
  return null; // a primitive, a literal union, an array of primitives: nothing to descend into
}

function fieldsOf(file) {
  if (declarations.has(file)) return declarations.get(file);
  const text = readFileSync(file, "utf8");
  const imports = new Map();
  for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) imports.set(m[1], resolveImport(file, m[2]));
  const lines = text.split("\n");
  const start = lines.findIndex((l) => /^export interface I\w+( extends [\w, ]+)? \{$/.test(l));
  if (start < 0) {
    declarations.set(file, null); // a type alias: a leaf
    return null;
  }
  const fields = new Map();
  for (let i = start + 1; i < lines.length && lines[i] !== "}"; i++) {
    const m = /^ {4}"([^"]+)"\??: (.*)$/.exec(lines[i]);
    if (!m) continue;
    if (m[2] === "{") {
      // An inline object: a map (`[key: string]: T`), checked value by value when T is a model type.
      const inner = /^ {8}\[key: string\]: (.*)$/.exec(lines[i + 1] ?? "");
      const value = inner ? parseType(inner[1], imports) : null;
      fields.set(m[1], value ? { map: value } : {});
      while (i < lines.length && lines[i] !== "    };") i++;
    } else {
      fields.set(m[1], parseType(m[2], imports) ?? {});
    }
  }
  if (fields.size === 0) throw new Error(`no fields read from ${file}: kubernetes-models' layout changed?`);
  declarations.set(file, fields);
  return fields;
}

function unknownFields(value, file, path, errors) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return;
  const fields = fieldsOf(file);
  if (!fields) return;
  for (const [key, child] of Object.entries(value)) {
    const here = path ? `${path}.${key}` : key;
    const field = fields.get(key);
    if (!field) {
      errors.push(`unknown field ${here}`);
      continue;
    }
    if (field.ref && field.array && Array.isArray(child)) child.forEach((item, i) => unknownFields(item, field.ref, `${here}[${i}]`, errors));
    else if (field.ref && !field.array) unknownFields(child, field.ref, here, errors);
    else if (field.map && child && typeof child === "object") {
      for (const [k, v] of Object.entries(child)) {
        if (field.map.array && Array.isArray(v)) v.forEach((item, i) => unknownFields(item, field.map.ref, `${here}.${k}[${i}]`, errors));
        else if (!field.map.array) unknownFields(v, field.map.ref, `${here}.${k}`, errors);
      }
    }
  }
}

// The API server decodes base64 with Go's decoder, which skips line breaks; kustomize folds long Secret values over
// several lines. The schema's "byte" format does not allow them, so they are taken out before the schema check.
function forSchema(obj) {
  if (obj.apiVersion !== "v1" || obj.kind !== "Secret" || !obj.data || typeof obj.data !== "object") return obj;
  const data = Object.fromEntries(Object.entries(obj.data).map(([k, v]) => [k, typeof v === "string" ? v.replace(/[\r\n]/g, "") : v]));
  return { ...obj, data };
}

// ---- one object ----------------------------------------------------------------------------------------------
async function check(obj) {
  const errors = [];
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) return { id: "(not an object)", errors: ["a document is not a mapping"] };
  const { apiVersion, kind } = obj;
  const id = `${kind ?? "?"}/${obj.metadata?.name ?? "?"}`;
  if (typeof apiVersion !== "string" || typeof kind !== "string") return { id, errors: ["apiVersion and kind are required"] };
  if (typeof obj.metadata?.name !== "string" || obj.metadata.name === "") errors.push("metadata.name is required");
  const key = `${apiVersion}/${kind}`;

  if (STRUCTURAL_ONLY.has(key)) {
    if (obj.spec === null || typeof obj.spec !== "object" || Array.isArray(obj.spec)) errors.push("spec must be an object");
    // The rules themselves are checked by promtool (deploy/check.sh); here only that the file became spec.groups.
    else if (kind === "PrometheusRule" && !(Array.isArray(obj.spec.groups) && obj.spec.groups.length > 0)) errors.push("spec.groups must be a non-empty list");
    return { id, errors, structural: true };
  }
  const model = KINDS[key];
  if (!model) return { id, errors: [`${key} is not a kind this validator knows (add it to KINDS in deploy/validate-manifests.mjs if it is meant to be there)`] };

  const module = await import(pathToFileURL(join(modules, "kubernetes-models", `${model}.js`)).href);
  try {
    new module[kind](forSchema(obj)).validate();
  } catch (e) {
    if (!Array.isArray(e.errors)) throw e;
    for (const err of e.errors) errors.push(`${err.instancePath || "/"} ${err.message}${err.params?.allowedValues ? ` (${err.params.allowedValues.join(", ")})` : ""}`);
  }
  unknownFields(obj, join(modules, "kubernetes-models", `${model}.d.ts`), "", errors);
  return { id, errors };
}

// ---- what ClusterQueue itself needs of a workload running it -----------------------------------------------------
// A container is a ClusterQueue node when its configuration (env, or a ConfigMap of the same render through envFrom)
// has ClusterQueue__ keys. Rules that no schema knows:
//   - the pod's grace period covers the preStop pause plus the node's shutdown budget (DrainTimeout + 10 s), or the
//     kubelet kills the node in the middle of its drain;
//   - more than one replica needs the postgres store: with SQLite each pod would be a separate embedded node with its
//     own data;
//   - with ClusterQueue__Cluster__Discovery=Kubernetes, what discovery needs (kubernetesDiscoveryRules below).
function seconds(timeSpan) {
  const m = /^(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)$/.exec(String(timeSpan).trim());
  return m ? (Number(m[1] ?? 0) * 86400 + Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4])) : null;
}

// Equality-based label selector ("k=v,k2==v2") as the node's PodLabelSelector takes it; null when set-based.
function parseSelector(text) {
  const pairs = {};
  for (const part of String(text).split(",")) {
    const m = /^\s*([^=!\s]+)\s*==?\s*([^=!\s]*)\s*$/.exec(part);
    if (!m) return null;
    pairs[m[1]] = m[2];
  }
  return pairs;
}

const matches = (selector, labels) => Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);

// What a node with ClusterQueue__Cluster__Discovery=Kubernetes needs from the same render: the pods API must list its
// pods (RBAC, a token, the label), the others must reach its named ports at its pod IP, and a headless Service must
// publish those ports before the pods are ready (a node is ready only once it has joined).
function kubernetesDiscoveryRules(objects, w, c, env, rawEnv, id) {
  const errors = [];
  const pod = w.spec?.template?.spec ?? {};
  const labels = w.spec?.template?.metadata?.labels ?? {};
  const ports = Object.fromEntries((c.ports ?? []).map((p) => [p.name, p.containerPort]));

  const remoting = Number(env.ClusterQueue__Cluster__RemotingPort ?? 0);
  if (!remoting) errors.push(`${id}: Kubernetes discovery needs a fixed ClusterQueue__Cluster__RemotingPort (the container port named remoting)`);
  else if (ports.remoting !== remoting) errors.push(`${id}: container port 'remoting' must be ClusterQueue__Cluster__RemotingPort ${remoting} (got ${ports.remoting ?? "none"})`);
  const management = Number(env.ClusterQueue__Cluster__Kubernetes__ManagementPort ?? 8558);
  if (ports.management !== management) {
    errors.push(`${id}: container port 'management' must be ClusterQueue__Cluster__Kubernetes__ManagementPort ${management} (got ${ports.management ?? "none"}): the other pods find this one by that name`);
  }

  const publicHost = rawEnv.ClusterQueue__Cluster__PublicHostname;
  if (publicHost?.valueFrom?.fieldRef?.fieldPath !== "status.podIP") {
    errors.push(`${id}: ClusterQueue__Cluster__PublicHostname must come from the downward API (fieldRef status.podIP): the pod's IP is how the others reach it`);
  }

  const selector = parseSelector(env.ClusterQueue__Cluster__Kubernetes__PodLabelSelector ?? "app.kubernetes.io/name=clusterqueue");
  if (selector === null) errors.push(`${id}: ClusterQueue__Cluster__Kubernetes__PodLabelSelector must be key=value pairs for this check`);
  else if (!matches(selector, labels)) errors.push(`${id}: the pod's labels do not match ClusterQueue__Cluster__Kubernetes__PodLabelSelector ${env.ClusterQueue__Cluster__Kubernetes__PodLabelSelector ?? "(default)"}: discovery would not find its own pods`);

  const account = pod.serviceAccountName ?? "default";
  const serviceAccount = objects.find((o) => o?.kind === "ServiceAccount" && o.metadata?.name === account);
  if (pod.automountServiceAccountToken === false || (pod.automountServiceAccountToken === undefined && serviceAccount?.automountServiceAccountToken === false)) {
    errors.push(`${id}: the pod gets no service-account token (automountServiceAccountToken): it cannot list pods`);
  }
  const readers = new Set(objects.filter((o) => o?.kind === "Role" && (o.rules ?? []).some((r) =>
    (r.apiGroups ?? []).includes("") && (r.resources ?? []).includes("pods") && ["get", "watch", "list"].every((v) => (r.verbs ?? []).includes(v))))
    .map((o) => o.metadata?.name));
  const bound = objects.some((o) => o?.kind === "RoleBinding" && o.roleRef?.kind === "Role" && readers.has(o.roleRef?.name)
    && (o.subjects ?? []).some((s) => s.kind === "ServiceAccount" && s.name === account));
  if (!bound) errors.push(`${id}: no Role with get, watch and list on pods bound (RoleBinding) to its service account ${account}`);

  const targets = (p) => [p.targetPort, p.port];
  const headless = objects.filter((o) => o?.kind === "Service" && o.spec?.clusterIP === "None" && o.spec?.publishNotReadyAddresses === true
    && Object.keys(o.spec?.selector ?? {}).length > 0 && matches(o.spec.selector, labels));
  const covers = (svc, name, number) => (svc.spec?.ports ?? []).some((p) => targets(p).includes(name) || (p.targetPort ?? p.port) === number);
  if (!headless.some((svc) => covers(svc, "remoting", remoting) && covers(svc, "management", management))) {
    errors.push(`${id}: no headless Service (clusterIP: None, publishNotReadyAddresses: true) selecting its pods with the remoting and management ports`);
  }
  return errors;
}

function clusterQueueRules(objects, expectKubernetesDiscovery) {
  const errors = [];
  let discovering = 0;
  const configMaps = new Map(objects.filter((o) => o?.apiVersion === "v1" && o.kind === "ConfigMap").map((o) => [o.metadata?.name, o.data ?? {}]));
  const autoscaled = new Set(objects.filter((o) => o?.kind === "HorizontalPodAutoscaler").map((o) => o.spec?.scaleTargetRef?.name));
  for (const w of objects.filter((o) => ["Deployment", "StatefulSet"].includes(o?.kind))) {
    const pod = w.spec?.template?.spec ?? {};
    for (const c of pod.containers ?? []) {
      const env = {};
      const rawEnv = {};
      for (const from of c.envFrom ?? []) Object.assign(env, configMaps.get(from.configMapRef?.name) ?? {});
      for (const e of c.env ?? []) {
        env[e.name] = "value" in e ? e.value : "(from a reference)";
        rawEnv[e.name] = e;
      }
      if (!Object.keys(env).some((k) => k.startsWith("ClusterQueue__"))) continue;
      const id = `${w.kind}/${w.metadata?.name} container ${c.name}`;

      const drainText = env.ClusterQueue__Processing__DrainTimeout ?? "00:00:20";
      const drain = seconds(drainText);
      if (drain === null) errors.push(`${id}: ClusterQueue__Processing__DrainTimeout '${drainText}' is not a time span (hh:mm:ss)`);
      else {
        const pause = c.lifecycle?.preStop?.sleep?.seconds ?? 0;
        const grace = pod.terminationGracePeriodSeconds ?? 30;
        if (pause + drain + 10 > grace) {
          errors.push(`${id}: terminationGracePeriodSeconds ${grace} < preStop ${pause} s + DrainTimeout ${drain} s + 10 s: the node would be killed mid-drain`);
        }
      }
      const store = (env.ClusterQueue__Store ?? "sqlite").toLowerCase();
      const replicas = w.spec?.replicas ?? 1;
      if (store === "sqlite" && (replicas > 1 || autoscaled.has(w.metadata?.name))) {
        errors.push(`${id}: ${replicas} replicas${autoscaled.has(w.metadata?.name) ? " (autoscaled)" : ""} with the sqlite store: each pod would be a separate node with its own data; use ClusterQueue__Store=postgres`);
      }
      if (String(env.ClusterQueue__Cluster__Discovery ?? "").toLowerCase() === "kubernetes") {
        discovering++;
        errors.push(...kubernetesDiscoveryRules(objects, w, c, env, rawEnv, id));
      }
    }
  }
  if (expectKubernetesDiscovery && discovering === 0) {
    errors.push("no ClusterQueue container has ClusterQueue__Cluster__Discovery=Kubernetes, which this render is expected to set");
  }
  return errors;
}

// ---- main ----------------------------------------------------------------------------------------------------
const args = process.argv.slice(2);
let label = null;
const li = args.indexOf("--label");
if (li >= 0) [label] = args.splice(li, 2).slice(1);
const ei = args.indexOf("--expect-kubernetes-discovery");
const expectKubernetesDiscovery = ei >= 0;
if (expectKubernetesDiscovery) args.splice(ei, 1);
if (args.length !== 1) {
  console.error("usage: node deploy/validate-manifests.mjs [--label NAME] [--expect-kubernetes-discovery] FILE|-");
  process.exit(2);
}
label ??= args[0];
const source = readFileSync(args[0] === "-" ? 0 : args[0], "utf8");

const problems = [];
const documents = YAML.parseAllDocuments(source, { uniqueKeys: true });
const objects = [];
documents.forEach((doc, i) => {
  for (const e of [...doc.errors, ...doc.warnings]) problems.push(`document ${i + 1}: YAML: ${e.message.split("\n")[0]}`);
  const value = doc.toJS({ maxAliasCount: 100 });
  if (value !== null && value !== undefined) objects.push(value);
});
if (objects.length === 0 && problems.length === 0) problems.push("no objects: the render is empty");

const kinds = new Map();
const structural = new Set();
const seen = new Set();
for (const obj of problems.length ? [] : objects) {
  const { id, errors, structural: only } = await check(obj);
  const identity = `${obj?.apiVersion}/${id}@${obj?.metadata?.namespace ?? ""}`;
  if (seen.has(identity)) errors.push("appears twice in the render");
  seen.add(identity);
  for (const e of errors) problems.push(`${id}: ${e}`);
  kinds.set(obj?.kind, (kinds.get(obj?.kind) ?? 0) + 1);
  if (only) structural.add(obj.kind);
}

if (!problems.length) problems.push(...clusterQueueRules(objects, expectKubernetesDiscovery));

if (problems.length) {
  console.error(`FAIL ${label}:`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
const summary = [...kinds].map(([k, n]) => (n > 1 ? `${k}×${n}` : k)).join(", ");
const note = structural.size ? `; ${[...structural].join(", ")}: structural check only (no schema in kubernetes-models)` : "";
console.log(`ok   ${label}: ${objects.length} objects valid (${summary})${note}`);
