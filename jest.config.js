/** Jest in ESM mode through ts-jest. `npm test` type-checks and compiles everything with
 *  `tsc -p tsconfig.json` before jest starts (process tests run the compiled dist/), so ts-jest
 *  only transpiles (fast, and one compile error does not hide the others). */
export default {
  testEnvironment: '<rootDir>/test/support/node-environment.mjs',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, diagnostics: false }],
  },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  maxWorkers: 2,
  testTimeout: 60000,
};
