#!/usr/bin/env node
// Offline check of a package-lock.json (v3): every dependency and optional dependency that a locked
// package names resolves, by Node's lookup (the package's own node_modules, then each parent's),
// to an entry of the lock, whatever platform it is for; and the root entry asks for exactly what
// package.json asks for. A lock written from a node_modules of one platform fails it (npm 11 prunes
// the other platforms' optional binaries), as `npm ci` would on a clean clone.
// Usage: node scripts/lock-check.js [path/to/package-lock.json]   (exit 1 and a list when not)
'use strict';
const fs = require('node:fs');
const path = require('node:path');

function checkLock(lockFile, pkgFile = path.join(path.dirname(lockFile), 'package.json')) {
  const lock = JSON.parse(fs.readFileSync(lockFile, 'utf8'));
  const problems = [];
  if (lock.lockfileVersion !== 3) problems.push(`lockfileVersion is ${lock.lockfileVersion}, expected 3`);
  const packages = lock.packages ?? {};
  const resolve = (from, name) => {
    // from: "" (root) or "node_modules/a/node_modules/b"
    let dir = from;
    for (;;) {
      const candidate = dir ? `${dir}/node_modules/${name}` : `node_modules/${name}`;
      if (packages[candidate]) return candidate;
      if (!dir) return null;
      const i = dir.lastIndexOf('/node_modules/');
      dir = i < 0 ? '' : dir.slice(0, i);
    }
  };
  for (const [at, entry] of Object.entries(packages)) {
    if (entry.link) continue;
    const wanted = { ...(entry.dependencies ?? {}), ...(entry.optionalDependencies ?? {}) };
    for (const name of Object.keys(wanted)) {
      if (at === '' && (entry.devDependencies ?? {})[name]) continue;
      if (!resolve(at, name)) problems.push(`${at || '(root)'} needs ${name}@${wanted[name]}: missing from the lock`);
    }
    if (at === '') for (const name of Object.keys(entry.devDependencies ?? {})) if (!resolve('', name)) problems.push(`(root) needs ${name}: missing from the lock`);
  }
  if (fs.existsSync(pkgFile)) {
    const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8'));
    const root = packages[''] ?? {};
    for (const field of ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies']) {
      const a = JSON.stringify(Object.entries(pkg[field] ?? {}).sort());
      const b = JSON.stringify(Object.entries(root[field] ?? {}).sort());
      if (a !== b) problems.push(`package.json ${field} differ from the lock's root entry: run scripts/lock-refresh.sh`);
    }
  }
  const platformPackages = Object.values(packages).filter((e) => e.os || e.cpu).length;
  return { problems, platformPackages, packages: Object.keys(packages).length - 1 };
}

module.exports = { checkLock };

if (require.main === module) {
  const file = path.resolve(process.argv[2] ?? 'package-lock.json');
  const { problems, platformPackages, packages } = checkLock(file);
  if (problems.length) {
    console.error(`${file}: ${problems.length} problem(s)\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.error(`${file}: ${packages} packages, ${platformPackages} platform-specific, every dependency locked`);
}
