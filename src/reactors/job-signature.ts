import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ReactorJobData } from './reactor-queue';

/** What a job's signature covers: its id and every field of its data but the signature. */
export type SignedJobFields = Omit<ReactorJobData, 'signature'> & { jobId: string };

function canonical(fields: SignedJobFields): string {
  return JSON.stringify([fields.jobId, fields.table, fields.id, fields.type, fields.reactor, fields.position, fields.key]);
}

/**
 * HMAC-SHA256 of a job's id and data with the database's secret (kept in PostgreSQL, never in
 * Redis): someone who can write to Redis but not read the database can neither make up a job nor
 * move a real job's data under another id.
 */
export function signJob(secret: string, fields: SignedJobFields): string {
  return createHmac('sha256', secret).update(canonical(fields)).digest('hex');
}

export function verifyJobSignature(secret: string, fields: SignedJobFields, signature: unknown): boolean {
  if (typeof signature !== 'string' || !/^[0-9a-f]{64}$/.test(signature)) return false;
  return timingSafeEqual(Buffer.from(signJob(secret, fields), 'hex'), Buffer.from(signature, 'hex'));
}
