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

"""Policy rules of the assisted volume snapshots API.

The create and delete rules keep the compute API's names and defaults, so
an operator's existing policy file applies unchanged. The read rule is
snapdriver's own (the compute API has no GET on this resource).
"""

import time

from oslo_config import cfg
from oslo_policy import policy

from snapdriver import exception

CREATE = 'os_compute_api:os-assisted-volume-snapshots:create'
DELETE = 'os_compute_api:os-assisted-volume-snapshots:delete'
SHOW = 'snapdriver:os-assisted-volume-snapshots:show'
AGENTS = 'snapdriver:os-snapdriver-agents:index'
HEALTH_DETAIL = 'snapdriver:healthcheck:detail'
METRICS = 'snapdriver:metrics'

_PATH = '/v2.1/os-assisted-volume-snapshots'
_SERVICE_OR_ADMIN = 'role:service or role:admin'

rules = [
    policy.DocumentedRuleDefault(
        name=CREATE, check_str=_SERVICE_OR_ADMIN,
        description="Create an assisted volume snapshot (Cinder, for a "
                    "volume attached to a running guest).",
        operations=[{'method': 'POST', 'path': _PATH}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=DELETE, check_str=_SERVICE_OR_ADMIN,
        description="Delete an assisted volume snapshot (merge qcow2 "
                    "layers by block pull or block commit).",
        operations=[{'method': 'DELETE',
                     'path': _PATH + '/{snapshot_id}?delete_info=...'}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=SHOW, check_str=_SERVICE_OR_ADMIN,
        description="Show the operations snapdriver ran for a snapshot id "
                    "(state, error, timings, resulting chain). snapdriver's "
                    "own addition. Checked first with the caller's project "
                    "as the target, then for each operation with the "
                    "project that asked for it (project_id): operations "
                    "the rule does not admit are left out, and a 404 "
                    "answers when none is left. 'role:admin or "
                    "project_id:%(project_id)s' scopes GET per project.",
        operations=[{'method': 'GET', 'path': _PATH + '/{snapshot_id}'}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=AGENTS, check_str='role:admin',
        description="List the agents of the region (host, up or down, last "
                    "report, driver, version, volumes). snapdriver's own "
                    "addition, for operators.",
        operations=[{'method': 'GET', 'path': '/v2.1/os-snapdriver-agents'}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=HEALTH_DETAIL, check_str='role:admin',
        description="The detailed health check: GET /healthcheck with a "
                    "token shows each check's reason and details (the "
                    "hypervisor's, database's or broker's error) and the "
                    "process's threads. Without a token the health check "
                    "is public and short.",
        operations=[{'method': 'GET', 'path': '/healthcheck'}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=METRICS, check_str='role:admin',
        description="Scrape the Prometheus metrics ([metrics] enabled = "
                    "true).",
        operations=[{'method': 'GET', 'path': '/metrics'}],
        scope_types=['project']),
]

_ENFORCER = None


def list_rules():
    """The oslo.policy.policies entry point."""
    return rules


def get_enforcer():
    """The oslo.policy.enforcer entry point (for oslopolicy-* tools)."""
    return _get_enforcer()


class _Enforcer(policy.Enforcer):
    """oslo.policy's enforcer, looking at the policy files at most once a
    second instead of on every check.

    oslo.policy looks for the policy file and the policy directories, and
    at their modification times, each time it checks a rule: a dozen
    ``stat`` calls per request, most of the policy check's cost. A changed
    policy file still takes effect without a restart, within a second.
    """

    RECHECK_SECONDS = 1.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._next_look = None

    def load_rules(self, force_reload=False):
        now = time.monotonic()
        if (force_reload or self._next_look is None
                or now >= self._next_look):
            super().load_rules(force_reload)
            self._next_look = now + self.RECHECK_SECONDS

    def clear(self):
        super().clear()
        self._next_look = None


def _get_enforcer():
    global _ENFORCER
    if _ENFORCER is None:
        _ENFORCER = _Enforcer(cfg.CONF)
        _ENFORCER.register_defaults(rules)
    return _ENFORCER


def reset():
    global _ENFORCER
    if _ENFORCER is not None:
        _ENFORCER.clear()
    _ENFORCER = None


def check(context, action, target):
    """Whether the caller may do ``action`` on ``target``, without an
    exception."""
    try:
        return _get_enforcer().authorize(action, target, context,
                                         do_raise=False)
    except policy.InvalidScope:
        return False


def authorize(context, action, target=None):
    """Check ``action`` for the caller.

    :raises: PolicyNotAuthorized (403)
    """
    target = target or {'project_id': context.project_id}
    try:
        return _get_enforcer().authorize(
            action, target, context, do_raise=True,
            exc=exception.PolicyNotAuthorized, action=action)
    except policy.InvalidScope:
        raise exception.PolicyNotAuthorized(action=action)
