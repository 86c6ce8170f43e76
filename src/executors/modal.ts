import { UsageError } from '../errors.ts';
import type { Prepared } from '../prepare.ts';
import type { Executor } from './executor.ts';

/** Placeholder until the Modal executor lands: EXECUTOR=modal is refused before any work. */
export async function createModalExecutor(_p: Prepared): Promise<Executor> {
  throw new UsageError('modal-unavailable', 'EXECUTOR=modal is not available in this build; use EXECUTOR=local');
}
