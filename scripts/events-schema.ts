// Writes docs/events.schema.json, the JSON Schema of `--json` output, from the zod definitions in
// src/report/event-schema.ts (`npm run schema`). test/json-contract.test.ts fails when the
// committed file differs from what this writes, so the published schema cannot go stale.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventsJsonSchema } from '../src/report/event-schema.ts';

export const SCHEMA_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'events.schema.json');

/** The file's text: the schema, pretty-printed, one trailing newline. */
export const schemaText = (): string => `${JSON.stringify(eventsJsonSchema(), null, 2)}\n`;

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(SCHEMA_FILE, schemaText());
  process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
}
