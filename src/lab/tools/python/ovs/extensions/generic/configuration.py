"""
`ovs.extensions.generic.configuration.Configuration`: where the configuration store is and what it
lists, following openvstorage/framework ovs/extensions/generic/configuration.py. The store is named
in /opt/OpenvStorage/config/framework.json (`configuration_store`): `etcd` (2.7.4-fargo.1,
ovs/extensions/db/etcd/configuration.py: 'etcd://127.0.0.1:2379' + key) or `arakoon` (2.9.30 and
framework-extensions @ dfa64392 src/generic/configuration/clients/arakoon.py: 'arakoon://<cluster_id
of arakoon_cacc.ini>/<key without its leading />?ini=<urlencoded path of the ini>').
"""
import json

try:
    from urllib import urlencode
except ImportError:
    from urllib.parse import urlencode

try:
    from ConfigParser import RawConfigParser
except ImportError:
    from configparser import RawConfigParser

import labrpc


class NotFoundException(KeyError):
    pass


class Configuration(object):
    BOOTSTRAP_CONFIG_LOCATION = '/opt/OpenvStorage/config/framework.json'
    CACC_LOCATION = '/opt/OpenvStorage/config/arakoon_cacc.ini'

    @classmethod
    def get_store(cls):
        with open(labrpc.real_path(cls.BOOTSTRAP_CONFIG_LOCATION)) as config_file:
            return json.load(config_file)['configuration_store']

    @classmethod
    def get_configuration_path(cls, key):
        store = cls.get_store()
        if store == 'etcd':
            return 'etcd://127.0.0.1:2379{0}'.format(key)
        if store == 'arakoon':
            parser = RawConfigParser()
            parser.read(labrpc.real_path(cls.CACC_LOCATION))
            cluster_id = parser.get('global', 'cluster_id')
            return 'arakoon://{0}/{1}?{2}'.format(cluster_id, key.lstrip('/'), urlencode({'ini': cls.CACC_LOCATION}))
        raise NotImplementedError('Store {0} is not implemented'.format(store))

    @classmethod
    def list(cls, key):
        answer = labrpc.call('ovs-dal', 'config-list', key)
        if isinstance(answer, dict) and 'exception' in answer:
            raise NotFoundException(answer['message'])
        return iter(answer)
