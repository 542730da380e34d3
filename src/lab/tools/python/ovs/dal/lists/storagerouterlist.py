"""
`ovs.dal.lists.storagerouterlist.StorageRouterList` (openvstorage/framework
ovs/dal/lists/storagerouterlist.py @ 2.9.30, same at 2.7.4-fargo.1): look-ups return None when
nothing matches.
"""
import labrpc
from ovs.dal.hybrids.storagerouter import StorageRouter


def _all():
    return [StorageRouter(data=sr) for sr in labrpc.call('ovs-dal', 'storagerouters')]


def _first(matches):
    return matches[0] if matches else None


class StorageRouterList(object):
    @staticmethod
    def get_storagerouters():
        return _all()

    @staticmethod
    def get_masters():
        return [sr for sr in _all() if sr.node_type == 'MASTER']

    @staticmethod
    def get_slaves():
        return [sr for sr in _all() if sr.node_type == 'EXTRA']

    @staticmethod
    def get_by_machine_id(machine_id):
        return _first([sr for sr in _all() if sr.machine_id == machine_id])

    @staticmethod
    def get_by_ip(ip):
        return _first([sr for sr in _all() if sr.ip == ip])

    @staticmethod
    def get_by_name(name):
        return _first([sr for sr in _all() if sr.name == name])
