/**
 * docker/: the Dockerfile builds on Node 24 slim, runs as a non-root user and ships production
 * dependencies only; the compose file parses, runs Kafka in KRaft mode, KurrentDB and PostgreSQL
 * with healthchecks, and wires the service to them by environment, in a shape the service's own
 * configuration loader accepts for both event-store options. (No Docker engine runs here: nothing
 * is built or started; scripts/lint-deploy.sh lints both files.)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../apps/metering/src/config';
import { type Stage, dockerStages } from './dockerfile';

const ROOT = path.join(__dirname, '../..');
const DOCKER = path.join(ROOT, 'docker');

// ---------------------------------------------------------------------------------------------
// Dockerfile

const npmInstalls = (s: Stage): string[] =>
  s.instructions
    .filter((i) => i.keyword === 'RUN')
    .flatMap((i) => i.args.split(/&&|\|\||;/).map((c) => c.replace(/[()]/g, '').trim()))
    .filter((c) => /^npm (ci|install|i)\b/.test(c));

describe('docker/Dockerfile', () => {
  const stages = dockerStages(fs.readFileSync(path.join(DOCKER, 'Dockerfile'), 'utf8'));
  const runtime = stages[stages.length - 1];
  const byName = new Map(stages.filter((s) => s.name).map((s) => [s.name!, s]));
  const copiesFrom = (s: Stage) =>
    s.instructions
      .filter((i) => i.keyword === 'COPY' && /--from=/.test(i.args))
      .map((i) => {
        const m = /--from=(\S+)\s+(\S+)\s+(\S+)$/.exec(i.args)!;
        return { stage: m[1], src: m[2], dest: m[3] };
      });

  it('is multi-stage, every stage on a Node 24 slim image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages) expect(s.from).toMatch(/^node:24[\w.-]*-slim(@sha256:[0-9a-f]{64})?$/);
  });

  it('installs only from the lock file: npm ci, with no npm install fallback', () => {
    const all = stages.flatMap(npmInstalls);
    expect(all.length).toBeGreaterThanOrEqual(2);
    for (const c of all) expect(c).toMatch(/^npm ci\b/);
  });

  it('runs the service as a non-root user', () => {
    const users = runtime.instructions.filter((i) => i.keyword === 'USER');
    expect(users.length).toBeGreaterThan(0);
    const user = users[users.length - 1].args.split(':')[0];
    expect(['root', '0']).not.toContain(user);
    // Numeric, so Kubernetes can verify runAsNonRoot; the same uid as k8s/ runAsUser.
    expect(user).toBe('1000');
    // Nothing after USER switches back or installs anything.
    const afterUser = runtime.instructions.slice(runtime.instructions.indexOf(users[users.length - 1]) + 1);
    expect(afterUser.filter((i) => i.keyword === 'RUN' || i.keyword === 'USER')).toEqual([]);
  });

  it('ships production dependencies only, and the compiled service', () => {
    expect(npmInstalls(runtime)).toEqual([]);
    const copies = copiesFrom(runtime);
    const modules = copies.find((c) => /node_modules\/?$/.test(c.src));
    expect(modules).toBeDefined();
    const depsStage = byName.get(modules!.stage)!;
    expect(npmInstalls(depsStage).length).toBeGreaterThan(0);
    for (const cmd of npmInstalls(depsStage)) expect(cmd).toMatch(/--omit=dev\b/);
    // dist/ comes from the build stage, which builds with `nest build metering`.
    const dist = copies.find((c) => /dist\/?$/.test(c.src))!;
    expect(byName.get(dist.stage)!.instructions.some((i) => i.keyword === 'RUN' && /nest build metering/.test(i.args))).toBe(true);
  });

  it('starts the built entry point on the port compose and k8s use', () => {
    const nest = JSON.parse(fs.readFileSync(path.join(ROOT, 'nest-cli.json'), 'utf8'));
    expect(nest.projects.metering).toMatchObject({ entryFile: 'main', sourceRoot: 'apps/metering/src' });
    const cmd = runtime.instructions.filter((i) => i.keyword === 'CMD').pop()!;
    expect(JSON.parse(cmd.args)).toEqual(['node', 'dist/apps/metering/src/main.js']);
    expect(runtime.instructions.find((i) => i.keyword === 'EXPOSE')!.args).toBe('3000');
    const env = runtime.instructions.filter((i) => i.keyword === 'ENV').map((i) => i.args).join(' ');
    expect(env).toMatch(/\bHOST=0\.0\.0\.0\b/);
    expect(env).toMatch(/\bPORT=3000\b/);
  });

  it('COPYs only what exists and what docker/Dockerfile.dockerignore lets into the context', () => {
    const ignore = fs.readFileSync(path.join(DOCKER, 'Dockerfile.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    expect(ignore).toContain('**');
    for (const s of stages) {
      for (const i of s.instructions.filter((x) => x.keyword === 'COPY' && !/--from=/.test(x.args))) {
        const parts = i.args.split(' ').filter((p) => !p.startsWith('--'));
        for (const src of parts.slice(0, -1)) {
          expect({ src, exists: fs.existsSync(path.join(ROOT, src)) }).toEqual({ src, exists: true });
          const allowed = ignore.includes(`!${src}`) || ignore.includes(`!${src}/**`);
          expect({ src, allowed }).toEqual({ src, allowed: true });
        }
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// compose.yaml

type Service = {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string | number | boolean>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
};

/** Compose interpolation for ${VAR}, ${VAR:-default} and ${VAR:?error}. */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(/\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}/g, (_, name: string, op: string | undefined, arg: string) => {
    const v = env[name];
    if (v !== undefined && v !== '') return v;
    if (op === '-') return arg;
    if (op === '?') throw new Error(`${name}: ${arg}`);
    return '';
  });
}

