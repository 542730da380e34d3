"""
`ovs.dal.hybrids.storagerouter.StorageRouter`, the properties a runbook reads (openvstorage/framework
ovs/dal/hybrids/storagerouter.py @ 2.9.30: name, ip, machine_id, node_type; the dynamic
`vdisks_guids`, the vDisks this Storage Router serves).
"""
import labrpc


class StorageRouter(object):
    def __init__(self, guid=None, data=None):
        if data is None:
            data = [sr for sr in labrpc.call('ovs-dal', 'storagerouters') if sr['guid'] == guid]
            if not data:
                raise RuntimeError('Object StorageRouter with guid {0} not found'.format(guid))
            data = data[0]
        self.guid = str(data['guid'])
        self.name = str(data['name'])
        self.ip = str(data['ip'])
        self.machine_id = str(data['machine_id'])
        self.node_type = str(data['node_type'])

    @property
    def vdisks_guids(self):
        return [str(vdisk['guid']) for vdisk in labrpc.call('ovs-dal', 'vdisks', self.name)]
