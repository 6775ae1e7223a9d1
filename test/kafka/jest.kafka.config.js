// Runs only the tests in test/kafka, with the Kafka broker global setup:
//   npx jest -c test/kafka/jest.kafka.config.js
// (The root config's `kafka` project does the same for test/kafka and every *.kafka.test.ts:
//   npx jest --selectProjects kafka.) Works whether or not the root config has that project.
const path = require('node:path');
const root = require('../../jest.config.js');

const base = root.projects.find((p) => p.displayName === 'kafka') || root.projects.find((p) => p.displayName === 'integration');
const rootDir = path.resolve(__dirname, '../..');

module.exports = {
  ...base,
  displayName: 'kafka',
  rootDir,
  testTimeout: root.testTimeout || base.testTimeout || 120000,
  testMatch: ['<rootDir>/test/kafka/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  moduleNameMapper: {
    ...base.moduleNameMapper,
    '^@metering/messaging$': '<rootDir>/libs/messaging/src',
    '^@metering/messaging/(.*)$': '<rootDir>/libs/messaging/src/$1',
  },
  globalSetup: '<rootDir>/scripts/kafka/jest-global-setup.js',
  globalTeardown: '<rootDir>/scripts/kafka/jest-global-teardown.js',
};
