// Makes (once per machine) the Debian root the systemd node tests boot, so that CI's test time
// does not include it. The root lives in a fixed directory outside the checkout and is reused.
import { ensureDebianRoot } from '../test/helpers/nspawn.js';

const root = await ensureDebianRoot((s) => console.log(`debian root: ${s}`));
console.log(`debian root ready: ${root}`);
