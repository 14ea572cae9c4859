#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Run a command as the child of a subreaper: python3 subreaper.py CMD...

libvirt double-forks QEMU, so guests become orphans. Reparented to this
machine's PID 1, an exited QEMU stays a zombie for up to ~2 s, and libvirt
(which polls kill(pid, 0)) counts that against every virDomainDestroy. This
process becomes a child subreaper, starts CMD, collects every descendant
that ends at once, and exits when none is left. Used by
tools/libvirtd-env.sh and the fault suite's own libvirtd.
"""

import ctypes
import os
import sys

PR_SET_CHILD_SUBREAPER = 36

os.setsid()
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0,
                                           0):
    sys.exit("subreaper: prctl(PR_SET_CHILD_SUBREAPER) failed")
os.spawnvp(os.P_NOWAIT, sys.argv[1], sys.argv[1:])
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
