/**
 * The machine's own variables that an action inherits (tools, home, package-index and proxy
 * settings). Remote executors never ship them: the remote machine has its own (and the Modal
 * stand-in gives its containers only these, as a Modal image would).
 */
export function isMachineEnv(name: string): boolean {
  return /^(PATH|HOME|TMPDIR|USER|SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE)$|^(PIP|UV)_|_PROXY$|_proxy$/.test(name);
}
