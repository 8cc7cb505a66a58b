#!/usr/bin/env node
// The `sluice` command: loads the TypeScript CLI through tsx, so no build step stands between a
// checkout and a working command.
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
