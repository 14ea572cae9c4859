"""Load the configured driver, once, through stevedore."""

from importlib import metadata

from oslo_log import log
from stevedore import driver as stevedore_driver
from stevedore import exception as stevedore_exception

from snapdriver import exception

LOG = log.getLogger(__name__)

NAMESPACE = 'snapdriver.drivers'

#: What the plugins of each namespace are, for messages.
_WHAT = {NAMESPACE: 'driver',
         'snapdriver.status_reporters': 'status reporter'}


def installed_names(namespace=NAMESPACE):
    """Entry point names in ``namespace``, without importing them."""
    return sorted({ep.name for ep in
                   metadata.entry_points(group=namespace)})


def load(name, namespace=NAMESPACE):
    """Load and instantiate the plugin ``name`` of ``namespace``.

    :raises: DriverNotFound listing the installed names; DriverLoadError
        with the cause when the plugin fails to import or to start.
    """
    what = _WHAT.get(namespace, 'plugin')

    def missing(names):
        raise exception.DriverNotFound(
            what=what, name=name, namespace=namespace,
            installed=', '.join(installed_names(namespace)) or 'none')

    def failed(manager, entrypoint, error):
        if isinstance(error, exception.DriverLoadError):
            raise error
        LOG.error("Loading %s %s from %s failed", what, name, entrypoint,
                  exc_info=error)
        raise exception.DriverLoadError(
            "The %s %r could not be loaded: %s: %s"
            % (what, name, type(error).__name__, error))

    try:
        manager = stevedore_driver.DriverManager(
            namespace=namespace, name=name, invoke_on_load=True,
            on_load_failure_callback=failed,
            on_missing_entrypoints_callback=missing)
    except stevedore_exception.NoMatches:
        # Some stevedore releases raise before calling ``missing``.
        missing([name])
    plugin = manager.driver
    plugin.name = name
    LOG.info("Loaded %s %r (%s)", namespace, name, type(plugin).__name__)
    return plugin
