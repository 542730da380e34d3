"""
Follows openvstorage/framework ovs/ @ 2.9.30 (module by module, each naming its file).
The lab's double of the Open vStorage framework's `ovs` package, for the calls a runbook makes on a
storage router: the modules below follow the framework's, and ask the lab's state through labrpc
(installed with the volumedriver's binding in the host's fake /usr/lib/python2.7/dist-packages,
which the lab's sessions have on PYTHONPATH as a real host's Python 2.7 has it on its path).

Common subset of Python 2.7 and 3.
"""
