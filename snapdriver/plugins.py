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

"""Plugins loaded by name, once, through stevedore.

Drivers (``snapdriver.drivers``) and status reporters
(``snapdriver.status_reporters``) are entry points; each caller names its
own namespace and what its plugins are called in messages. Whatever the
namespace, a failure to load stops start-up the same way:

* an unknown name raises :class:`~snapdriver.exception.DriverNotFound`
  listing the installed names;
* a :class:`~snapdriver.exception.DriverLoadError` from the plugin's
  constructor (a prerequisite it checked) goes through unchanged;
* anything else (an import error, a constructor that fails otherwise)
  raises a ``DriverLoadError`` naming the exception type and message, and
  the traceback goes to the log.
"""

from importlib import metadata

from oslo_log import log
from stevedore import driver as stevedore_driver
from stevedore import exception as stevedore_exception

from snapdriver import exception

LOG = log.getLogger(__name__)


def installed_names(namespace):
    """Entry point names in ``namespace``, without importing them."""
    return sorted({ep.name for ep in
                   metadata.entry_points(group=namespace)})


def _not_found(namespace, name, what):
    """The error for a name that no installed plugin has."""
    return exception.DriverNotFound(
        what=what, name=name, namespace=namespace,
        installed=', '.join(installed_names(namespace)) or 'none')


def _load_failed(name, what, error):
    """The error for a plugin that failed to import or to start."""
    return exception.DriverLoadError(
        "The %s %r could not be loaded: %s: %s"
        % (what, name, type(error).__name__, error))


def find(namespace, name, what):
    """The class (or callable) of the plugin ``name``, imported but not
    instantiated: what a check may look at without starting it.

    :raises: DriverNotFound listing the installed names; DriverLoadError
        when it fails to import.
    """
    found = [ep for ep in metadata.entry_points(group=namespace)
             if ep.name == name]
    if not found:
        raise _not_found(namespace, name, what)
    try:
        return found[0].load()
    except Exception as error:
        raise _load_failed(name, what, error)


def load(namespace, name, what, **kwargs):
    """Load and instantiate the plugin ``name`` of ``namespace``.

    :param what: what the plugins of ``namespace`` are, for messages
        (``'driver'``, ``'status reporter'``).
    :param kwargs: given to the plugin's constructor.
    :returns: the plugin object, with ``name`` set to ``name``.
    :raises: DriverNotFound listing the installed names; DriverLoadError
        with the cause when the plugin fails to import or to start.
    """

    def missing(names):
        raise _not_found(namespace, name, what)

    def failed(manager, entrypoint, error):
        if isinstance(error, exception.DriverLoadError):
            raise error
        LOG.error("Loading %s %s from %s failed", what, name, entrypoint,
                  exc_info=error)
        raise _load_failed(name, what, error)

    try:
        manager = stevedore_driver.DriverManager(
            namespace=namespace, name=name, invoke_on_load=True,
            invoke_kwds=kwargs,
            on_load_failure_callback=failed,
            on_missing_entrypoints_callback=missing)
    except stevedore_exception.NoMatches:
        # Some stevedore releases raise before calling ``missing``.
        raise _not_found(namespace, name, what)
    plugin = manager.driver
    plugin.name = name
    LOG.info("Loaded %s %r (%s)", namespace, name, type(plugin).__name__)
    return plugin
