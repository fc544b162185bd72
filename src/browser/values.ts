import { isDate } from '../aggregates/column-values';
import { html, type Html } from './html';

/** A column or data value as text: JSON for strings and structures (so `''` and `null` differ), ISO for dates. */
export function valueText(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (isDate(value)) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  try {
    return JSON.stringify(value, (_key, item: unknown) => (typeof item === 'bigint' ? item.toString() : item)) ?? String(value);
  } catch {
    return String(value);
  }
}

/** A value for a table cell, `null` greyed out. */
export function valueHtml(value: unknown): Html {
  if (value === null || value === undefined) return html`<span class="null">${valueText(value)}</span>`;
  return html`<code>${valueText(value)}</code>`;
}

/** Stored JSON (data, metadata) indented, for a `<pre>`. */
export function prettyJson(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? 'null';
}

/** A moment as shown everywhere: ISO 8601 in UTC, to the millisecond events are stored with. */
export function timeText(value: Date | null | undefined): string {
  return value ? value.toISOString() : '';
}

/** A duration in ms as a person reads it: `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`. */
export function durationText(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes} min ${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}
