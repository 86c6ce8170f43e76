/**
 * How a target's secret variable (Target.secretEnv) reaches its action on Modal: through a Modal
 * secret, attached to that action's call alone (`Function.with_options(secrets=...)` on the
 * deployed function, modal_app/client.py), so no other call's container ever holds it. The value
 * never crosses the request, the journal or the volume: the request names the variable, the
 * runner reads it from its container's environment and gives it to that action only
 * (modal_app/runner_core.py `secret_env`), scrubbing it from the action's log.
 *
 * The secret is the real repository's where it has one (`huggingface-token`, which holds
 * HUGGING_FACE_TOKEN), otherwise the variable's name in lower case with dashes.
 */
const NAMED: Readonly<Record<string, string>> = { HUGGING_FACE_TOKEN: 'huggingface-token' };

export function modalSecretName(variable: string): string {
  return NAMED[variable] ?? variable.toLowerCase().replaceAll('_', '-');
}

/** A secret the build needs on Modal: the variable an action reads and the Modal secret holding it. */
export interface SecretNeed {
  variable: string;
  secret: string;
}

export const secretNeed = (variable: string): SecretNeed => ({ variable, secret: modalSecretName(variable) });

/** The one-line fix for a Modal secret that does not exist. */
export const createSecretHint = (s: SecretNeed): string => `create it once with \`modal secret create ${s.secret} ${s.variable}=<value>\``;
