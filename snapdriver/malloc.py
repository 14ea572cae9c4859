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

"""How many malloc arenas glibc keeps (``[DEFAULT] malloc_arenas``).

glibc gives threads that allocate at the same time arenas of their own,
up to eight per CPU, and keeps what each arena once held: a threaded
service's resident memory grows with its number of threads and stays
there. A few arenas are plenty for a service whose Python code runs on
one CPU at a time (the GIL). The same as ``MALLOC_ARENA_MAX`` in the
environment, set by the process itself before it starts its threads.
"""

import ctypes

from oslo_log import log

from snapdriver.conf import CONF

LOG = log.getLogger(__name__)

#: mallopt(3)'s parameter number for the arena limit (glibc's malloc.h).
M_ARENA_MAX = -8


def limit_arenas():
    """Cap glibc's arenas at ``[DEFAULT] malloc_arenas`` (0: glibc's
    default). Call before threads start; without glibc, nothing is done.

    :returns: whether the limit was set.
    """
    arenas = CONF.malloc_arenas
    if not arenas:
        return False
    try:
        # The process's own symbols: the C library it runs on.
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        LOG.debug("No mallopt (not glibc): malloc arenas not limited")
        return False
    if not mallopt(M_ARENA_MAX, arenas):
        LOG.warning("mallopt(M_ARENA_MAX, %d) failed", arenas)
        return False
    return True
