/**
 * The version of the `--json` contract (event-schema.ts), in the header every `--json` output
 * starts with. Bumped when a field is removed or changes meaning; a new event or optional field
 * is not a break. Its own module so the CLI can print it without building the zod schemas.
 */
export const EVENT_SCHEMA_VERSION = 1;
