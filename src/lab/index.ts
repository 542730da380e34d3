/** The lab: simulated sites (real sshd per host, simulated tools, seeded MariaDB) for tests and the demo. */
export { labUp, labDown, labStatus, stopHost, startHost } from './lab.js';
export { setOpenStackTimeScale } from './openstack/setup.js';
export { setFault, clearFaults, setHostSetting, readCalls, readHostState, setHostState } from './host-state.js';
export type {
  Lab,
  LabCall,
  LabDatabases,
  LabFault,
  LabHost,
  LabOptions,
  Domain,
  MountsState,
  NbdState,
  ServicesState,
  Vdisk,
  VdiskSnapshot,
  VirshState,
} from './types.js';
