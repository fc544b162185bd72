import type { ReactorQueue } from '../../reactors/reactor-queue';
import { href, type BrowserContext, type PageRequest, type PageResult } from '../browser-context';
import { html, type Html } from '../html';
import { eventLink } from '../links';
import { failedJobs, type FailedReactorJob } from '../reactor-jobs';
import { durationText, timeText } from '../values';

/** Failed jobs read from the queue's failed set per page view, most recent first. */
export const MAX_FAILED_JOBS = 200;

const STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'] as const;

async function failedByReactor(context: BrowserContext, request: PageRequest, queue: ReactorQueue): Promise<Html> {
  const { jobs, total } = await failedJobs(queue, MAX_FAILED_JOBS);
  if (jobs.length === 0) return html`<p class="ok">No failed jobs.</p>`;
  const byReactor = new Map<string, FailedReactorJob[]>();
  for (const job of jobs) byReactor.set(job.data.reactor, [...(byReactor.get(job.data.reactor) ?? []), job]);
  const sections = await Promise.all(
    [...byReactor].sort(([a], [b]) => a.localeCompare(b)).map(async ([reactor, failed]) => {
      const rows = await Promise.all(
        failed.map(async (job) => {
          const retry = context.options.readOnly
            ? ''
            : html`<td><form class="inline" method="post" action="${href(request, ['jobs', job.jobId, 'retry'])}"><input type="hidden" name="token" value="${await context.csrf.issue(job.jobId)}"><input type="hidden" name="from" value="reactors"><button>Retry</button></form></td>`;
          return html`<tr><td>${eventLink(request, job.data.table, String(job.data.id))}<br><span class="muted">${job.data.type}</span></td><td class="num">${job.attemptsMade}</td><td><code>${
            job.failedReason
          }</code></td><td class="time">${timeText(job.finishedOn)}</td><td><code class="id muted">${job.jobId}</code></td>${retry}</tr>`;
        }),
      );
      return html`<h3>${reactor} <span class="bad">${failed.length} failed</span></h3>
<table><thead><tr><th>Event</th><th class="num">Attempts</th><th>Failed reason</th><th>Failed at (UTC)</th><th>Job id</th>${context.options.readOnly ? '' : html`<th></th>`}</tr></thead><tbody>${rows}</tbody></table>`;
    }),
  );
  const note = total > MAX_FAILED_JOBS ? html`<p class="muted">The ${MAX_FAILED_JOBS} most recent of ${total} failed jobs read.</p>` : '';
  return html`${note}${sections}`;
}

/**
 * `/reactors`: the outbox backlog and the age of its oldest row (as `es.health()` reports them),
 * the queue's jobs by state, and the failed jobs of this database per reactor.
 */
export async function reactorsPage(context: BrowserContext, request: PageRequest): Promise<PageResult> {
  const queue = context.queue;
  const [health, counts] = await Promise.all([context.es.health(), queue ? queue.queue.getJobCounts(...STATES) : undefined]);
  const outbox = health.outbox;
  const tone = (status: string) => (status === 'ok' ? 'ok' : status === 'degraded' ? 'warn' : 'bad');
  const body = html`<h1>Reactors</h1>
<h2>Outbox</h2>
<table><tbody>
<tr><th>Status</th><td><span class="${tone(outbox.status)}">${outbox.status}</span>${outbox.reason ? html` <span class="muted">${outbox.reason}</span>` : ''}</td></tr>
<tr><th>Rows not handed to the queue</th><td class="num">${outbox.pending ?? 'unknown'}</td></tr>
<tr><th>Oldest of them waits for</th><td class="num">${outbox.oldestAgeMs === null ? html`<span class="null">none</span>` : durationText(outbox.oldestAgeMs)}</td></tr>
</tbody></table>
<h2>Queue</h2>
${
  !queue || !counts
    ? html`<p class="muted">No queue is configured: async reactors need <code>{ queue }</code> in <code>EventSourcing.attach</code>.</p>`
    : html`<p>${queue.name} <span class="${tone(health.queue.status)}">${health.queue.status}</span></p><table><thead><tr>${STATES.map(
        (state) => html`<th class="num">${state}</th>`,
      )}</tr></thead><tbody><tr>${STATES.map((state) => html`<td class="num">${counts[state] ?? 0}</td>`)}</tr></tbody></table>
<h2>Failed jobs by reactor</h2>
${await failedByReactor(context, request, queue)}`
}`;
  return { title: 'Reactors', section: 'reactors', body };
}
