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

"""snapdriver-agent: the agent of one hypervisor host in a region.

It runs next to the host's hypervisor (libvirtd) with the driver, the
journal, recovery and the status reports, exactly as a single-process
snapdriver-api does, but takes its requests from the region's API tier
over oslo.messaging (topic ``snapdriver-agent``, server ``[DEFAULT]
host``) instead of from HTTP.
"""

import logging
import os
import signal
import sys
import threading

from oslo_log import log

from snapdriver.agent import service as agent_service
from snapdriver.conf import CONF
from snapdriver import cpus
from snapdriver import exception
from snapdriver import malloc
from snapdriver import rpc
from snapdriver import service

LOG = log.getLogger(__name__)


def _cannot_start(reason):
    LOG.error("Cannot start: %s", reason)
    sys.stderr.write("snapdriver-agent: cannot start: %s\n" % reason)
    return 1


def main(argv=None):
    service.prepare(argv)
    # Thread dumps on SIGUSR2, as the compute service gives them.
    service.setup_reports('snapdriver-agent')
    cpus.pin_to_one()
    malloc.limit_arenas()
    try:
        _operations, manager = service.build_operations()
    except (exception.DriverLoadError, exception.ConfigurationError) as e:
        return _cannot_start(e)
    try:
        agent = agent_service.Agent(manager, CONF.host,
                                    CONF.agent.report_interval)
    except Exception as e:
        manager.stop(wait=False)
        return _cannot_start("cannot serve over [DEFAULT] transport_url: "
                             "%s: %s" % (type(e).__name__, e))
    # Before the agent takes requests: an operation accepted before
    # recovery read the journal would be queued by both, and run twice.
    service.take_up(manager)
    try:
        # Waits for the broker while it cannot be reached (oslo.messaging
        # retries, logging each try); SIGTERM meanwhile ends the process
        # at once, which the journal makes safe.
        agent.start()
    except Exception as e:
        manager.stop(wait=False)
        _cannot_start("cannot serve over [DEFAULT] transport_url: %s: %s"
                      % (type(e).__name__, e))
        # Recovered operations may run: do not wait for them (the next
        # start settles them from the journal).
        logging.shutdown()
        os._exit(1)
    stopped = threading.Event()

    def stop(signum, frame):
        LOG.info("Signal %d: stopping", signum)
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info("snapdriver-agent of host %s running with the %s driver",
             CONF.host, CONF.driver)
    while not stopped.wait(3600):
        pass
    agent.stop()
    manager.stop(wait=False)
    rpc.cleanup()
    LOG.info("Stopped; unfinished operations and reports are in the journal "
             "and will be taken up at the next start")
    logging.shutdown()
    # Do not wait for a merge that may run for hours: QEMU goes on with
    # it, and the next start settles it from the journal.
    os._exit(0)


if __name__ == '__main__':
    sys.exit(main())
