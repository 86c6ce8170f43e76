import { csvRecords } from '../util/csv.ts';
import { placeOf, type TargetPlace } from './geography.ts';

/**
 * A run's fit diagnostics, read from the files the real pipeline writes (they are the contract;
 * policyengine-us-data `calibration/unified_calibration.py` and `modal_app/pipeline.py`):
 * - `[national_]unified_diagnostics.csv`: one row per target after the fit,
 *   `target,true_value,estimate,rel_error,abs_rel_error,achievable` (compute_diagnostics);
 * - `[national_]calibration_log.csv`: one row per target per logged epoch (`--log-freq`),
 *   `target_name,estimate,target,epoch,error,rel_error,abs_error,rel_abs_error,loss,achievable`,
 *   aggregated here per epoch as the fit prints it (total_loss = sum of loss, mean and max of
 *   rel_abs_error);
 * - `[national_]unified_run_config.json`: hyperparameters, `mean_error_pct`, `epochs_total`...;
 * - `validation_results.csv`: the area validation rows (`area_type,area_id,display_name,district,
 *   variable,target_name,period,target_value,sim_value,error,rel_error,abs_error,rel_abs_error,
 *   sanity_check,sanity_reason,in_training`).
 * The built-in twin's current columns (`target_name,target_value,initial_estimate,final_estimate,
 * rel_error` and `epoch,loss,mean_rel_error`) are read as well, by header, so the review works on
 * the example today and keeps working once the twin writes the real columns. A missing or
 * unreadable file is a note, never a failure: the review says what it could not show.
 */

/** The two weight fits of a run. */
export const FITS = ['regional', 'national'] as const;
export type FitName = (typeof FITS)[number];

/** The file prefix of a fit's outputs (`national_unified_diagnostics.csv`). */
export const fitPrefix = (fit: FitName): string => (fit === 'national' ? 'national_' : '');

/** One target after the fit. */
export interface TargetError extends TargetPlace {
  name: string;
  value: number;
  estimate: number;
  /** (estimate - value) / |value|; 0 when the value is 0, as the real code does. */
  relError: number;
  /** Whether any record can move this target (row sum > 0); unachievable targets are left out of the means. */
  achievable: boolean;
}

/** One logged epoch of a fit. */
export interface CurvePoint {
  epoch: number;
  loss: number;
  meanRelError: number;
  /** Largest |relative error| at that epoch, when the log has per-target rows. */
  maxRelError?: number;
}

/** What one fit left for review; null parts were missing (see `notes`). */
export interface FitDiagnostics {
  targets: TargetError[] | null;
  curve: CurvePoint[] | null;
  config: Record<string, unknown> | null;
}

/** One row of validation_results.csv: an area H5 checked against a target. */
export interface ValidationRow {
  areaType: string;
  areaId: string;
  displayName: string;
  district: string;
  variable: string;
  targetName: string;
  targetValue: number;
  simValue: number;
  /** Null when the real writer left it empty (district rows of a state check). */
  relAbsError: number | null;
  sanityCheck: string;
}

/** Everything the review reads about one run's fits. */
export interface Diagnostics {
  fits: Record<FitName, FitDiagnostics>;
  validation: ValidationRow[] | null;
  /** One line per file that was missing or unreadable, for the page and the terminal. */
  notes: string[];
}

/** Reads one diagnostics file by name; null when it does not exist. */
export type DiagnosticsReader = (name: string) => Promise<string | null>;

/** The file names the review asks a reader for. */
export const DIAGNOSTICS_FILES = [...FITS.flatMap((fit) => ['unified_diagnostics.csv', 'calibration_log.csv', 'unified_run_config.json'].map((f) => `${fitPrefix(fit)}${f}`)), 'validation_results.csv'];

const num = (text: string | undefined): number => (text === undefined || text.trim() === '' ? Number.NaN : Number(text));
const bool = (text: string | undefined): boolean => text === undefined || text === '' || /^(true|1)$/i.test(text.trim());

/**
 * Reads the diagnostics files through `read`; what is missing becomes a note. `targets` reads only
 * the per-target files, all the numbers of a diff need from a base (promote reads them from the store).
 */
