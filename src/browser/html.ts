/**
 * HTML built by one tagged template, so that escaping is the default: every interpolated value is
 * escaped by {@link escapeHtml} unless it is already {@link Html} (made by the template itself).
 * Nothing else in the browser writes markup from strings.
 */

/** Markup that is safe to insert as is: only {@link html} and {@link raw} make it. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** The one escape function: text safe in element content and in quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => ESCAPES[character]);
}

/** What a template may interpolate: text (escaped), markup, nothing, or a list of those. */
export type HtmlValue = Html | string | number | boolean | null | undefined | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value instanceof Html) return value.value;
  if (value === null || value === undefined || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/** The template tag: `html\`<td>${text}</td>\`` escapes `text`. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0];
  for (let index = 0; index < values.length; index += 1) out += render(values[index]) + strings[index + 1];
  return new Html(out);
}

/** Markup written by this module's callers as constants (the stylesheet), never from data. */
export function raw(markup: string): Html {
  return new Html(markup);
}
