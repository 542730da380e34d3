import { z } from 'zod';
import { parse, procedure, sh, type StepContext } from './dsl.js';

/** A vDisk as `ovs vdisk list` gives it: the fields the runbook's flush script reads. */
interface VDisk {
  guid: string;
  name: string;
  volume_id: string;
}

const SOURCE = 'runbooks/ovs-shutdown-and-restart.md';
const node = (ctx: StepContext<{ node: string }>) => ctx.args.node;
const vdisk = (ctx: StepContext) => ctx.item as VDisk;

/**
 * The runbook's OVS-shell flush script, step for step: for every vDisk of the Storage Router,
 * `create_snapshot(volume_id, "flush_snapshot")`, wait while `info_snapshot(...).in_backend` is
 * false (sleeping 5 s), then `delete_snapshot`. Each API call is made through the `ovs vdisk` CLI.
 */
export const flush = procedure({
  pack: 'ovs',
  name: 'flush',
  summary: 'Flush the outstanding data of every vDisk of a Storage Router to the backend',
  usage: 'ovs flush <node>',
  examples: ['ovs flush node-3'],
  source: `${SOURCE} (Shutdown an environment: "Make sure the outstanding data is flushed to the backend")`,
  args: z.object({ node: z.string().min(1) }),
  positional: ['node'],
  hosts: { node: { groups: ['ovs'] } },
  steps: [
    {
      kind: 'ssh',
      id: 'vdisks',
      title: 'Fetch the vDisks on the Storage Router',
      risk: 'read',
      host: node,
      command: sh`ovs vdisk list`,
      capture: parse.json<VDisk[]>(),
    },
    {
      kind: 'forEach',
      id: 'flush',
      title: 'Flush each vDisk to the backend',
      risk: 'write',
      items: (ctx) => ctx.capture<VDisk[]>('vdisks'),
      key: (d: VDisk) => d.name,
      label: (d: VDisk) => d.name,
      concurrency: 8,
      steps: [
        {
          kind: 'ssh',
          id: 'snapshot',
          title: (ctx) => `Commencing flush to backend for volume '${vdisk(ctx).name}'`,
          risk: 'write',
          host: node,
          command: (ctx) => sh`ovs vdisk create-snapshot ${vdisk(ctx).volume_id} flush_snapshot`,
        },
        {
          kind: 'poll',
          id: 'in-backend',
          title: (ctx) => `Wait until the NON-disposable SCOs of '${vdisk(ctx).name}' are in the backend`,
          risk: 'read',
          host: node,
          command: (ctx) => sh`ovs vdisk info-snapshot ${vdisk(ctx).volume_id} flush_snapshot`,
          capture: parse.json<{ in_backend: boolean }>(),
          until: (snap: { in_backend: boolean }) => snap.in_backend === true,
          intervalMs: 5_000,
          timeoutMs: 60 * 60_000,
          waiting: (ctx) => `Sleeping 5 seconds until NON-disposable SCO's for volume '${vdisk(ctx).name}' are flushed...`,
        },
        {
          kind: 'ssh',
          id: 'delete-snapshot',
          title: (ctx) => `Delete the flush snapshot: flush for volume '${vdisk(ctx).name}' has succeeded`,
          risk: 'write',
          host: node,
          command: (ctx) => sh`ovs vdisk delete-snapshot ${vdisk(ctx).volume_id} flush_snapshot`,
        },
      ],
    },
  ],
});

export const ovsPack = [flush];
