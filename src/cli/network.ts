import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { UsageError } from '../report/failures.ts';
import type { Settings } from './settings.ts';

/**
 * Node 20 reads NODE_EXTRA_CA_CERTS once, at start-up, and that costs ~80 ms on this machine, a
 * third of a no-op build. scripts/launch.sh therefore moves it to BUILD_EXTRA_CA_CERTS, and a
 * command that will open TLS connections (publishing, Modal) loads the certificates here, in its
 * own process. (It used to re-execute itself with the variable restored; after a kill that child
 * lingered as a zombie holding the publish lease, so the next promote was refused.)
 *
 * How: Node 20 has no `tls.setDefaultCACertificates` (Node 22.15+), and the HF client uses
 * `fetch` (undici), which ignores `https.globalAgent`. Both https and fetch make their TLS context
 * through `tls.createSecureContext`, so that is wrapped: a context made without a `ca` of its own
 * (which would replace the defaults) gets the extra certificates added to Node's root store, as
 * NODE_EXTRA_CA_CERTS would. Throws a UsageError when the file has no certificate to load.
 */
export function loadExtraCaCerts(settings: Pick<Settings, 'caCerts'>): void {
  const file = settings.caCerts.stashed;
  if (!file || settings.caCerts.active || loaded) return;
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError('bad-ca-certificates', `NODE_EXTRA_CA_CERTS names ${file}, which cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); fix the path or unset it`);
  }
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (certs.length === 0) throw new UsageError('bad-ca-certificates', `NODE_EXTRA_CA_CERTS names ${file}, which holds no PEM certificate; fix the path or unset it`);
  const create = tls.createSecureContext;
  const extended = (options?: tls.SecureContextOptions) => {
    const context = create(options);
    for (const cert of certs) (context.context as { addCACert(cert: string): void }).addCACert(cert);
    return context;
  };
  // Parsing the certificates costs per context (~1 ms a certificate here; a system bundle holds
  // ~140), and https and fetch make one per connection: connections with default settings, all of
  // ours, share one context, as they would share Node's default one.
  let shared: tls.SecureContext | undefined;
  tls.createSecureContext = (options) => {
    if (options && CONTEXT_OPTIONS.some((name) => (options as Record<string, unknown>)[name] !== undefined)) {
      return options.ca ? create(options) : extended(options);
    }
    shared ??= extended(options);
    return shared;
  };
  loaded = true;
}
let loaded = false;

/** The options of tls.createSecureContext that change the context it makes. */
const CONTEXT_OPTIONS = [
  'ca', 'cert', 'key', 'pfx', 'passphrase', 'crl', 'ciphers', 'sigalgs', 'ecdhCurve', 'dhparam', 'honorCipherOrder', 'minVersion', 'maxVersion',
  'secureOptions', 'secureProtocol', 'sessionIdContext', 'ticketKeys', 'sessionTimeout', 'privateKeyEngine', 'privateKeyIdentifier', 'clientCertEngine',
];

