"""
`ovs.extensions.generic.system.System`, following openvstorage/framework
ovs/extensions/generic/system.py @ 2.9.30 (the same calls exist at 2.7.4-fargo.1): the machine id
is the content of /etc/openvstorage_id, and the local Storage Router is the one of that machine id.
"""
import labrpc


class System(object):
    OVS_ID_FILE = '/etc/openvstorage_id'

    def __init__(self):
        raise RuntimeError('System is a static class')

    @classmethod
    def get_my_machine_id(cls, client=None):
        if client is not None:
            raise NotImplementedError('the lab does not simulate SSHClient')
        with open(labrpc.real_path(cls.OVS_ID_FILE), 'r') as the_file:
            return the_file.read().strip()

    @classmethod
    def get_my_storagerouter(cls):
        from ovs.dal.lists.storagerouterlist import StorageRouterList
        storagerouter = StorageRouterList.get_by_machine_id(cls.get_my_machine_id())
        if storagerouter is None:
            raise RuntimeError('Could not find the local StorageRouter')
        return storagerouter
