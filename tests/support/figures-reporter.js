'use strict';
/**
 * Prints the figures the tests recorded with recordFigure (tests/support/figures.ts) once the run
 * ends, summed per name. Plain CommonJS: jest loads reporters without transforming them.
 * The lines never say "passed" or "failed": .ci/run counts lines with those words.
 */
const fs = require('node:fs');
const path = require('node:path');

const FIGURES_FILE = 'figures.jsonl';
const RESERVED = /passed|failed/i;

/** Totals per (name, unit), in the order names first appear; lines that are not figures are skipped. */
function summarizeFigures(lines) {
  const totals = new Map();
  for (const line of lines) {
    let figure;
    try {
      figure = JSON.parse(line);
    } catch {
      continue; // a worker killed mid-write leaves a partial line
    }
    if (!figure || typeof figure.name !== 'string' || !Number.isFinite(figure.value)) continue;
    const unit = typeof figure.unit === 'string' ? figure.unit : '';
    const key = JSON.stringify([figure.name, unit]);
    const total = totals.get(key) ?? { name: figure.name, unit, value: 0 };
    total.value += figure.value;
    totals.set(key, total);
  }
  return [...totals.values()];
}

/** The printed table, or '' when there is nothing to show. */
function formatFigures(totals) {
  const rows = totals.filter((total) => !RESERVED.test(total.name) && !RESERVED.test(total.unit));
  if (rows.length === 0) return '';
  const values = rows.map((total) => String(Math.round(total.value * 1000) / 1000));
  const nameWidth = Math.max(...rows.map((total) => total.name.length));
  const valueWidth = Math.max(...values.map((value) => value.length));
  const lines = rows.map((total, i) => `  ${total.name.padEnd(nameWidth)}  ${values[i].padStart(valueWidth)}${total.unit ? ` ${total.unit}` : ''}`);
  return ['Reliability figures', ...lines].join('\n') + '\n';
}

class FiguresReporter {
  onRunComplete() {
    const dir = process.env.ES_FIGURES_DIR;
    // Only a directory openFiguresDir made: the variable may also come from a user's shell.
    if (!dir || !path.basename(dir).startsWith('typeorm-es-figures-')) return;
    const file = path.join(dir, FIGURES_FILE);
    try {
      const table = fs.existsSync(file) ? formatFigures(summarizeFigures(fs.readFileSync(file, 'utf8').split('\n'))) : '';
      // stderr, as jest's own reporters: stdout may carry the --json result.
      if (table) process.stderr.write(`\n${table}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

module.exports = FiguresReporter;
module.exports.FIGURES_FILE = FIGURES_FILE;
module.exports.RESERVED = RESERVED;
module.exports.summarizeFigures = summarizeFigures;
module.exports.formatFigures = formatFigures;