export async function readDiagnostics(read: DiagnosticsReader, where: string, scope: 'all' | 'targets' = 'all'): Promise<Diagnostics> {
  const notes: string[] = [];
  const attempt = async <T>(name: string, parse: (text: string) => T, required: boolean): Promise<T | null> => {
    const text = await read(name).catch((error: Error) => {
      notes.push(`${name}: could not be read from ${where} (${error.message})`);
      return undefined;
    });
    if (text === undefined) return null;
    if (text === null) {
      if (required) notes.push(`${name}: not in ${where}`);
      return null;
    }
    try {
      return parse(text);
    } catch (error) {
      notes.push(`${name}: unreadable (${(error as Error).message})`);
      return null;
    }
  };
  const fits = {} as Record<FitName, FitDiagnostics>;
  for (const fit of FITS) {
    const p = fitPrefix(fit);
    const all = scope === 'all';
    fits[fit] = {
      targets: await attempt(`${p}unified_diagnostics.csv`, parseTargets, true),
      curve: all ? await attempt(`${p}calibration_log.csv`, parseCurve, true) : null,
      config: all ? await attempt(`${p}unified_run_config.json`, (t) => JSON.parse(t) as Record<string, unknown>, true) : null,
    };
  }
  const validation = scope === 'all' ? await attempt('validation_results.csv', parseValidation, false) : null;
  if (!validation && scope === 'all') notes.push(`validation_results.csv: not in ${where} (areas were not validated against targets)`);
  return { fits, validation, notes };
}

/** unified_diagnostics.csv, real columns or the twin's. */
export function parseTargets(text: string): TargetError[] {
  const out: TargetError[] = [];
  const header = csvRecords(text, (r) => {
    const name = r.target ?? r.target_name ?? '';
    const value = num(r.true_value ?? r.target_value);
    const estimate = num(r.estimate ?? r.final_estimate);
    const given = num(r.rel_error);
    const relError = Number.isFinite(given) ? given : value !== 0 ? (estimate - value) / Math.abs(value) : 0;
    out.push({ name, ...placeOf(name), value, estimate, relError, achievable: bool(r.achievable) });
  });
  if (!header.includes('target') && !header.includes('target_name')) throw new Error(`no target column (columns: ${header.join(',')})`);
  return out;
}

/** calibration_log.csv: per-target rows aggregated per epoch (real), or one row per epoch (twin). */
export function parseCurve(text: string): CurvePoint[] {
  const byEpoch = new Map<number, { loss: number; sum: number; n: number; max: number; mean?: number }>();
  const header = csvRecords(text, (r) => {
    const epoch = num(r.epoch);
    if (!Number.isFinite(epoch)) return;
    const point = byEpoch.get(epoch) ?? { loss: 0, sum: 0, n: 0, max: 0 };
    if (r.rel_abs_error !== undefined) {
      const err = Math.abs(num(r.rel_abs_error));
      if (Number.isFinite(err)) {
        point.sum += err;
        point.n++;
        point.max = Math.max(point.max, err);
      }
      point.loss += num(r.loss) || 0;
    } else {
      point.loss = num(r.loss);
      point.mean = num(r.mean_rel_error);
    }
    byEpoch.set(epoch, point);
  });
  if (!header.includes('epoch')) throw new Error(`no epoch column (columns: ${header.join(',')})`);
  return [...byEpoch]
    .sort(([a], [b]) => a - b)
    .map(([epoch, p]) => (p.mean !== undefined ? { epoch, loss: p.loss, meanRelError: p.mean } : { epoch, loss: p.loss, meanRelError: p.n ? p.sum / p.n : 0, maxRelError: p.max }));
}

/** validation_results.csv (real columns). */
export function parseValidation(text: string): ValidationRow[] {
  const out: ValidationRow[] = [];
  const header = csvRecords(text, (r) => {
    const rae = num(r.rel_abs_error);
    out.push({
      areaType: r.area_type ?? '',
      areaId: r.area_id ?? '',
      displayName: r.display_name ?? '',
      district: r.district ?? '',
      variable: r.variable ?? '',
      targetName: r.target_name ?? '',
      targetValue: num(r.target_value),
      simValue: num(r.sim_value),
      relAbsError: Number.isFinite(rae) ? rae : null,
      sanityCheck: r.sanity_check ?? '',
    });
  });
  if (!header.includes('area_type')) throw new Error(`no area_type column (columns: ${header.join(',')})`);
  return out;
}
