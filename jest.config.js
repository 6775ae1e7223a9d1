// One jest config, several projects. `unit` is pure and fast; `integration` uses real
// SQLite files, the real PostgreSQL and a real Kafka broker (started by the global setup).
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2023',
    },
    module: { type: 'commonjs' },
  },
];
const common = {
  transform: { '^.+\\.(t|j|mj)s$': swc },
  // @nestjs packages are ESM-only: let swc turn them into CommonJS too.
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs)/)'],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'json'],
  moduleNameMapper: {
    '^@metering/domain$': '<rootDir>/libs/domain/src',
    '^@metering/domain/(.*)$': '<rootDir>/libs/domain/src/$1',
    '^@metering/event-store$': '<rootDir>/libs/event-store/src',
    '^@metering/event-store/(.*)$': '<rootDir>/libs/event-store/src/$1',
    '^@metering/messaging$': '<rootDir>/libs/messaging/src',
    '^@metering/messaging/(.*)$': '<rootDir>/libs/messaging/src/$1',
    '^@metering/client$': '<rootDir>/packages/client/src',
  },
  testEnvironment: 'node',
  rootDir: __dirname,
};
module.exports = {
  // Project configs ignore testTimeout: it is global.
  testTimeout: 120000,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/libs/**/*.spec.ts', '<rootDir>/apps/**/*.spec.ts'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/**/*.test.ts', '<rootDir>/libs/**/*.int.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/kafka/', '<rootDir>/test/torture/', '\\.kafka\\.test\\.ts$'],
    },
    {
      // Tests against a real Kafka broker: one broker per run, started by the global setup
      // (KAFKA_BROKERS overrides it).
      ...common,
      displayName: 'kafka',
      testMatch: ['<rootDir>/test/kafka/**/*.test.ts', '<rootDir>/test/**/*.kafka.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/torture/'],
      globalSetup: '<rootDir>/scripts/kafka/jest-global-setup.js',
      globalTeardown: '<rootDir>/scripts/kafka/jest-global-teardown.js',
    },
    {
      // The fault run (issue 7): it starts, restarts and stops its own broker, so it has no global
      // setup. The test command runs its short form; `npm run torture` the full one.
      ...common,
      displayName: 'torture',
      testMatch: ['<rootDir>/test/torture/**/*.test.ts'],
    },
  ],
};
