/** The pipeline's declarations: variables, layout detection and targets. */
export { VARIABLES, GPU_TYPES } from './variables.ts';
export { detectLayout, EXAMPLE_MARKER, type Layout, type Profile } from './layout.ts';
export { makePipeline } from './pipeline.ts';
export { STORAGE } from './storage.ts';
