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

"""Where snapdriver's own threads run (``[DEFAULT] single_cpu``)."""

import os

from oslo_log import log

from snapdriver.conf import CONF

LOG = log.getLogger(__name__)

#: The CPUs this process could use before :func:`pin_to_one` (None: not
#: pinned).
ORIGINAL = None


def pin_to_one():
    """Run every thread of this process on one CPU (``[DEFAULT]
    single_cpu``): one of the CPUs it may use, chosen by pid. Threads
    started later inherit it; programs started by
    :mod:`snapdriver.drivers.libvirt.qemuimg` get the process's original
    CPUs back (:data:`ORIGINAL`).

    :returns: the CPU, or None when nothing was changed.
    """
    global ORIGINAL
    if not CONF.single_cpu or not hasattr(os, 'sched_getaffinity'):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    cpu = allowed[os.getpid() % len(allowed)]
    ORIGINAL = frozenset(allowed)
    for task in os.listdir('/proc/self/task'):
        try:
            os.sched_setaffinity(int(task), {cpu})
        except OSError:
            pass        # a thread that ended meanwhile
    LOG.info("Running on CPU %d of %s ([DEFAULT] single_cpu)", cpu,
             ','.join(map(str, allowed)))
    return cpu
