/**
 * The public authoring API, `runbook-bot/dsl`: everything a pack of procedures imports. A pack
 * loaded by the bot gets this very module (the loader hands it over), so its commands, parsers and
 * schemas are the ones the engine reads; `z` is the bot's zod for the same reason.
 *
 *   import { procedure, sh, parse, z } from 'runbook-bot/dsl';
 */
export {
  detectFacts,
  forEachItem,
  KnownAtRunTime,
  parse,
  procedure,
  procedureId,
  type DetectFacts,
  type ForEachStep,
  type GroupStep,
  type HostArg,
  type KeptOutput,
  type LockSpec,
  type ManualStep,
  type Parser,
  type PollStep,
  type Procedure,
  type ProcedureDefinition,
  type ProcedureHeader,
  type ReportStep,
  type ResolveTools,
  type Risk,
  type SqlStep,
  type SshStep,
  type Step,
  type StepContext,
  type StepKit,
  type StepList,
  type StepStatus,
  type V,
} from './procedures/dsl.js';
export { quote, raw, secret, sh, ShellCommand, type ShellValue } from './procedures/shell.js';
export { describeFacts, type HostFacts, type InitSystem, type KnownFacts } from './procedures/facts.js';
export { findProcesses, serviceAction, serviceCheck, type FoundProcess, type ServiceSpec, type ServiceState, type ServiceStatus } from './procedures/services.js';
export { UsageError } from './errors.js';
export type { Inventory, InventoryHost } from './inventory.js';
export type { PolicyConfig } from './config/runbook-config.js';
export { z } from 'zod';
