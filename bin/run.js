#!/usr/bin/env node
// Entry point of the edgectl CLI (and of the on-node agent: `edgectl agent`).
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
