"""
`ovs.dal.hybrids.vdisk.VDisk`, the properties a runbook reads (openvstorage/framework
ovs/dal/hybrids/vdisk.py @ 2.9.30: name, volume_id, devicename, and `storagedriver_client`, the
volumedriver client of the vDisk's vPool).
"""
import labrpc
from volumedriver.storagerouter import storagerouterclient


class VDisk(object):
    def __init__(self, guid=None, data=None):
        if data is None:
            data = labrpc.call('ovs-dal', 'vdisk', guid)
            if data is None:
                raise RuntimeError('Object VDisk with guid {0} not found'.format(guid))
        self.guid = str(data['guid'])
        self.name = str(data['name'])
        self.volume_id = str(data['volume_id'])
        self.devicename = str(data['devicename'])
        self._storagedriver_client = None

    @property
    def storagedriver_client(self):
        if self._storagedriver_client is None:
            self._storagedriver_client = storagerouterclient.StorageRouterClient()
        return self._storagedriver_client
