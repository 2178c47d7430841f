// Copies the .proto files the client loads from the repository's proto/ into ./proto, so that
// `npm pack` ships them (the "prepack" script).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { PROTOS } = require('../index.js');

const from = path.join(__dirname, '..', '..', '..', 'proto');
const to = path.join(__dirname, '..', 'proto');
for (const file of PROTOS) {
  fs.mkdirSync(path.dirname(path.join(to, file)), { recursive: true });
  fs.copyFileSync(path.join(from, file), path.join(to, file));
}
console.log(`copied ${PROTOS.length} .proto files into ${to}`);
