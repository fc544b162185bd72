// The pieces of projections, for the library's own users (es.fold, the rebuild):
// the reader, the one-transaction batch, the checkpoints table, the runner.
export { Projection, eventClassesOf, handlersFor, ownedTablesOf, type EventClass, type ProjectionHandler, type ProjectionOptions } from './projection';
export { rebuildProjection, shadowSchemaPrefix, type RebuildSetup } from './projection-rebuild';
export { ProjectionRebuildError } from './projection-rebuild-error';
export { EventStream, sourcesOf, type Checkpoint, type ProjectionLag, type StreamSource, type StreamedEvent } from './projection-stream';
export { runBatch, type BatchJob, type BatchResult } from './projection-batch';
export { ProjectionCheckpoints, type CheckpointRow, type ProjectionFailure } from './projection-checkpoints';
export { ProjectionRunner, type RunnerSetup } from './projection-runner';
export { CommitNotifier, wakeUpChannel } from './projection-wakeup';
export { foldEvents, type FoldQuery, type FoldReducer } from './fold';
export {
  Projections,
  ProjectionRuntime,
  type ProjectionCatchUpOptions,
  type ProjectionRebuildMode,
  type ProjectionRebuildOptions,
  type ProjectionRebuildResult,
  type ProjectionResult,
  type ProjectionRunOptions,
  type ProjectionStatus,
} from './projections';
