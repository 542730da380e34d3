"""
The lab's double of the volumedriver's Python binding `volumedriver.storagerouter.storagerouterclient`,
following openvstorage/volumedriver src/filesystem-python-client/StorageRouterClient.cpp @ b244eb00
(2018-03-05): the snapshot calls of `StorageRouterClient` with their real signatures and defaults
(`create_snapshot(volume_id, snapshot_id="", metadata="", req_timeout_secs=None)` returns the snapshot
id; `info_snapshot(...)` a `SnapshotInfo` with `in_backend`; `delete_snapshot`; `list_snapshots`), and
the exception classes the binding registers (`createExceptionClass`: subclasses of Exception named
as in `REGISTER_EXCEPTION_TRANSLATOR`). The volumedriver's answers (PreviousSnapshotNotOnBackend
before SnapshotNameAlreadyExists, as src/volumedriver/Volume.cpp createSnapshot checks) come from
the lab's server side (tools/sims/ovs-dal.cjs).

Common subset of Python 2.7 and 3.
"""
import labrpc


class MaxRedirectsExceededException(Exception):
    pass


class NodeNotReachableException(Exception):
    pass


class ClusterNotReachableException(Exception):
    pass


class ObjectNotFoundException(Exception):
    pass


class InvalidOperationException(Exception):
    pass


class SnapshotNotFoundException(Exception):
    pass


class FileExistsException(Exception):
    pass


class InsufficientResourcesException(Exception):
    pass


class PreviousSnapshotNotOnBackendException(Exception):
    pass


class ObjectStillHasChildrenException(Exception):
    pass


class SnapshotNameAlreadyExistsException(Exception):
    pass


class VolumeRestartInProgressException(Exception):
    pass


class VolumeHaltedException(Exception):
    pass


class SnapshotInfo(object):
    """XMLRPCSnapshotInfo's read-only properties."""

    def __init__(self, snapshot_id, timestamp, uuid, stored, metadata, in_backend):
        self.snapshot_id = snapshot_id
        self.timestamp = timestamp
        self.uuid = uuid
        self.stored = stored
        self.metadata = metadata
        self.in_backend = in_backend

    def __repr__(self):
        return 'SnapshotInfo(snapshot_id={0!r}, in_backend={1!r})'.format(self.snapshot_id, self.in_backend)

    __str__ = __repr__


def _call(method, *args):
    try:
        answer = labrpc.call('storagerouterclient', method, *args)
    except labrpc.LabError as error:
        # What the binding raises when the volumedriver cannot be reached.
        raise ClusterNotReachableException(str(error))
    if isinstance(answer, dict) and 'exception' in answer:
        raise globals()[answer['exception']](answer['message'])
    return answer


class StorageRouterClient(object):
    """A client of one vPool's volumedriver cluster (the framework builds one per vPool)."""

    def __init__(self, vrouter_cluster_id=None, node_configs=None):
        self.vrouter_cluster_id = vrouter_cluster_id
        self.node_configs = node_configs

    def list_snapshots(self, volume_id, req_timeout_secs=None):
        return [str(name) for name in _call('list_snapshots', volume_id)]

    def info_snapshot(self, volume_id, snapshot_id, req_timeout_secs=None):
        info = _call('info_snapshot', volume_id, snapshot_id)
        return SnapshotInfo(str(info['snapshot_id']), info['timestamp'], str(info['uuid']), info['stored'], str(info['metadata']), info['in_backend'])

    def create_snapshot(self, volume_id, snapshot_id='', metadata='', req_timeout_secs=None):
        return str(_call('create_snapshot', volume_id, snapshot_id, metadata))

    def delete_snapshot(self, volume_id, snapshot_id, req_timeout_secs=None):
        _call('delete_snapshot', volume_id, snapshot_id)
