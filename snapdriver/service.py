"""Start-up shared by the console script and the WSGI entry point."""

import sys

from oslo_log import log
import sqlalchemy

from snapdriver.conf import CONF
from snapdriver import exception
from snapdriver.drivers import loader
from snapdriver.operations import api as operations_api
from snapdriver.operations import journal
from snapdriver.operations import manager as manager_mod
from snapdriver.operations import reporter as reporter_mod
from snapdriver import plugins
from snapdriver import version

LOG = log.getLogger(__name__)


def prepare(argv=None, default_config_files=None):
    """Parse the command line and configuration files; set up logging."""
    CONF(argv if argv is not None else sys.argv[1:], project='snapdriver',
         version=version.version_string(),
         default_config_files=default_config_files)
    log.setup(CONF, 'snapdriver')
    CONF.log_opt_values(LOG, log.DEBUG)


def build_operations():
    """Load the driver and the status reporter once; wire the manager.

    :returns: (OperationsAPI, OperationManager)
    :raises: DriverLoadError, DriverNotFound, ConfigurationError
    """
    driver = loader.load(CONF.driver)
    reporter = plugins.load(reporter_mod.NAMESPACE, CONF.status_reporter,
                            'status reporter')
    manager = manager_mod.OperationManager(
        driver, reporter, _open_journal(),
        workers=CONF.operation_workers, create_workers=CONF.create_workers,
        history=CONF.operation_history,
        report_workers=CONF.report_workers)
    return operations_api.LocalOperationsAPI(manager), manager


def take_up(manager):
    """Resume what the journal shows unfinished; call once the API is
    ready to serve, so that a start-up that fails changes nothing."""
    taken_up = manager.recover()
    if taken_up:
        LOG.info("Took up %d unfinished operation(s) from the journal",
                 taken_up)


def _open_journal():
    try:
        return journal.Journal(CONF.database.connection,
                               CONF.database.sqlite_synchronous)
    except (OSError, sqlalchemy.exc.SQLAlchemyError) as e:
        raise exception.ConfigurationError(
            reason="cannot open the operation journal ([database] "
                   "connection): %s" % e)


def build_wsgi_app():
    """:returns: (WSGI application, OperationManager); nothing runs yet."""
    from snapdriver.api import app
    operations, manager = build_operations()
    try:
        return app.setup_app(operations), manager
    except Exception:
        manager.stop()
        raise
