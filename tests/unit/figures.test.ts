import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FIGURES_DIR_ENV, recordFigure } from '../support/figures';
import { FIGURES_FILE, formatFigures, summarizeFigures } from '../support/figures-reporter';

const line = (figure: object) => JSON.stringify(figure);

describe('summarizeFigures', () => {
  test('sums values per name and unit, in the order names first appear', () => {
    const lines = [
      line({ name: 'writers', value: 32 }),
      line({ name: 'events written', value: 600 }),
      line({ name: 'writers', value: 32 }),
      line({ name: 'outage', value: 1.25, unit: 's' }),
      line({ name: 'events written', value: 634 }),
      line({ name: 'outage', value: 0.5, unit: 's' }),
    ];
    expect(summarizeFigures(lines)).toEqual([
      { name: 'writers', unit: '', value: 64 },
      { name: 'events written', unit: '', value: 1234 },
      { name: 'outage', unit: 's', value: 1.75 },
    ]);
  });

  test('keeps a name recorded with two units as two totals rather than adding seconds to milliseconds', () => {
    const lines = [line({ name: 'outage', value: 2, unit: 's' }), line({ name: 'outage', value: 500, unit: 'ms' })];
    expect(summarizeFigures(lines)).toEqual([
      { name: 'outage', unit: 's', value: 2 },
      { name: 'outage', unit: 'ms', value: 500 },
    ]);
  });

  test('skips blank and partial lines (a worker killed mid-write) and values that are not numbers', () => {
    const lines = ['', '{"name":"events lo', line({ name: 'kills', value: '3' }), line({ value: 1 }), line({ name: 'events lost', value: 0 })];
    expect(summarizeFigures(lines)).toEqual([{ name: 'events lost', unit: '', value: 0 }]);
  });
});

describe('formatFigures', () => {
  test('prints a titled table, values aligned, zeros shown', () => {
    const table = formatFigures([
      { name: 'writers', unit: '', value: 64 },
      { name: 'events lost', unit: '', value: 0 },
      { name: 'outage', unit: 's', value: 1.23456 },
    ]);
    expect(table).toBe(['Reliability figures', '  writers         64', '  events lost      0', '  outage       1.235 s', ''].join('\n'));
  });

  test('prints nothing without figures', () => {
    expect(formatFigures([])).toBe('');
    expect(formatFigures(summarizeFigures(['']))).toBe('');
  });

  test('never prints the words .ci/run counts as test results', () => {
    const table = formatFigures([
      { name: 'writes failed', unit: '', value: 2 },
      { name: 'writers', unit: '', value: 1 },
    ]);
    expect(table).not.toMatch(/passed|failed/i);
    expect(table).toContain('writers');
  });
});

describe('recordFigure', () => {
  let dir: string;
  const saved = process.env[FIGURES_DIR_ENV];

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'figures-unit-'));
    process.env[FIGURES_DIR_ENV] = dir;
  });

  afterEach(() => {
    if (saved === undefined) delete process.env[FIGURES_DIR_ENV];
    else process.env[FIGURES_DIR_ENV] = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  test('appends lines the reporter sums', () => {
    recordFigure('processes killed', 4);
    recordFigure('processes killed', 5);
    recordFigure('outage', 2.5, 's');
    const lines = readFileSync(path.join(dir, FIGURES_FILE), 'utf8').split('\n');
    expect(summarizeFigures(lines)).toEqual([
      { name: 'processes killed', unit: '', value: 9 },
      { name: 'outage', unit: 's', value: 2.5 },
    ]);
  });

  test('refuses names CI would count as results, values that are not finite, and a run without a directory', () => {
    expect(() => recordFigure('writes failed', 1)).toThrow(/passed.*failed/);
    expect(() => recordFigure('events', Number.NaN)).toThrow(/finite/);
    delete process.env[FIGURES_DIR_ENV];
    expect(() => recordFigure('events', 1)).toThrow(FIGURES_DIR_ENV);
  });
});
