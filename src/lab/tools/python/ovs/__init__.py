"""
The lab's double of the Open vStorage framework's `ovs` package, for the calls a runbook makes on a
storage router. On a real storage router /usr/lib/python2.7/dist-packages (where the volumedriver's
binding lives) is on the interpreter's default path; the lab's interpreter is the machine's own, so
this package puts the host's fake dist-packages on the path instead.

Common subset of Python 2.7 and 3.
"""
import os
import sys

_DIST_PACKAGES = os.path.join(os.environ['LAB_DIR'], 'hosts', os.environ['LAB_HOST'], 'root', 'usr', 'lib', 'python2.7', 'dist-packages')
if _DIST_PACKAGES not in sys.path:
    sys.path.append(_DIST_PACKAGES)
