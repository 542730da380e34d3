"""
No upstream: lab plumbing (it doubles no real program), the transport of the Open vStorage doubles.
The lab's link between its Python doubles of Open vStorage (the framework's `ovs` package and the
volumedriver's `storagerouterclient` binding) and the lab's state: every question goes to the lab's
server side (src/lab/tools/sims/ovs-dal.cjs), run as `node <lab>/tools/labtool.cjs <tool> <args>`, so
the vDisk and configuration state has one owner, one host lock and one calls.log, whatever the
language of the caller. The real framework asks Arakoon and the volumedriver's XML-RPC server instead.

Written in the common subset of Python 2.7 and 3 (real storage routers run the framework on 2.7).
"""
import json
import os
import subprocess


class LabError(Exception):
    """The lab's server side failed in a way the real API has no exception for (an injected fault)."""


def host_root():
    """The host's fake root: the lab's stand-in for `/` on this storage router."""
    return os.path.join(os.environ['LAB_DIR'], 'hosts', os.environ['LAB_HOST'], 'root')


def real_path(path):
    """Where an absolute path of the host (`/etc/openvstorage_id`) lives in the lab."""
    return os.path.join(host_root(), path.lstrip('/'))


def call(tool, *args):
    """
    Runs one request; returns its JSON answer. An answer {"exception": name, "message": text} is
    returned as it is, for the caller to raise its own exception class of that name.
    """
    labtool = os.path.join(os.environ['LAB_DIR'], 'tools', 'labtool.cjs')
    process = subprocess.Popen(['node', labtool, tool] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate()
    out = out.decode('utf-8')
    if process.returncode in (0, 1) and out.strip():
        return json.loads(out)
    raise LabError(err.decode('utf-8').strip() or '{0} {1} exited with {2}'.format(tool, ' '.join(args), process.returncode))
