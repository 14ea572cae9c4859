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

"""Version documents at / and /v2.1, and the routes below /v2.1."""

import pecan

from snapdriver.api.controllers import agents
from snapdriver.api.controllers import assisted_volume_snapshots as avs
from snapdriver.api import faults
from snapdriver.api import health
from snapdriver.api import microversion
from snapdriver.api import openapi
from snapdriver import policy

RESOURCE = 'os-assisted-volume-snapshots'
AGENTS = 'os-snapdriver-agents'
_UPDATED = '2013-07-23T11:33:21Z'


def version_document():
    """The v2.1 version in the compute API's shape."""
    host = pecan.request.application_url.rstrip('/')
    return {
        'id': 'v2.1',
        'status': 'CURRENT',
        'version': microversion.to_str(microversion.MAX_VERSION),
        'min_version': microversion.to_str(microversion.MIN_VERSION),
        'updated': _UPDATED,
        'links': [{'rel': 'self', 'href': host + '/v2.1/'}],
        'media-types': [{
            'base': 'application/json',
            'type': 'application/vnd.openstack.compute+json;version=2.1'}],
    }


def _get_only(handler):
    """Expose ``handler`` for GET; other methods get 405 with Allow."""
    @pecan.expose(generic=True, content_type='application/json')
    def index(self, *args, **kwargs):
        pecan.abort(405, headers={'Allow': 'GET'})

    index.when(method='GET', template='json')(handler)
    return index


class OpenAPIController(object):
    """/v2.1/openapi.json: the OpenAPI document (public)."""

    index = _get_only(lambda self, **kwargs: openapi.build())


class V21Controller(object):
    """/v2.1: the version document and the resource, with or without a
    project id segment."""

    index = _get_only(lambda self, **kwargs: {'version': version_document()})

    @pecan.expose()
    def _lookup(self, *remainder):
        if remainder == ('openapi.json',):
            return OpenAPIController(), ()
        # A resource right after /v2.1 first: /v2.1/<resource>/<id> is an
        # item, whatever its id (not a project named like a resource).
        if remainder and remainder[0] == RESOURCE:
            return avs.AssistedVolumeSnapshotsController(), remainder[1:]
        if remainder and remainder[0] == AGENTS:
            return agents.AgentsController(), remainder[1:]
        if len(remainder) >= 2 and remainder[1] == RESOURCE:
            return (avs.AssistedVolumeSnapshotsController(remainder[0]),
                    remainder[2:])
        if len(remainder) >= 2 and remainder[1] == AGENTS:
            return agents.AgentsController(remainder[0]), remainder[2:]
        pecan.abort(404)


class RootController(object):

    index = _get_only(
        lambda self, **kwargs: {'versions': [version_document()]})

    @pecan.expose()
    def metrics(self, **kwargs):
        from snapdriver.api import metrics
        return metrics.scrape()

    @pecan.expose()
    def healthcheck(self, **kwargs):
        """With a token (without, the health check is answered before the
        authentication): the detailed view, for those the policy
        allows."""
        avs.check_context(None, policy.HEALTH_DETAIL)
        # Unhealthy is oslo.middleware's 503, not a compute API fault.
        pecan.request.environ[faults.OWN_SHAPE] = True
        return pecan.request.get_response(health.detailed_application())


pecan.route(RootController, 'v2.1', V21Controller())
