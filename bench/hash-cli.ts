/**
 * Our hashing, as the engine does it (src/hash.ts, through the digest memo's path: a stat, then
 * digestFile with the size), for scenarios 6 and 7. Bundled by bench/run.mjs from the engine
 * snapshot. Usage: node hash-cli.mjs FILE... (all files at once, as a build hashes outputs).
 * Prints one JSON line: digests, in-process seconds, CPU seconds of all threads, and peak RSS.
 */
import { stat } from 'node:fs/promises';
import { digestFile } from '../src/caching/hash.ts';

const files = process.argv.slice(2);
const started = process.hrtime.bigint();
const cpuBefore = process.cpuUsage();
const results = await Promise.all(
  files.map(async (path) => {
    const st = await stat(path);
    return { path, ...(await digestFile(path, { size: st.size, workers: process.env.BUILD_HASH_WORKERS !== '0' })) };
  }),
);
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
// CPU of every thread of the process (main, libuv's readers, workers) over the same window:
// cpuSeconds / seconds is how many cores the hashing kept busy.
const cpu = process.cpuUsage(cpuBefore);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
process.stdout.write(`${JSON.stringify({ seconds, cpuSeconds, maxRssKb: process.resourceUsage().maxRSS, files: results })}\n`);
