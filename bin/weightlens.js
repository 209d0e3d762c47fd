#!/usr/bin/env node
// The published entry point: the CLI bundle that `npm run build` writes to dist/.
require('../dist/cli.js');
