// Writes oclif.manifest.json for the built commands in dist/ (what `oclif manifest` does): with it,
// oclif imports only the command being run; without it, every command module (and everything
// each imports) is loaded on every start to learn the flags and topics.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Plugin, settings } from '@oclif/core';

settings.enableAutoTranspile = false;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true, respectNoCacheDefault: true });
await plugin.load();
const n = Object.keys(plugin.manifest.commands).length;
if (n === 0) throw new Error('oclif manifest: no commands found in dist/ (run tsc first)');
writeFileSync(path.join(root, 'oclif.manifest.json'), `${JSON.stringify(plugin.manifest, null, 2)}\n`);
console.log(`oclif.manifest.json: ${n} commands`);
