/**
 * k8s/: every object in every YAML file validates against the Kubernetes OpenAPI schemas
 * (kubernetes-models, run by validate-k8s.mjs because the package is ESM-only), unknown kinds fail,
 * and the shape rules hold: one image, a Deployment per role with probes, resource requests and a
 * non-root security context, a PodDisruptionBudget per Deployment, the catalog in a ConfigMap, and
 * secrets referenced from a Secret, never inlined. The settings are accepted by the service's own
 * configuration loader.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseCatalog } from '@metering/domain';
import { loadConfig } from '../../apps/metering/src/config';

const ROOT = path.join(__dirname, '../..');
const K8S = path.join(ROOT, 'k8s');
const VALIDATOR = path.join(__dirname, 'validate-k8s.mjs');

const ROLES = ['api', 'ingest', 'projector', 'scheduler'];
const SECRET_VARS = ['API_KEYS', 'DATABASE_URL', 'KAFKA_SASL_PASSWORD', 'KURRENTDB_URL'];

// Loose typing on purpose: the schema validation is the validator's job; these are shape rules.
type Obj = any;

interface Doc {
  file: string;
  obj: Obj;
}

function loadManifests(): { docs: Doc[]; kustomization: Obj; files: string[] } {
  const files = fs.readdirSync(K8S).filter((f) => /\.ya?ml$/.test(f)).sort();
  const docs: Doc[] = [];
  let kustomization: Obj = null;
  for (const file of files) {
    for (const d of parseAllDocuments(fs.readFileSync(path.join(K8S, file), 'utf8'))) {
      if (d.errors.length) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
      const obj = d.toJS();
      if (obj === null) continue;
      if (obj.kind === 'Kustomization') kustomization = { ...obj, file };
      else docs.push({ file, obj });
    }
  }
  return { docs, kustomization, files };
}

/** Schema errors per object, from kubernetes-models (in a child node: the package is ESM-only). */
function validate(objs: Obj[]): { kind: string | null; name: string | null; errors: string[] }[] {
  const out = execFileSync(process.execPath, [VALIDATOR, '--json'], { input: JSON.stringify(objs), cwd: ROOT, encoding: 'utf8' });
  return JSON.parse(out);
}

const { docs, kustomization, files } = loadManifests();
const all = docs.map((d) => d.obj);
const ofKind = (kind: string) => all.filter((o) => o.kind === kind);
const deployments = ofKind('Deployment');
const configMap = (name: string) => ofKind('ConfigMap').find((c) => c.metadata.name === name);
const roleOf = (d: Obj): string => d.spec.template.spec.containers[0].env.find((e: Obj) => e.name === 'ROLES')?.value;

describe('k8s manifests: Kubernetes schemas', () => {
  it('every object validates against its Kubernetes schema', () => {
    expect(all.length).toBeGreaterThan(0);
    const results = validate(all);
    expect(results.filter((r) => r.errors.length)).toEqual([]);
    expect(results).toHaveLength(all.length);
  });

  it('rejects invalid objects and unknown kinds (the check can fail)', () => {
    const d = structuredClone(deployments[0]);
    const noName = structuredClone(d);
    delete noName.spec.template.spec.containers[0].name;
    const badReplicas = { ...structuredClone(d), spec: { ...structuredClone(d.spec), replicas: 'two' } };
    const badQuantity = structuredClone(d);
    badQuantity.spec.template.spec.containers[0].resources.requests.cpu = 'a lot';
    const badProbe = structuredClone(d);
    badProbe.spec.template.spec.containers[0].readinessProbe.httpGet = { path: '/health/ready' };
    const pdbWithoutSelector = structuredClone(ofKind('PodDisruptionBudget')[0]);
    pdbWithoutSelector.spec.minAvailable = { percent: 50 };
    const results = validate([
      noName,
      badReplicas,
      badQuantity,
      badProbe,
      pdbWithoutSelector,
      { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } },
      { apiVersion: 'extensions/v1beta1', kind: 'Deployment', metadata: { name: 'old' } },
    ]);
    expect(results.map((r) => r.errors.length > 0)).toEqual([true, true, true, true, true, true, true]);
    expect(results[0].errors.join()).toMatch(/must have required property '?name'?/);
    expect(results[1].errors.join()).toMatch(/replicas must be integer/);
    expect(results[3].errors.join()).toMatch(/must have required property '?port'?/);
    expect(results[5].errors.join()).toMatch(/unknown apiVersion\/kind example\.com\/v1\/Widget/);
  });

  it('the kustomization lists every manifest file and the one image', () => {
    expect(kustomization).not.toBeNull();
    expect([...kustomization.resources].sort()).toEqual(files.filter((f) => f !== kustomization.file));
    expect(kustomization.images.map((i: Obj) => i.name)).toEqual([deployments[0].spec.template.spec.containers[0].image.split(':')[0]]);
  });
});

