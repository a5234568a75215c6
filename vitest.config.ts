import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Tests start real sshd, nginx and agent processes; two cores do not gain from more.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    fileParallelism: true,
    // Tests render copies of fleet.example, whose TLS key is encrypted to the example's demo
    // identity: they name it, as an operator would (edgectl uses it unasked only for the
    // example fleet itself). Tests of a missing or wrong identity unset it.
    env: { EDGECTL_AGE_IDENTITY_FILE: fileURLToPath(new URL('./fleet.example/DEMO-ONLY-NEVER-USE-FOR-REAL.age-identity.txt', import.meta.url)) },
  },
});
