/**
 * RFC 4180 CSV, as pandas' `to_csv` and Python's `csv` module write it: fields separated by commas,
 * quoted with `"` when they hold a comma, quote or newline (`""` inside quotes is one quote), rows
 * ended by `\n` or `\r\n`. Rows are handed to a callback one by one, so a large log (the real
 * calibration_log.csv has a row per target per logged epoch) is aggregated without keeping them all.
 */
export function eachCsvRow(text: string, onRow: (fields: string[]) => void): void {
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const endRow = () => {
    fields.push(field);
    field = '';
    if (fields.length > 1 || fields[0] !== '') onRow(fields);
    fields = [];
  };
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else field += c;
      i++;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else if (c === '\n') endRow();
    else if (c !== '\r') field += c;
    i++;
  }
  if (field !== '' || fields.length > 0) endRow();
}

/** A header row and its data rows as records (column name -> text). */
export function csvRecords(text: string, onRecord: (record: Readonly<Record<string, string>>) => void): string[] {
  let header: string[] | null = null;
  eachCsvRow(text, (fields) => {
    if (!header) {
      header = fields.map((f) => f.trim());
      return;
    }
    const record: Record<string, string> = {};
    header.forEach((name, i) => (record[name] = fields[i] ?? ''));
    onRecord(record);
  });
  return header ?? [];
}