describe('k8s manifests: shape', () => {
  it('has one Deployment per role, one image across them', () => {
    expect(deployments.map(roleOf).sort()).toEqual(ROLES);
    for (const d of deployments) {
      expect(d.metadata.name).toBe(`metering-${roleOf(d)}`);
      expect(d.spec.template.spec.containers).toHaveLength(1);
    }
    const images = new Set(deployments.map((d) => d.spec.template.spec.containers[0].image));
    expect(images.size).toBe(1);
  });

  describe.each(ROLES)('the %s Deployment', (role) => {
    const d = () => deployments.find((x) => roleOf(x) === role);
    const pod = () => d().spec.template.spec;
    const c = () => pod().containers[0];

    it('selects its own pods', () => {
      const sel = d().spec.selector.matchLabels;
      expect(d().spec.template.metadata.labels).toMatchObject(sel);
      expect(sel['app.kubernetes.io/component']).toBe(role);
    });

    it('has liveness, readiness and startup probes on the service port', () => {
      const port = c().ports.find((p: Obj) => p.name === 'http');
      expect(port.containerPort).toBe(Number(configMap('metering-config').data.PORT));
      expect(c().livenessProbe.httpGet).toEqual({ path: '/health/live', port: 'http' });
      expect(c().readinessProbe.httpGet).toEqual({ path: '/health/ready', port: 'http' });
      expect(c().startupProbe.httpGet.port).toBe('http');
    });

    it('requests CPU and memory and limits memory', () => {
      expect(c().resources.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
      expect(c().resources.limits.memory).toEqual(expect.any(String));
    });

    it('runs as non-root, without privilege escalation, on a read-only root filesystem', () => {
      expect(pod().securityContext.runAsNonRoot).toBe(true);
      expect(pod().securityContext.runAsUser).toBeGreaterThan(0);
      expect(c().securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
      expect(pod().automountServiceAccountToken).toBe(false);
    });

    it('is scraped by Prometheus on /metrics', () => {
      expect(d().spec.template.metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/path': '/metrics', 'prometheus.io/port': '3000' });
    });

    it('reads settings from the ConfigMap, secrets from the Secret, and mounts the catalog and DATA_DIR', () => {
      expect(c().envFrom).toEqual([{ configMapRef: { name: 'metering-config' } }]);
      for (const e of c().env) {
        if (SECRET_VARS.includes(e.name)) {
          expect({ name: e.name, value: e.value }).toEqual({ name: e.name, value: undefined });
          expect(e.valueFrom.secretKeyRef).toMatchObject({ name: 'metering-secrets', key: e.name });
        }
      }
      // The service requires API_KEYS whenever HOST is not loopback, so every role gets it.
      for (const name of ['DATABASE_URL', 'API_KEYS']) {
        expect(c().env.find((e: Obj) => e.name === name)?.valueFrom?.secretKeyRef?.optional).toBeUndefined();
      }
      const settings = configMap('metering-config').data;
      const mountOf = (volume: string) => c().volumeMounts.find((m: Obj) => m.name === volume);
      const catalogVolume = pod().volumes.find((v: Obj) => v.configMap?.name === 'metering-catalog');
      expect(path.posix.join(mountOf(catalogVolume.name).mountPath, 'catalog.json')).toBe(settings.CATALOG_FILE);
      expect(mountOf(catalogVolume.name).readOnly).toBe(true);
      const dataVolume = pod().volumes.find((v: Obj) => v.name === c().volumeMounts.find((m: Obj) => m.mountPath === settings.DATA_DIR)?.name);
      expect(dataVolume?.emptyDir).toBeDefined();
    });

    it('has a PodDisruptionBudget over exactly its pods that never blocks a drain', () => {
      const pdbs = ofKind('PodDisruptionBudget').filter((p) => JSON.stringify(p.spec.selector.matchLabels) === JSON.stringify(d().spec.selector.matchLabels));
      expect(pdbs).toHaveLength(1);
      const { minAvailable, maxUnavailable } = pdbs[0].spec;
      if (minAvailable !== undefined) expect(minAvailable).toBeLessThan(d().spec.replicas);
      else expect(maxUnavailable).toBeGreaterThanOrEqual(1);
    });
  });

  it('has a PodDisruptionBudget per Deployment and no other', () => {
    expect(ofKind('PodDisruptionBudget')).toHaveLength(deployments.length);
  });

  it('exposes the api role through a Service on its http port', () => {
    const services = ofKind('Service');
    expect(services).toHaveLength(1);
    const api = deployments.find((d) => roleOf(d) === 'api');
    expect(api.spec.template.metadata.labels).toMatchObject(services[0].spec.selector);
    expect(deployments.filter((d) => Object.entries(services[0].spec.selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v))).toHaveLength(1);
    expect(services[0].spec.ports.map((p: Obj) => p.targetPort)).toEqual(['http']);
  });

  it('references the Secret and never inlines one', () => {
    expect(ofKind('Secret')).toEqual([]);
    for (const cm of ofKind('ConfigMap')) for (const v of SECRET_VARS) expect(Object.keys(cm.data)).not.toContain(v);
    const text = files.map((f) => fs.readFileSync(path.join(K8S, f), 'utf8')).join('\n');
    expect(text).not.toMatch(/postgres(ql)?:\/\/[^\s]*:[^\s]*@/); // no credentials in a URL
  });

  it('ships a catalog the domain accepts', () => {
    const raw = configMap('metering-catalog').data['catalog.json'];
    expect(() => parseCatalog(JSON.parse(raw))).not.toThrow();
  });

  it('uses PostgreSQL or KurrentDB (SQLite is single-process) with settings the service accepts, for every role', () => {
    const settings = configMap('metering-config').data;
    expect(['postgres', 'kurrentdb']).toContain(settings.EVENT_STORE);
    expect(settings.HOST).toBe('0.0.0.0');
    // What `kubectl create secret generic metering-secrets` would hold (README.md).
    const secret: Record<string, string> = {
      DATABASE_URL: 'postgres://metering:secret@db:5432/metering',
      API_KEYS: 'read+ingest=k3y-0123456789abcdef,admin=k3y-fedcba9876543210',
      KURRENTDB_URL: 'kurrentdb://kdb:2113?tls=false',
    };
    /** The environment Kubernetes gives the container: envFrom, then env (values and Secret keys). */
    const podEnv = (d: Obj, overrides: Record<string, string> = {}) => {
      const env: Record<string, string> = { ...settings, ...overrides };
      for (const e of d.spec.template.spec.containers[0].env) {
        if (e.value !== undefined) env[e.name] = e.value;
        else if (e.valueFrom?.secretKeyRef && secret[e.valueFrom.secretKeyRef.key] !== undefined) env[e.name] = secret[e.valueFrom.secretKeyRef.key];
      }
      return env;
    };
    for (const d of deployments) {
      const config = loadConfig(podEnv(d), '/app');
      expect(config).toMatchObject({ host: '0.0.0.0', port: 3000, dataDir: '/data', catalogFile: settings.CATALOG_FILE, eventStore: settings.EVENT_STORE });
      expect([...config.roles]).toEqual([roleOf(d)]);
      expect(config.kafka).not.toBeNull();
      expect(config.postgresUrl).toBe(secret.DATABASE_URL);
      expect(loadConfig(podEnv(d, { EVENT_STORE: 'kurrentdb' }), '/app')).toMatchObject({ eventStore: 'kurrentdb', kurrentdbUrl: secret.KURRENTDB_URL });
    }
  });
});
