/**
 * Layer rules (dependency-cruiser 18). Run:
 *   npx depcruise --config .dependency-cruiser.cjs libs apps bench
 * (also `npm run lint:layers`). Any "error" makes the command exit non-zero.
 *
 * - libs/domain is pure TypeScript: its production code imports only libs/domain itself. Nothing
 *   from node_modules (@nestjs, kafkajs, pg, better-sqlite3, ...), no node built-in (fs, crypto,
 *   node:*), nothing from apps/ or other libs. Its specs and test helpers may add the test toolkit.
 * - libs/event-store imports no app and no NestJS.
 * - libs never import apps.
 * - no circular dependencies anywhere.
 * - inside apps/metering/src, features depend downwards only (issue 17): the transports (http, ui,
 *   kafka, cli) may use the features below them, never each other's internals; ingest, projection
 *   and scheduler never import a transport; projection never imports ingest; only the composition
 *   root (main.ts, http/bootstrap.ts) imports app.module.ts.
 * - the benchmarks never load the fuzz generators (test/support/fuzz-arbitraries.ts, reached through
 *   the workload's index): fast-check's tables stay live, about 86 MiB of heap that the in-process
 *   benchmarks' collections would mark on every major GC beside the service's own.
 */

/** Test code inside libs/domain: specs and the helpers under src/testing. */
const DOMAIN_TEST_CODE = ['\\.spec\\.ts$', '^libs/domain/src/testing/'];

/** The service's source folder. */
const APP = '^apps/metering/src/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'domain-is-pure',
      comment:
        'libs/domain is pure: it may import only other libs/domain modules. No npm package, no node built-in ' +
        '(fs, crypto, node:*), no app, no other lib. Clock, ids and I/O come in through parameters.',
      severity: 'error',
      from: { path: '^libs/domain/', pathNot: DOMAIN_TEST_CODE },
      to: { pathNot: '^libs/domain/' },
    },
    {
      name: 'domain-tests-stay-pure',
      comment: 'Domain specs and test helpers may add only the test toolkit (fast-check, @jest/globals) to libs/domain.',
      severity: 'error',
      from: { path: DOMAIN_TEST_CODE.map((p) => (p.startsWith('^') ? p : `^libs/domain/.*${p}`)) },
      to: { pathNot: ['^libs/domain/', '(^|/)node_modules/(fast-check|@jest/globals)/'] },
    },
    {
      name: 'domain-code-not-to-test-code',
      comment: 'Production domain code must not import specs or test helpers.',
      severity: 'error',
      from: { path: '^libs/domain/', pathNot: DOMAIN_TEST_CODE },
      to: { path: ['\\.spec\\.ts$', '^libs/domain/src/testing/'] },
    },
    {
      name: 'event-store-no-apps-no-nest',
      comment: 'libs/event-store is a library: no app code and no NestJS (adapters are plain classes; apps wire them).',
      severity: 'error',
      from: { path: '^libs/event-store/' },
      to: { path: ['^apps/', '(^|/)node_modules/@nestjs/', '^@nestjs/'] },
    },
    {
      name: 'libs-not-to-apps',
      comment: 'Libraries never depend on applications.',
      severity: 'error',
      from: { path: '^libs/' },
      to: { path: '^apps/' },
    },
    {
      name: 'http-not-kafka',
      comment: 'The HTTP layer does not import the Kafka folder: it talks to ports (e.g. ingest/ingress.ts) that Kafka implements.',
      severity: 'error',
      from: { path: `${APP}(http|ui)/` },
      to: { path: `${APP}kafka/` },
    },
    {
      name: 'kafka-not-http',
      comment: 'The Kafka transport does not import the HTTP layer, the pages, the CLI or the scheduler.',
      severity: 'error',
      from: { path: `${APP}kafka/` },
      to: { path: `${APP}(http|ui|cli|admin|scheduler)/` },
    },
    {
      name: 'features-not-transports',
      comment: 'Ingest, projection and scheduler are used by the transports (http, ui, kafka, cli, admin), never the reverse.',
      severity: 'error',
      from: { path: `${APP}(ingest|projection|scheduler)/` },
      to: { path: `${APP}(http|ui|kafka|cli|admin)/` },
    },
    {
      name: 'projection-not-ingest',
      comment: 'The projection reads what is stored; it never decides or appends (no ingest, no scheduler).',
      severity: 'error',
      from: { path: `${APP}projection/` },
      to: { path: `${APP}(ingest|scheduler)/` },
    },
    {
      name: 'only-the-root-composes',
      comment: 'Only the composition root (main.ts, http/bootstrap.ts) imports app.module.ts.',
      severity: 'error',
      from: { path: '^apps/', pathNot: [`${APP}main\\.ts$`, `${APP}http/bootstrap\\.ts$`] },
      to: { path: `${APP}app\\.module\\.ts$` },
    },
    {
      name: 'bench-without-fuzz-generators',
      comment:
        'bench/ imports the workload generator by module (test/support/workload/flat, random, events), not its index: ' +
        'the index loads the fuzz generators, whose fast-check tables (about 86 MiB) would sit in the heap of the in-process benchmarks.',
      severity: 'error',
      from: { path: '^bench/' },
      to: { path: '^test/support/fuzz-arbitraries\\.ts$', reachable: true },
    },
    {
      name: 'no-circular',
      comment: 'No circular dependencies.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that resolves to nothing (missing package or file).',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|\\.tools)/' },
    // count `import type` too: a type-only import of a framework is still a dependency of the domain
    tsPreCompilationDeps: true,
    // resolves the @metering/* path aliases
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['main', 'types', 'typings'],
      extensions: ['.ts', '.d.ts', '.js', '.cjs', '.mjs', '.json'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
