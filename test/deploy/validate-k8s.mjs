// Validates Kubernetes manifests against the Kubernetes OpenAPI schemas (package kubernetes-models).
// kubernetes-models is ESM-only, so this runs as a plain node script (jest's CommonJS runtime
// cannot load it). Used by test/deploy/k8s-manifests.test.ts and scripts/lint-deploy.sh.
//
//   node test/deploy/validate-k8s.mjs k8s/*.yaml        files: prints findings, exit 1 on any
//   node test/deploy/validate-k8s.mjs --json < docs.json  a JSON array of objects: prints a JSON
//                                                         array of {kind, name, errors[]}
import * as fs from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';

const MODELS = new Map(
  [ConfigMap, Secret, Service, ServiceAccount, Deployment, PodDisruptionBudget, HorizontalPodAutoscaler, NetworkPolicy].map((M) => [
    `${M.apiVersion}/${M.kind}`,
    M,
  ]),
);
// Not a Kubernetes object: kustomize's own file, checked by the jest test.
const KUSTOMIZATION = 'kustomize.config.k8s.io/v1beta1/Kustomization';

/** Errors of one object: [] when it is a valid object of a known kind. */
export function validateObject(obj) {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return ['not an object'];
  const key = `${obj.apiVersion}/${obj.kind}`;
  if (key === KUSTOMIZATION) return [];
  const Model = MODELS.get(key);
  if (!Model) return [`unknown apiVersion/kind ${key}: add its model to test/deploy/validate-k8s.mjs`];
  try {
    new Model(obj).validate();
    return [];
  } catch (err) {
    return [String(err instanceof Error ? err.message : err)];
  }
}

function parseFile(file) {
  const docs = parseAllDocuments(fs.readFileSync(file, 'utf8'));
  return docs.map((d, i) => {
    if (d.errors.length) return { file, index: i, obj: null, parseErrors: d.errors.map((e) => e.message) };
    return { file, index: i, obj: d.toJS(), parseErrors: [] };
  });
}

const args = process.argv.slice(2);
if (args[0] === '--json') {
  const objs = JSON.parse(fs.readFileSync(0, 'utf8'));
  const out = objs.map((obj) => ({ kind: obj?.kind ?? null, name: obj?.metadata?.name ?? null, errors: validateObject(obj) }));
  process.stdout.write(JSON.stringify(out));
} else {
  let problems = 0;
  let count = 0;
  for (const file of args) {
    for (const { index, obj, parseErrors } of parseFile(file)) {
      if (obj === null && parseErrors.length === 0) continue; // empty document
      count++;
      const errors = parseErrors.length ? parseErrors : validateObject(obj);
      for (const e of errors) {
        problems++;
        console.log(`${file} [document ${index}] ${obj?.kind ?? '?'} ${obj?.metadata?.name ?? ''}: ${e}`);
      }
    }
  }
  if (problems) {
    console.log(`k8s: ${problems} problem(s) in ${count} object(s)`);
    process.exit(1);
  }
  console.log(`k8s: ${count} object(s) valid against the Kubernetes schemas`);
}
