import { html, raw, type Html } from './html';

/** The whole stylesheet, inline (the Content-Security-Policy allows inline styles and nothing else). */
const STYLE = raw(`
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --accent: #0550ae; --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #fff; }
header { display: flex; gap: 1.5em; align-items: baseline; padding: .7em 1.5em; background: #24292f; }
header strong { color: #fff; }
header a { color: #d0d7de; text-decoration: none; }
header a[aria-current] { color: #fff; border-bottom: 2px solid #fff; }
main { padding: 1em 1.5em 3em; max-width: 1400px; }
h1 { font-size: 1.45em; margin: .3em 0 .6em; }
h2 { font-size: 1.15em; margin: 1.6em 0 .5em; border-bottom: 1px solid var(--line); padding-bottom: .2em; }
a { color: var(--accent); }
table { border-collapse: collapse; margin: .3em 0 1em; }
th, td { border: 1px solid var(--line); padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: var(--soft); border: 1px solid var(--line); padding: .7em; overflow: auto; max-height: 32em; margin: .3em 0 1em; }
.muted { color: var(--muted); }
.null { color: var(--muted); font-style: italic; }
.ok { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
.warn { color: var(--warn); font-weight: 600; }
.state { display: inline-block; padding: 0 .5em; border-radius: 1em; border: 1px solid currentColor; font-size: .9em; }
.diff { margin: 0; padding: 0; list-style: none; }
.diff del { color: var(--bad); text-decoration: line-through; }
.diff ins { color: var(--ok); text-decoration: none; }
.tree, .tree ul { list-style: none; padding-left: 1.2em; margin: .2em 0; }
.tree li { border-left: 1px solid var(--line); padding-left: .6em; margin: .15em 0; }
.current { background: #fff8c5; padding: 0 .2em; }
td.time { white-space: nowrap; }
code.id { font-size: 11px; word-break: break-all; display: inline-block; max-width: 24em; }
form.filters { display: flex; flex-wrap: wrap; gap: .6em 1em; align-items: end; background: var(--soft); border: 1px solid var(--line); padding: .7em; margin-bottom: 1em; }
form.filters label { display: flex; flex-direction: column; font-size: .85em; color: var(--muted); }
input, select, button { font: inherit; padding: .2em .4em; }
form.inline { display: inline; }
nav.pages { display: flex; gap: 1.5em; margin: .5em 0 1em; }
details > summary { cursor: pointer; color: var(--accent); }
.error { border: 1px solid var(--bad); background: #ffebe9; padding: .7em 1em; }
`);

/** Where the navigation bar points. */
export type Section = 'aggregates' | 'feed' | 'reactors' | undefined;

/** A whole page: the navigation bar, then `body`. `base` prefixes every link. */
export function layout(base: string, title: string, section: Section, body: Html): Html {
  const item = (name: Exclude<Section, undefined>, label: string, path: string) =>
    html`<a href="${base}${path}"${section === name ? raw(' aria-current="page"') : ''}>${label}</a>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${title} · event browser</title>
<style>${STYLE}</style>
</head>
<body>
<header><strong>Event browser</strong>${item('aggregates', 'Aggregates', '/')}${item('feed', 'Feed', '/feed')}${item('reactors', 'Reactors', '/reactors')}</header>
<main>
${body}
</main>
</body>
</html>
`;
}

/** The page of a 4xx or 500 answer: its status and a message meant for the reader. */
export function errorPage(base: string, status: number, title: string, message: string): Html {
  return layout(base, `${status} ${title}`, undefined, html`<h1>${status} ${title}</h1><p class="error">${message}</p><p><a href="${base}/">Back to the aggregates</a></p>`);
}
