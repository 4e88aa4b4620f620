// Checks every manifest of a kustomization directory (deploy/kubernetes/) without a cluster:
//
//   node validate.mjs DIR
//
// - each object against the Kubernetes OpenAPI schema of its kind (kubernetes-models: types,
//   required fields, formats, enums);
// - strictly: every field name must exist in the API (the attribute maps of
//   @kubernetes/client-node's models), which catches a misspelt key such as "readinesProbe"
//   that the API server would silently drop;
// - the kustomization: its resources exist, and its configMapGenerator files become the
//   ConfigMaps the workloads mount (checked like the rest).
// Prints one line per object and exits 1 on the first directory with an error.

import fs from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import * as models from "@kubernetes/client-node/dist/gen/models/ObjectSerializer.js";

// kind -> [module of kubernetes-models, model name of @kubernetes/client-node]
const kinds = {
  "v1/ConfigMap": ["kubernetes-models/v1/ConfigMap", "V1ConfigMap"],
  "v1/Service": ["kubernetes-models/v1/Service", "V1Service"],
  "apps/v1/Deployment": ["kubernetes-models/apps/v1/Deployment", "V1Deployment"],
  "policy/v1/PodDisruptionBudget": ["kubernetes-models/policy/v1/PodDisruptionBudget",
                                    "V1PodDisruptionBudget"],
};

// Field names of a client-node model type, or null for a primitive or a map.
function attributes(type) {
  const model = models[type];
  if (!model || typeof model.getAttributeTypeMap !== "function") return null;
  return model.getAttributeTypeMap();
}

// Unknown field names in |value| of model |type|, as JSON paths.
function unknownFields(value, type, where, out) {
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, array[1], `${where}[${i}]`, out));
    return out;
  }
  const attrs = attributes(type);
  if (!attrs || value === null || typeof value !== "object" || Array.isArray(value)) return out;
  for (const [key, child] of Object.entries(value)) {
    const attr = attrs.find((a) => a.baseName === key);
    if (!attr) {
      out.push(`${where}.${key}: unknown field of ${type}`);
      continue;
    }
    unknownFields(child, attr.type, `${where}.${key}`, out);
  }
  return out;
}

async function check(object, source) {
  const id = `${object?.kind}/${object?.metadata?.name} (${source})`;
  const key = `${object?.apiVersion}/${object?.kind}`;
  if (!kinds[key]) return [`${id}: no schema here for ${key}`];
  const [module, type] = kinds[key];
  const Model = Object.values(await import(module))[0];
  const errors = [];
  try {
    new Model(object).validate();
  } catch (e) {
    errors.push(`${id}: ${e.message}`);
  }
  for (const e of unknownFields(object, type, "", [])) errors.push(`${id}: ${e}`);
  if (!object.metadata?.name) errors.push(`${id}: metadata.name is required`);
  return errors;
}

function loadYaml(file) {
  const docs = parseAllDocuments(fs.readFileSync(file, "utf8"));
  for (const doc of docs) {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0].message}`);
  }
  return docs.map((d) => d.toJS()).filter((o) => o);
}

async function main(dir) {
  const kustomization = loadYaml(path.join(dir, "kustomization.yaml"))[0];
  const objects = [];
  const errors = [];
  for (const resource of kustomization.resources ?? []) {
    const file = path.join(dir, resource);
    if (!fs.existsSync(file)) {
      errors.push(`kustomization: resource ${resource} not found`);
      continue;
    }
    for (const o of loadYaml(file)) objects.push([o, resource]);
  }
  for (const gen of kustomization.configMapGenerator ?? []) {
    const data = {};
    for (const f of gen.files ?? []) {
      const [key, name] = f.includes("=") ? f.split("=") : [path.basename(f), f];
      data[key] = fs.readFileSync(path.join(dir, name), "utf8");
    }
    objects.push([{ apiVersion: "v1", kind: "ConfigMap",
                    metadata: { name: gen.name, namespace: kustomization.namespace }, data },
                  "configMapGenerator"]);
  }
  for (const [o, source] of objects) {
    const found = await check(o, source);
    errors.push(...found);
    console.log(`${found.length ? "FAIL" : "ok  "} ${o.apiVersion} ${o.kind} ${o.metadata?.name}`);
  }
  // Every ConfigMap a workload mounts is one of the objects.
  const configMaps = new Set(objects.filter(([o]) => o.kind === "ConfigMap").map(([o]) => o.metadata.name));
  for (const [o] of objects) {
    for (const v of o.spec?.template?.spec?.volumes ?? []) {
      if (v.configMap && !configMaps.has(v.configMap.name)) {
        errors.push(`${o.kind}/${o.metadata.name}: mounts ConfigMap ${v.configMap.name}, which is not defined`);
      }
    }
  }
  if (errors.length) {
    console.error(errors.join("\n"));
    process.exit(1);
  }
  console.log(`${objects.length} objects valid`);
}

await main(process.argv[2] ?? "../../deploy/kubernetes");
