"""Load the configured driver, once, through :mod:`snapdriver.plugins`."""

from snapdriver import plugins

NAMESPACE = 'snapdriver.drivers'


def installed_names():
    """Driver names installed in ``snapdriver.drivers``, not imported."""
    return plugins.installed_names(NAMESPACE)


def load(name):
    """Load and instantiate the driver ``name``.

    :raises: DriverNotFound listing the installed drivers; DriverLoadError
        with the cause when the driver fails to import or to start.
    """
    return plugins.load(NAMESPACE, name, 'driver')
