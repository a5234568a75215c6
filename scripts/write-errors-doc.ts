import { writeFileSync } from 'node:fs';
import { ERRORS_DOC, errorsDoc } from './gen-errors-doc.js';

writeFileSync(ERRORS_DOC, errorsDoc());
