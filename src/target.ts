/**
 * What `tasks/` declares. A Target is plain data plus one pure function (`command`) of the
 * variables; an Action is one concrete execution of it (see fingerprint.ts).
 */
export type TargetName = string & { readonly __brand: 'TargetName' };

/** Where an action runs. The choice never changes the cache key. */
export type ExecutorKind = 'local' | 'modal';

/** The values of the pipeline's variables after validation (all strings, as typed on the CLI). */
export type Vars = Readonly<Record<string, string>>;

/**
 * The process environment as the CLI read it at start-up (cli/settings.ts): where the values of a
 * target's declared variables (`env`) come from. The engine is handed it, never reads it itself.
 */
export type Environment = Readonly<Record<string, string | undefined>>;

export interface Target {
  name: string;
  /** One line for `graph` and `--help`. */
  description?: string;
  /** Upstream targets whose outputs this one reads. */
  deps: string[];
  /** fast-glob patterns, relative to the project directory in the pinned tree. */
  sources: string[];
  /** Variables that change the outputs (and so belong in the key). Worker counts do not. */
  vars: string[];
  /** Environment variables the command may read; their values are hashed into the key. */
  env?: string[];
  /**
   * Environment variables passed to this action only and kept out of everything recorded: never
   * in the key (not even as a digest), a log, `meta.json` or an error (tokens such as
   * HUGGING_FACE_TOKEN). What they fetch must be pinned by something that is in the key. On Modal
   * the action gets them from a Modal secret attached to its call alone (huggingface-token), never
   * through the request; a build that selects it stops before any work when one is unset, here or
   * on Modal (src/secret-env.ts, src/executors/modal/secrets.ts).
   */
  secretEnv?: string[];
  /**
   * Python modules the command runs (`policyengine_us_data.db.etl_age`, `modal_app.worker_script`,
   * an adapter under tasks/adapters/): their static import closure inside the pinned tree is part
   * of the sources, so an edit to any file they import rebuilds this target.
   */
  pythonModules?: string[];
  /**
   * The argv, as a function of the variables. Tokens may hold placeholders resolved at execution
   * time and kept literal in the key, so the key does not depend on where a run lives:
   * `{run}` the run directory, `{python}` the pipeline's Python, `{checkpoint}` a directory
   * private to this action key (survives failures; for resumable fits).
   */
  command: (vars: Vars) => string[];
  /** Files the command writes, relative to the run directory. */
  outputs: string[];
  /**
   * Outputs whose writer embeds time or history in the bytes (SQLite header counters, PyTables'
   * object-header times), keyed by output path: downstream keys hash a digest of their content
   * instead of their bytes, so a rebuild that produces the same content stops there (early
   * cutoff). The blob is still stored by its bytes. See src/caching/content-digest.ts.
   */
  contentDigest?: Record<string, 'sqlite' | 'hdf5'>;
  /**
   * `modal`: runs on Modal when EXECUTOR=modal. `local`: always runs here (an in-process step).
   * Unset: here, unless MODAL_TARGETS names it (src/executor-choice.ts).
   */
  executor?: ExecutorKind;
  /** Resource class for remote executors, e.g. `cpu` or a GPU type; not part of the key. */
  resources?: (vars: Vars) => { class: string; weight?: number };
  /**
   * The command reads something outside the pinned tree and the declared inputs (the head of a
   * remote repository): it runs in every build instead of being looked up, so a change there is
   * seen. What depends on it still stops at identical output bytes (early cutoff). A build that
   * selects one is never replayed (replay.ts).
   */
  alwaysRun?: boolean;
  /** Marks the target that builds the pipeline's Python (kept under cache/envs/<key>, `{python}` downstream). */
  environment?: boolean;
  /**
   * Lets many cheap actions run as one command: targets of the same `group` that miss together
   * are run as `command(items)` in `-j` LPT batches by `weight`. Each keeps its own key (from
   * `command` above, with its single item) and its own cache entry. A batch command must write
   * each output atomically; if a batch fails, its targets are retried one by one.
   */
  batch?: { group: string; weight: number; item: unknown; command: (items: unknown[], vars: Vars) => string[] };
}

/**
 * A dynamic fan-out: once its `deps` are built, `expand` turns their outputs into one target per
 * item (one per area). The group itself then stands for the union of its children's outputs.
 */
export interface FanOut {
  name: string;
  description?: string;
  /** Everything the children read; children are created once all of these are built. */
  deps: string[];
  /** Children are named `<childPrefix><id>`, so `./build.ts h5:states/AL` can pick one. */
  childPrefix: string;
  expand: (input: { readJson: (runPath: string) => unknown; vars: Vars }) => Target[];
  /**
   * One child as `expand` would make it for a typical item (one area), for plans made before the
   * items are known: `./build.ts check` verifies the children's command, and a dry run shows it.
   */
  sample?: () => Target;
}

export type Node = { kind: 'target'; target: Target } | { kind: 'fanout'; fanout: FanOut };

/**
 * Which flavour of the project a pinned tree holds: the built-in example twin (examples/us-data)
 * or the real policyengine-us-data repository. The pipeline declaration detects it (tasks/layout.ts).
 */
export type Profile = 'example' | 'real';

export interface Layout {
  profile: Profile;
  /** The project directory inside the tree: commands run there, source globs are relative to it. */
  projectDir: string;
}

/**
 * A chain of targets, one per `python -m` module of a Makefile rule's recipe (the database as the
 * Makefile's ETL modules, each its own target): `./build.ts check` verifies that the targets run
 * the recipe's modules in the recipe's order, with the same flags.
 */
export interface MakefileMirror {
  makeTarget: string;
  /** Target names, in the order of the recipe. */
  targets: string[];
}

/** The whole pipeline as declared in tasks/: its nodes and the variables it accepts. */
export interface Pipeline {
  nodes: Node[];
  /** The targets `./build.ts pipeline` builds. */
  defaultGoals: string[];
  /** Chains that mirror a Makefile rule, checked against the pinned tree's Makefile. */
  mirrorsMakefile?: MakefileMirror[];
}
