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

"""snapdriver-status: can this configuration work, before (re)starting?

::

    snapdriver-status [--config-file FILE] upgrade check [--json]

oslo.upgradecheck's command, as the other OpenStack services have it:
each check prints Success, Warning or Failure with what to do, and the exit
code is the worst of them (0 success, 1 warning, 2 failure, as the library
defines). Run it after an upgrade (after ``snapdriver-manage db sync``) and
before starting the service.
"""

import sys

from oslo_upgradecheck import upgradecheck
import sqlalchemy as sa

from snapdriver.conf import CONF
from snapdriver import plugins

Code = upgradecheck.Code
Result = upgradecheck.Result

# Processes that run operations have a driver, a reporter and a journal;
# an API tier (dispatch = agents) has none of them, but a broker.


def _tier():
    return CONF.api.dispatch == 'agents'


class _Refused(Exception):
    """A check's failure, as its Result."""

    def __init__(self, result):
        super().__init__(result.details)
        self.result = result


def _installed(namespace, option, what, choice):
    """The class of the plugin ``[DEFAULT] <option>`` names.

    :param choice: what to set the option to, for the message.
    :raises: _Refused when it is unset or not installed.
    """
    name = CONF[option]
    if not name:
        raise _Refused(Result(Code.FAILURE, "[DEFAULT] %s is not set: set "
                              "it to %s." % (option, choice)))
    try:
        return plugins.find(namespace, name, what)
    except Exception as error:
        raise _Refused(Result(Code.FAILURE, str(error)))


def _driver_class():
    from snapdriver.drivers import loader
    return _installed(loader.NAMESPACE, 'driver', 'driver',
                      "'libvirt' on a hypervisor host")


class Checks(upgradecheck.UpgradeCommands):
    """The checks of ``upgrade check``, in the order printed."""

    def _check_driver(self):
        if _tier():
            return Result(Code.SUCCESS, "An API tier ([api] dispatch = "
                          "agents) needs no driver.")
        try:
            driver_class = _driver_class()
        except _Refused as refused:
            return refused.result
        if CONF.driver == 'fake':
            return Result(Code.WARNING, "[DEFAULT] driver is 'fake': an "
                          "in-memory host for tests and demos, no guest is "
                          "ever touched.")
        return Result(Code.SUCCESS, "Driver %s (%s.%s) is installed."
                      % (CONF.driver, driver_class.__module__,
                         driver_class.__name__))

    def _check_reporter(self):
        if _tier():
            return Result(Code.SUCCESS, "An API tier reports nothing: its "
                          "agents do.")
        from snapdriver.operations import reporter
        try:
            _installed(reporter.NAMESPACE, 'status_reporter',
                       'status reporter', "'cinder', with [cinder] "
                       "credentials")
        except _Refused as refused:
            return refused.result
        if CONF.status_reporter == 'log':
            return Result(Code.WARNING, "[DEFAULT] status_reporter is "
                          "'log': Cinder is never told an outcome, and waits "
                          "until its own timeout.")
        if CONF.status_reporter == 'cinder' and not CONF.cinder.auth_type:
            return Result(Code.WARNING, "[cinder] has no auth_type: status "
                          "reports will use the caller's token, which can "
                          "expire during a long merge. Configure service "
                          "credentials in [cinder].")
        return Result(Code.SUCCESS, "Status reporter %s."
                      % CONF.status_reporter)

    def _check_hypervisor(self):
        if _tier():
            return Result(Code.SUCCESS, "An API tier has no hypervisor.")
        try:
            driver_class = _driver_class()
        except _Refused:
            return Result(Code.FAILURE, "No driver to ask (see the driver "
                          "check).")
        try:
            said = driver_class.check_reachable()
        except Exception as error:
            return Result(Code.FAILURE, "The hypervisor cannot be reached: "
                          "%s" % error)
        return Result(Code.SUCCESS, said or "Driver %s has nothing to "
                      "reach." % CONF.driver)

    def _check_journal(self):
        if _tier():
            return Result(Code.SUCCESS, "An API tier has no journal.")
        from snapdriver.db import api as db_api
        from snapdriver.db import migration
        where = sa.engine.make_url(CONF.database.connection).render_as_string(
            hide_password=True)
        missing = db_api.missing_sqlite_file()
        if missing:
            return Result(Code.FAILURE, "There is no journal at %s: run "
                          "'snapdriver-manage db sync'." % missing)
        try:
            engine = db_api.create_engine()
            current = migration.version(engine)
        except Exception as error:
            return Result(Code.FAILURE, "The journal %s cannot be opened: "
                          "%s" % (where, error))
        if current != migration.head():
            return Result(Code.FAILURE, "The journal %s is at revision %s, "
                          "not %s: run 'snapdriver-manage db sync'."
                          % (where, current or 'none', migration.head()))
        try:
            migration.touch(engine)
        except Exception as error:
            return Result(Code.FAILURE, "The journal %s takes no write: %s"
                          % (where, error))
        finally:
            engine.dispose()
        return Result(Code.SUCCESS, "The journal %s is at revision %s and "
                      "takes writes." % (where, current))

    def _check_policy(self):
        from snapdriver import policy
        try:
            enforcer = policy.get_enforcer()
            enforcer.load_rules(force_reload=True)
        except Exception as error:
            return Result(Code.FAILURE, "The policy file cannot be used: "
                          "%s" % error)
        from oslo_policy import _checks
        unparsed = sorted(
            name for name, rule in enforcer.file_rules.items()
            if isinstance(rule.check, _checks.FalseCheck)
            and rule.check_str.strip() != '!')
        if unparsed:
            return Result(Code.FAILURE, "The policy file has rules that "
                          "cannot be parsed (they would deny everyone): %s"
                          % ', '.join('%s: "%s"' % (
                              name, enforcer.file_rules[name].check_str)
                              for name in unparsed))
        unknown = sorted(set(enforcer.file_rules) - {
            rule.name for rule in policy.list_rules()})
        if unknown:
            return Result(Code.WARNING, "The policy file sets rules that "
                          "snapdriver does not have: %s" % ', '.join(unknown))
        return Result(Code.SUCCESS, "Policy: %d rule(s) overridden by the "
                      "policy file." % len(enforcer.file_rules))

    def _check_broker(self):
        from oslo_config import cfg
        configured = (CONF.get_location('transport_url').location
                      != cfg.Locations.opt_default)
        if not _tier() and not configured:
            return Result(Code.SUCCESS, "No message broker in use "
                          "([DEFAULT] transport_url is not set).")
        from snapdriver import rpc
        try:
            rpc.probe_broker()
        except Exception as error:
            return Result(Code.FAILURE, "[DEFAULT] transport_url: %s"
                          % error)
        return Result(Code.SUCCESS, "The message broker answers.")

    _upgrade_checks = (
        ('Driver', _check_driver),
        ('Status reporter', _check_reporter),
        ('Hypervisor', _check_hypervisor),
        ('Journal', _check_journal),
        ('Policy', _check_policy),
        ('Message broker', _check_broker),
    )


def main(argv=None):
    from snapdriver import rpc
    rpc.register_opts()
    return upgradecheck.main(CONF, project='snapdriver',
                             upgrade_command=Checks(),
                             argv=sys.argv[1:] if argv is None else argv)


if __name__ == '__main__':
    sys.exit(main())
