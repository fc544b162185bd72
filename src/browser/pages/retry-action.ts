import { href, type BrowserContext, type PageRequest, type PageResult } from '../browser-context';
import { HttpError } from '../http-error';
import { eventHref } from '../links';
import { ownedJob, retryFailedJob } from '../reactor-jobs';

/**
 * POST `/jobs/<jobId>/retry` (only with `readOnly: false`): a failed job of this database back to
 * waiting, then a redirect to the page the form was on. 404 for a job that is not this database's,
 * 403 without a valid token for this job, 409 for a job that is not failed.
 */
export async function retryAction(context: BrowserContext, request: PageRequest, jobId: string, form: URLSearchParams): Promise<PageResult> {
  const job = await ownedJob(context.queue, jobId);
  const tokens = form.getAll('token');
  if (tokens.length !== 1 || !(await context.csrf.check(jobId, tokens[0]))) {
    throw new HttpError(403, 'The form has no valid token for this job (it is missing, expired, or for another job): reload the page and try again');
  }
  await retryFailedJob(job);
  return { redirect: form.get('from') === 'reactors' ? href(request, ['reactors']) : eventHref(request, job.data.table, String(job.data.id)) };
}