describe('docker/compose.yaml', () => {
  const compose = parseYaml(fs.readFileSync(path.join(DOCKER, 'compose.yaml'), 'utf8')) as { services: Record<string, Service> };
  const services = compose.services;
  const envOf = (name: string, vars: Record<string, string>) =>
    Object.fromEntries(Object.entries(services[name].environment ?? {}).map(([k, v]) => [k, interpolate(String(v), vars)]));
  const vars = { API_KEYS: 'read+ingest+admin=test-key-0123456789' };

  it('has Kafka, KurrentDB, PostgreSQL and the service, each with a healthcheck', () => {
    expect(Object.keys(services).sort()).toEqual(['kafka', 'kurrentdb', 'metering', 'postgres']);
    expect(services.kafka.image).toMatch(/^apache\/kafka:\d/);
    expect(services.kurrentdb.image).toMatch(/^(kurrentplatform\/kurrentdb|docker\.kurrent\.io\/[\w-]+\/kurrentdb):\d/);
    expect(services.postgres.image).toMatch(/^postgres:\d/);
    for (const [name, s] of Object.entries(services)) expect({ name, healthcheck: Array.isArray(s.healthcheck?.test) }).toEqual({ name, healthcheck: true });
  });

  it('runs Kafka in KRaft mode (no ZooKeeper)', () => {
    const k = envOf('kafka', vars);
    expect(k.KAFKA_PROCESS_ROLES.split(',').sort()).toEqual(['broker', 'controller']);
    expect(k.KAFKA_CONTROLLER_QUORUM_VOTERS).toMatch(/^1@kafka:\d+$/);
    expect(Object.keys(k).filter((v) => /ZOOKEEPER/.test(v))).toEqual([]);
  });

  it('builds the service from docker/Dockerfile with the repository as context', () => {
    const b = services.metering.build!;
    expect(path.resolve(DOCKER, b.context)).toBe(ROOT);
    expect(b.dockerfile).toBe('docker/Dockerfile');
    expect(services.metering.image).toBeUndefined();
  });

  it('wires the service to the other services by environment, started after they are healthy', () => {
    const env = envOf('metering', vars);
    const kafkaAdvertised = envOf('kafka', vars).KAFKA_ADVERTISED_LISTENERS.split(',').map((l) => l.replace(/^\w+:\/\//, ''));
    for (const broker of env.KAFKA_BROKERS.split(',')) expect(kafkaAdvertised).toContain(broker);
    expect(env.KAFKA_BROKERS.split(',').map((b) => b.split(':')[0])).toEqual(['kafka']);

    const pg = new URL(env.DATABASE_URL);
    const pgEnv = envOf('postgres', vars);
    expect({ host: pg.hostname, port: pg.port, db: pg.pathname.slice(1), user: pg.username, password: pg.password }).toEqual({
      host: 'postgres',
      port: '5432',
      db: pgEnv.POSTGRES_DB,
      user: pgEnv.POSTGRES_USER,
      password: pgEnv.POSTGRES_PASSWORD,
    });

    const kdb = new URL(env.KURRENTDB_URL.replace(/^kurrentdb:/, 'http:'));
    expect({ host: kdb.hostname, port: kdb.port, tls: kdb.searchParams.get('tls') }).toEqual({ host: 'kurrentdb', port: envOf('kurrentdb', vars).KURRENTDB_NODE_PORT, tls: 'false' });
    expect(envOf('kurrentdb', vars).KURRENTDB_INSECURE).toBe('true');

    expect(services.metering.depends_on).toEqual({
      kafka: { condition: 'service_healthy' },
      kurrentdb: { condition: 'service_healthy' },
      postgres: { condition: 'service_healthy' },
    });
    expect(env.HOST).toBe('0.0.0.0');
    expect(services.metering.ports).toEqual([`127.0.0.1:${env.PORT}:${env.PORT}`]);
  });

  it('mounts the catalog file CATALOG_FILE names', () => {
    const env = envOf('metering', vars);
    const mount = services.metering.volumes!.map((v) => v.split(':')).find((v) => v[1] === env.CATALOG_FILE);
    expect(mount).toBeDefined();
    expect(fs.existsSync(path.resolve(DOCKER, mount![0]))).toBe(true);
  });

  it('gives an environment the service configuration accepts, for both event stores', () => {
    for (const EVENT_STORE of ['postgres', 'kurrentdb']) {
      const env = envOf('metering', { ...vars, EVENT_STORE });
      const config = loadConfig(env, '/app');
      expect(config).toMatchObject({ eventStore: EVENT_STORE, host: '0.0.0.0', port: 3000, postgresUrl: env.DATABASE_URL, kurrentdbUrl: env.KURRENTDB_URL });
      expect(config.kafka?.connection.brokers).toEqual(['kafka:9092']);
    }
    expect(envOf('metering', vars).EVENT_STORE).toBe('postgres');
  });

  it('takes API_KEYS from the caller and refuses to start without it', () => {
    expect(String(services.metering.environment!.API_KEYS)).toMatch(/^\$\{API_KEYS:\?/);
    expect(() => envOf('metering', {})).toThrow(/API_KEYS/);
  });
});
