/**
 * Where a calibration target is: its geography level, its area and its variable, read from the
 * target's name. Two spellings reach the review:
 * - the real pipeline's (`unified_matrix_builder._make_target_name`): `national/<variable>[/filter]`,
 *   `state_<fips>/<variable>[/filter]`, `cd_<geoid>/<variable>[/filter]` (geoid = fips*100 +
 *   district, at-large 00/98 read as 01), as `analyze_target_consistency.parse_target` splits it;
 * - the built-in twin's today: `<level>/<area>/<variable>[/constraints]`, with `US`, `CA`, `CA-01`.
 * Both end up as the same {level, area, variable}, so the review groups real and example runs alike.
 */

/** The geography levels of the targets, coarsest first. */
export const LEVELS = ['national', 'state', 'district', 'other'] as const;
/** A target's geography level (`other`: a name neither spelling explains). */
export type Level = (typeof LEVELS)[number];

/** One state (50 + DC): its USPS code, FIPS code and place in the tile grid (column, row). */
export interface StateTile {
  abbr: string;
  fips: number;
  col: number;
  row: number;
}

/**
 * The 51 states as a 12 x 8 tile grid (the common "tile map" layout): every state one equal tile,
 * so small states are as visible as large ones.
 */
export const STATE_TILES: readonly StateTile[] = (
  [
    ['AK', 2, 0, 0], ['ME', 23, 11, 0],
    ['VT', 50, 10, 1], ['NH', 33, 11, 1],
    ['WA', 53, 1, 2], ['ID', 16, 2, 2], ['MT', 30, 3, 2], ['ND', 38, 4, 2], ['MN', 27, 5, 2], ['IL', 17, 6, 2], ['WI', 55, 7, 2], ['MI', 26, 8, 2], ['NY', 36, 9, 2], ['RI', 44, 10, 2], ['MA', 25, 11, 2],
    ['OR', 41, 1, 3], ['NV', 32, 2, 3], ['WY', 56, 3, 3], ['SD', 46, 4, 3], ['IA', 19, 5, 3], ['IN', 18, 6, 3], ['OH', 39, 7, 3], ['PA', 42, 8, 3], ['NJ', 34, 9, 3], ['CT', 9, 10, 3],
    ['CA', 6, 1, 4], ['UT', 49, 2, 4], ['CO', 8, 3, 4], ['NE', 31, 4, 4], ['MO', 29, 5, 4], ['KY', 21, 6, 4], ['WV', 54, 7, 4], ['VA', 51, 8, 4], ['MD', 24, 9, 4], ['DE', 10, 10, 4],
    ['AZ', 4, 2, 5], ['NM', 35, 3, 5], ['KS', 20, 4, 5], ['AR', 5, 5, 5], ['TN', 47, 6, 5], ['NC', 37, 7, 5], ['SC', 45, 8, 5], ['DC', 11, 9, 5],
    ['OK', 40, 4, 6], ['LA', 22, 5, 6], ['MS', 28, 6, 6], ['AL', 1, 7, 6], ['GA', 13, 8, 6],
    ['HI', 15, 0, 7], ['TX', 48, 4, 7], ['FL', 12, 9, 7],
  ] as const
).map(([abbr, fips, col, row]) => ({ abbr, fips, col, row }));

const ABBR_BY_FIPS = new Map(STATE_TILES.map((s) => [s.fips, s.abbr]));

/** Where a target is, and what it measures. */
export interface TargetPlace {
  level: Level;
  /** `US`, a state (`CA`), a district (`CA-01`), or the raw geography when unknown. */
  area: string;
  /** The target's variable (`snap`, `person_count`). */
  variable: string;
  /** The state an area lies in (`CA` for `CA-01`), for the tile grid; absent for national. */
  state?: string;
}

/** `601` -> `CA-01` (at-large 00 and DC's 98 read as 01, as the real area catalogue does). */
export function districtName(geoid: number): string {
  const fips = Math.floor(geoid / 100);
  const number = geoid % 100 === 0 || geoid % 100 === 98 ? 1 : geoid % 100;
  return `${ABBR_BY_FIPS.get(fips) ?? String(fips)}-${String(number).padStart(2, '0')}`;
}

/** Reads a target name in either spelling (see the module comment). */
export function placeOf(name: string): TargetPlace {
  const parts = name.split('/');
  const [first = '', second = '', third = ''] = parts;
  if (first === 'national' || first === 'state' || first === 'district') {
    // The twin's `<level>/<area>/<variable>/...` (real national names have no area part: `national/<variable>`).
    const twin = parts.length >= 3 && (first !== 'national' || second === 'US');
    if (twin) {
      const state = first === 'national' ? undefined : second.split('-')[0];
      return { level: first, area: second, variable: third, ...(state && { state }) };
    }
    if (first === 'national') return { level: 'national', area: 'US', variable: second };
  }
  const stateMatch = /^state_(\d+)$/.exec(first);
  if (stateMatch) {
    const abbr = ABBR_BY_FIPS.get(Number(stateMatch[1])) ?? first;
    return { level: 'state', area: abbr, variable: second, state: abbr };
  }
  const cdMatch = /^cd_(\d+)$/.exec(first);
  if (cdMatch) {
    const area = districtName(Number(cdMatch[1]));
    return { level: 'district', area, variable: second, state: area.split('-')[0]! };
  }
  return { level: 'other', area: first, variable: second || first };
}
