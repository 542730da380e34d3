/** The lab: simulated sites (real sshd per host, simulated tools, seeded MariaDB) for tests and the demo. */
export { labUp, labDown, labStatus, stopHost, startHost } from './lab.js';
export { setOpenStackTimeScale } from './openstack/setup.js';
export { setFault, clearFaults, setHostSetting, readCalls, readHostState, readServices, setHostState, setService } from './host-state.js';
export type { HostProfile, ServiceStatus } from './site.js';
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
  Vdisk,
  VdiskSnapshot,
  VirshState,
} from './types.js';
