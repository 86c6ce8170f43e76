/**
 * A content digest: XXH3-128 of a file's or a string's bytes, 32 hex characters (hash.ts makes
 * them). A brand of its own module so that whatever only passes digests around (the hashing worker
 * pool, the cache index) need not import the hashing code, and the hashing code can load the pool
 * without the two importing each other.
 */
export type Digest = string & { readonly __brand: 'Digest' };
