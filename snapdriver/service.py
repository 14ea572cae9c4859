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

"""Start-up shared by the console script and the WSGI entry point."""

import sys

from oslo_db import exception as db_exception
from oslo_log import log
from oslo_reports import guru_meditation_report as gmr
import sqlalchemy

from snapdriver.conf import CONF
from snapdriver.drivers import loader
from snapdriver import exception
from snapdriver import log_escape
from snapdriver import metrics
from snapdriver.operations import api as operations_api
from snapdriver.operations import journal
from snapdriver.operations import manager as manager_mod
from snapdriver.operations import reporter as reporter_mod
from snapdriver import plugins
from snapdriver import version

LOG = log.getLogger(__name__)


def prepare(argv=None, default_config_files=None):
    """Parse the command line and configuration files; set up logging."""
    from snapdriver import rpc
    rpc.set_defaults()
    CONF(argv if argv is not None else sys.argv[1:], project='snapdriver',
         version=version.version_string(),
         default_config_files=default_config_files)
    log.setup(CONF, 'snapdriver')
    log_escape.install()
    CONF.log_opt_values(LOG, log.DEBUG)


def setup_reports(service_name):
    """Guru Meditation Reports, as the compute service has them.

    On SIGUSR2 (or, with ``[oslo_reports] file_event_handler``, when that
    file changes) the process writes the stacks of all its threads, its
    configuration and its package to stderr, or to a file in
    ``[oslo_reports] log_dir``. For the long-running services only: the
    console scripts call it after :func:`prepare`.

    :param service_name: names the report files in ``log_dir``.
    """
    gmr.TextGuruMeditation.setup_autorun(version, service_name=service_name,
                                         conf=CONF)


def build_operations():
    """Load the driver and the status reporter once; wire the manager.

    :returns: (OperationsAPI, OperationManager)
    :raises: DriverLoadError, DriverNotFound, ConfigurationError
    """
    # Before the driver: a second process must not touch the guests (the
    # libvirt driver's start-up resumes guests and block jobs that it
    # finds held by snapdriver, which may be the first process's).
    _require('driver', "'libvirt' on a hypervisor host, 'fake' for tests "
             "and demos")
    _require('status_reporter', "'cinder' in production (with [cinder] "
             "credentials), 'log' for tests and demos")
    _lock_journal()
    driver = loader.load(CONF.driver)
    reporter = plugins.load(reporter_mod.NAMESPACE, CONF.status_reporter,
                            'status reporter')
    journal_ = _open_journal()
    metrics.watch_journal(journal_)
    manager = manager_mod.OperationManager(
        driver, reporter, journal_,
        workers=CONF.operation_workers, create_workers=CONF.create_workers,
        create_timeout=CONF.create_timeout,
        history=CONF.operation_history,
        report_workers=CONF.report_workers,
        report_sweep_interval=CONF.report_sweep_interval,
        progress=dict(interval=CONF.progress_interval,
                      report_step=CONF.progress_report_step,
                      report_interval=CONF.progress_report_interval,
                      report_timeout=CONF.cinder.progress_timeout))
    return operations_api.LocalOperationsAPI(manager), manager


def take_up(manager):
    """Resume what the journal shows unfinished; call once the API is
    ready to serve, so that a start-up that fails changes nothing."""
    taken_up = manager.recover()
    if taken_up:
        LOG.info("Took up %d unfinished operation(s) from the journal",
                 taken_up)


def _require(option, choices):
    """Stop start-up when a ``[DEFAULT]`` option without default is
    unset, saying what to set it to."""
    if not CONF[option]:
        raise exception.ConfigurationError(
            reason="[DEFAULT] %s is not set: set it to %s. It has no "
                   "default, so that no development setting runs in "
                   "production by mistake." % (option, choices))


def _lock_journal():
    """One process per journal, for the rest of this process's life.

    :raises: JournalInUse (a ConfigurationError) naming the holder,
        ConfigurationError when the lock file cannot be made
    """
    try:
        journal.lock(CONF.database.connection)
    except (OSError, sqlalchemy.exc.ArgumentError) as e:
        raise exception.ConfigurationError(
            reason="cannot lock the operation journal ([database] "
                   "connection): %s" % e)


def _open_journal():
    """The journal, at the newest schema revision.

    :raises: JournalSchemaError (run ``snapdriver-manage db sync``),
        ConfigurationError when it cannot be opened
    """
    try:
        return journal.Journal()
    except (OSError, sqlalchemy.exc.SQLAlchemyError,
            db_exception.DBError) as e:
        raise exception.ConfigurationError(
            reason="cannot open the operation journal ([database] "
                   "connection): %s" % e)


class _Local:
    """A single-process service: this process runs the operations."""

    def __init__(self, manager):
        self.manager = manager

    def start(self):
        take_up(self.manager)

    def stop(self, wait=True):
        self.manager.stop(wait=wait)


class _Tier:
    """An API process of a region's API tier (``dispatch = agents``)."""

    def __init__(self, listener):
        self.listener = listener

    def start(self):
        self.listener.start()

    def stop(self, wait=True):
        self.listener.stop()


def build_tier_operations():
    """The API tier's operations API: no driver, no journal; requests go
    to the agents over oslo.messaging.

    :returns: (OperationsAPI, the report listener to start)
    :raises: DriverLoadError, DriverNotFound (the host locator),
        ConfigurationError (the transport URL)
    """
    import oslo_messaging

    from snapdriver.agent import registry as registry_mod
    from snapdriver.agent import rpcapi
    from snapdriver.locators import base as locator_base
    from snapdriver.operations import remote
    from snapdriver import rpc

    try:
        agents = rpcapi.AgentAPI(CONF.api.agent_timeout)
    except oslo_messaging.MessagingException as e:
        raise exception.ConfigurationError(
            reason="cannot use [DEFAULT] transport_url: %s" % e)
    registry = registry_mod.AgentRegistry(CONF.api.agent_down_time)
    locator = plugins.load(locator_base.NAMESPACE, CONF.api.host_locator,
                           'host locator', registry=registry, agents=agents)
    listener = registry_mod.ReportListener(registry, agents)
    LOG.info("API tier: requests go to the agents (topic %s) over %s; "
             "hosts found by the %s locator", rpc.agent_topic(),
             _safe_url(CONF.transport_url), locator.name)
    return remote.RemoteOperationsAPI(
        locator, agents, registry,
        connected=listener.connected), listener


def _safe_url(url):
    """A transport URL without its password, for the log."""
    import oslo_messaging
    try:
        parsed = oslo_messaging.TransportURL.parse(CONF, url)
    except Exception:
        return 'the configured transport'
    hosts = ','.join('%s:%s' % (host.hostname, host.port)
                     for host in parsed.hosts)
    return '%s://%s/%s' % (parsed.transport, hosts, parsed.virtual_host or '')


def build_wsgi_app():
    """:returns: (WSGI application, runner); nothing runs yet. Call
    ``runner.start()`` once the application can serve, ``runner.stop()``
    when it ends."""
    from snapdriver.api import app
    if CONF.api.dispatch == 'agents':
        operations, listener = build_tier_operations()
        return app.setup_app(operations), _Tier(listener)
    operations, manager = build_operations()
    try:
        return app.setup_app(operations), _Local(manager)
    except Exception:
        manager.stop()
        raise
