// Code blocks in README.md and docs/*.md are copies of regions of files under examples/, marked
//   <!-- include: examples/x.ts#name -->
// above the block. `node scripts/doc-includes.js` rewrites every marked block from its region;
// tests/integration/docs.test.ts fails when a block and its region differ.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
// A fence opens and closes at the start of a line; an empty block is allowed.
const blockPattern = /(?:<!-- include: (\S+) -->\n)?^```(\w*)\n([\s\S]*?)^```$/gm;

/** The lines between `// #region name` and `// #endregion name` of a file, dedented. */
function region(file, name) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const start = lines.findIndex((line) => line.trim() === `// #region ${name}`);
  const end = lines.findIndex((line, index) => index > start && line.trim() === `// #endregion ${name}`);
  if (start < 0 || end < 0) throw new Error(`${file} has no region '${name}'`);
  const body = lines.slice(start + 1, end);
  const indent = Math.min(...body.filter((line) => line.trim()).map((line) => line.length - line.trimStart().length));
  return body.map((line) => line.slice(indent)).join('\n');
}

/** The fenced code blocks of a Markdown file, with the include marker each one carries. */
function codeBlocks(doc) {
  const text = fs.readFileSync(doc, 'utf8');
  const blocks = [];
  for (const match of text.matchAll(blockPattern)) {
    blocks.push({ doc: path.basename(doc), include: match[1], language: match[2], code: match[3].replace(/\n$/, '') });
  }
  return blocks;
}

/** README.md and every Markdown file under docs/. */
function docFiles() {
  const docs = path.join(root, 'docs');
  return [path.join(root, 'README.md'), ...fs.readdirSync(docs).filter((f) => f.endsWith('.md')).map((f) => path.join(docs, f))];
}

function sync() {
  for (const doc of docFiles()) {
    const text = fs.readFileSync(doc, 'utf8');
    const synced = text.replace(blockPattern, (block, include, language) => {
      if (!include) return block;
      const [file, name] = include.split('#');
      return `<!-- include: ${include} -->\n\`\`\`${language}\n${region(path.join(root, file), name)}\n\`\`\``;
    });
    if (synced !== text) {
      fs.writeFileSync(doc, synced);
      console.log(`updated ${path.relative(root, doc)}`);
    }
  }
}

module.exports = { region, codeBlocks, docFiles, root };
if (require.main === module) sync();
