// The package.json that goes into the tarball has no `scripts`: they are all for working on this
// repository (build, tests, demo), and npm 11 warns everyone who installs a tarball or a file:
// dependency about `prepare` as an unapproved install script.
//
// npm has no way to pack a different manifest, so `prepack` (after building dist/) runs
// `node scripts/pack-manifest.js strip`, which keeps the original beside it and writes package.json
// without `scripts`; npm then packs that file, and `postpack` (which npm takes from the manifest it
// read before prepack) runs `restore`. If a pack is interrupted in between, the next `strip`
// restores first, and `node scripts/pack-manifest.js restore` does it by hand.
// See docs/design-decisions.md, "The published package.json has no scripts".
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const manifest = path.join(root, 'package.json');
const original = path.join(root, '.package.json.before-pack');

/** Fields of package.json that only matter inside this repository. */
const developmentOnly = ['scripts'];

function restore() {
  if (!fs.existsSync(original)) return false;
  fs.copyFileSync(original, manifest);
  fs.rmSync(original);
  return true;
}

function strip() {
  if (restore()) process.stderr.write('pack-manifest: restored package.json left stripped by an interrupted pack\n');
  const text = fs.readFileSync(manifest, 'utf8');
  const packed = JSON.parse(text);
  for (const field of developmentOnly) delete packed[field];
  fs.writeFileSync(original, text);
  fs.writeFileSync(manifest, `${JSON.stringify(packed, null, 2)}\n`);
  process.stderr.write(
    `pack-manifest: package.json without ${developmentOnly.join(', ')} for the tarball; ` +
      'postpack puts it back (by hand: node scripts/pack-manifest.js restore)\n',
  );
}

const command = process.argv[2];
if (command === 'strip') strip();
else if (command === 'restore') restore();
else {
  process.stderr.write('usage: node scripts/pack-manifest.js strip|restore\n');
  process.exit(2);
}
