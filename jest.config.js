// Two projects: `unit` (pure functions, goldens, mocks, policy over gRPC) runs in `npm test`;
// `integration` (real Debian daemons on 127.0.0.1) runs in `npm run test:integration`; `fleet`
// (the whole stack booted as four Debian 12 system containers) in `npm run test:fleet`.
const transform = { "^.+\\.ts$": ["@swc/jest", { jsc: { target: "es2020" } }] };
module.exports = {
  // Jest's default is cores − 1, a single worker on the 2-core machines this runs on; the unit
  // suites are CPU-bound and independent, so both cores halve the wall time.
  maxWorkers: 2,
  projects: [
    {
      displayName: "unit",
      testEnvironment: "node",
      transform,
      testMatch: ["<rootDir>/tests/{unit,components,policy,e2e}/**/*.test.ts"],
    },
    {
      displayName: "integration",
      testEnvironment: "node",
      transform,
      testMatch: ["<rootDir>/tests/integration/**/*.test.ts"],
    },
    {
      displayName: "fleet",
      testEnvironment: "node",
      transform,
      testMatch: ["<rootDir>/tests/fleet/**/*.test.ts"],
    },
  ],
};
