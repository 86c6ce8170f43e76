import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';

/**
 * Digests are XXH3-128 (hex, 32 chars) from the native `xxhash-addon`.
 *
 * Why not xxhash-wasm (the design card's default): it offers only XXH64, and a content-addressed
 * store shared by many runs wants at least 128 bits. Measured here (bench/RESULTS.md): xxhash-addon
 * XXH128 ~5 GB/s, hash-wasm XXH128 ~2.8 GB/s, xxhash-wasm XXH64 ~3.1 GB/s. The addon ships prebuilt
 * binaries inside the npm package, so it installs offline like any other dependency.
 */
export type Digest = string & { readonly __brand: 'Digest' };

interface XXHash128 {
  update(data: Uint8Array): void;
  digest(): Buffer;
}
interface XXHashAddon {
  XXHash128: new (seed: Buffer) => XXHash128;
}

const require = createRequire(import.meta.url);
let addon: XXHashAddon | undefined;
/** Loaded on first use so commands that never hash pay nothing for it. */
function xxhash(): XXHashAddon {
  addon ??= require('xxhash-addon') as XXHashAddon;
  return addon;
}

/** The addon segfaults without a seed buffer; seed 0 matches `xxhsum -H2`. */
const SEED = Buffer.alloc(8);

export function digestBytes(data: string | Uint8Array): Digest {
  const h = new (xxhash().XXHash128)(SEED);
  h.update(typeof data === 'string' ? Buffer.from(data) : data);
  return h.digest().toString('hex') as Digest;
}

/** Reads go through reused 8 MiB buffers: fs streams allocate per chunk and cap at ~1.5 GB/s here. */
const BUFFER_SIZE = 8 * 1024 * 1024;
const freeBuffers: Buffer[] = [];

export async function digestFile(path: string): Promise<{ digest: Digest; size: number }> {
  const buffer = freeBuffers.pop() ?? Buffer.allocUnsafe(BUFFER_SIZE);
  const handle = await open(path, 'r');
  try {
    const h = new (xxhash().XXHash128)(SEED);
    let size = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, BUFFER_SIZE, null);
      if (bytesRead === 0) break;
      h.update(bytesRead === BUFFER_SIZE ? buffer : buffer.subarray(0, bytesRead));
      size += bytesRead;
    }
    return { digest: h.digest().toString('hex') as Digest, size };
  } finally {
    await handle.close();
    freeBuffers.push(buffer);
  }
}
