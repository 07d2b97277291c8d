// Validates every object of a multi-document Kubernetes YAML file (e.g. the output of
// `kubectl kustomize`) against the JSON schemas shipped by the npm package
// `kubernetes-models` (plus `@kubernetes-models/prometheus-operator` for
// monitoring.coreos.com objects).
//
// Usage: node validate.mjs <manifests.yaml>
// Prints {"objects": N, "errors": [{"apiVersion","kind","name","message"}]} to stdout.
// Exit codes: 0 = all objects valid, 1 = validation errors, 2 = usage or YAML parse failure.
//
// Packages are resolved the normal ESM way, relative to this file: place it next to the
// node_modules folder holding the packages (the C# KubernetesSchemaValidator copies it there).
import { readFile } from "node:fs/promises";
import { parseAllDocuments } from "yaml";

// API groups not covered by the core `kubernetes-models` package, mapped to the package
// that models them. Anything else goes to `kubernetes-models`, whose exports map tells
// known groups from unknown ones.
const thirdPartyPackages = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

function fail(message) {
  process.stderr.write(`validate.mjs: ${message}\n`);
  process.exit(2);
}

// Loads the model class for apiVersion + kind, or returns an error message. Every failure
// is reported rather than skipped: an object nobody can validate must not pass silently.
async function loadModel(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string") {
    return { error: "apiVersion and kind must both be strings" };
  }
  // Both become parts of a module path: refuse anything that is not a plain
  // "[group/]version" and a PascalCase kind, so no input can walk elsewhere.
  const match = /^(?:([a-z0-9.-]+)\/)?(v[0-9]+(?:(?:alpha|beta)[0-9]+)?)$/.exec(apiVersion);
  if (!match || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) {
    return { error: `unknown apiVersion/kind ${apiVersion} ${kind}` };
  }
  const [, group, version] = match;
  const pkg = (group && thirdPartyPackages[group]) ?? "kubernetes-models";
  const specifier = group ? `${pkg}/${group}/${version}/${kind}` : `${pkg}/${version}/${kind}`;
  let module;
  try {
    module = await import(specifier);
  } catch (err) {
    if (err?.code === "ERR_PACKAGE_PATH_NOT_EXPORTED" || err?.code === "ERR_MODULE_NOT_FOUND") {
      return { error: `unknown apiVersion/kind ${apiVersion} ${kind}` };
    }
    throw err; // a broken install, not a bad manifest
  }
  const model = module[kind];
  // The same folders also hold nested types (DeploymentSpec, ...). Only top-level
  // resources carry apiVersion/kind statics, so this rejects e.g. kind: DeploymentSpec.
  if (typeof model !== "function" || model.apiVersion !== apiVersion || model.kind !== kind) {
    return { error: `unknown apiVersion/kind ${apiVersion} ${kind}` };
  }
  return { model };
}

async function main() {
  const [file, ...extra] = process.argv.slice(2);
  if (!file || extra.length > 0) fail("usage: node validate.mjs <manifests.yaml>");

  let text;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    fail(`cannot read ${file}: ${err.message}`);
  }

  // YAML 1.1 because the API server decodes manifests with a YAML 1.1 parser
  // (sigs.k8s.io/yaml): `value: yes` must become a boolean here too, or a manifest the
  // server rejects would pass.
  const documents = parseAllDocuments(text, { version: "1.1" });
  if (!Array.isArray(documents)) fail("input is not a YAML stream");
  for (const doc of documents) {
    if (doc.errors.length > 0) fail(`YAML parse error: ${doc.errors[0].message}`);
  }

  const errors = [];
  let objects = 0;
  for (const doc of documents) {
    const data = doc.toJS();
    if (data === null || data === undefined) continue; // empty document, e.g. a trailing "---"
    objects++;
    if (typeof data !== "object" || Array.isArray(data)) {
      errors.push({ apiVersion: null, kind: null, name: null, message: "document is not a mapping" });
      continue;
    }
    const { apiVersion = null, kind = null } = data;
    const name = data.metadata?.name ?? null;
    const report = (message) => errors.push({ apiVersion, kind, name, message });

    const { model, error } = await loadModel(apiVersion, kind);
    if (error) {
      report(error);
      continue;
    }
    try {
      new model(data).validate();
    } catch (err) {
      // ValidationError carries ajv's individual errors; list each with its JSON path.
      const details = Array.isArray(err?.errors) ? err.errors : null;
      if (!details) throw err;
      for (const d of details) report(`${d.instancePath || "/"} ${d.message}`);
    }
  }

  process.stdout.write(JSON.stringify({ objects, errors }) + "\n");
  process.exitCode = errors.length === 0 ? 0 : 1;
}

main().catch((err) => fail(err?.stack ?? String(err)));
