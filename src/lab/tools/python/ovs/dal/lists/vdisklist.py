"""
`ovs.dal.lists.vdisklist.VDiskList` (openvstorage/framework ovs/dal/lists/vdisklist.py @ 2.9.30, same
at 2.7.4-fargo.1): `get_vdisk_by_volume_id` returns None when no vDisk has that volume id.
"""
import labrpc
from ovs.dal.hybrids.vdisk import VDisk


class VDiskList(object):
    @staticmethod
    def get_vdisks():
        return [VDisk(data=vdisk) for vdisk in labrpc.call('ovs-dal', 'vdisks')]

    @staticmethod
    def get_vdisk_by_volume_id(volume_id):
        data = labrpc.call('ovs-dal', 'vdisk-by-volume-id', volume_id)
        return None if data is None else VDisk(data=data)
