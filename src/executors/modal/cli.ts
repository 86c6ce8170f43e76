/**
 * Every `modal` command line the executor runs, built in one place so that a test can feed each
 * of them to the real CLI's argument parser (the click command objects of the pinned `modal`
 * package). They are argv arrays after the program: run as `python -m modal <argv...>`.
 *
 * Notes on the CLI's semantics (modal 1.6.4, modal/cli/volume.py):
 * - `volume put VOL LOCAL REMOTE`: a directory's *contents* go under REMOTE (no trailing slash,
 *   which would append LOCAL's basename); `-f` overwrites, harmless for content-addressed blobs
 *   and needed when two runs upload the same blob at once.
 * - `volume get --force VOL REMOTE DEST`: a single file is written to DEST itself unless DEST is
 *   an existing directory.
 * - `volume ls VOL PATH` prints one path per line when stdout is not a terminal.
 */
export const modalCli = {
  volumePut: (volume: string, localDir: string, remoteDir: string): string[] => ['volume', 'put', '--force', volume, localDir, remoteDir],
  volumeGet: (volume: string, remoteFile: string, localFile: string): string[] => ['volume', 'get', '--force', volume, remoteFile, localFile],
  volumeLs: (volume: string, remoteDir: string): string[] => ['volume', 'ls', volume, remoteDir],
  /** One-time set-up, printed in hints (the README names the same line). */
  deploy: (runnerFile: string): string[] => ['deploy', runnerFile],
  volumeCreate: (volume: string): string[] => ['volume', 'create', volume],
};
