"""Version documents at / and /v2.1, and the routes below /v2.1."""

import pecan
from pecan import rest

from snapdriver.api.controllers import assisted_volume_snapshots as avs
from snapdriver.api import microversion

RESOURCE = 'os-assisted-volume-snapshots'
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


class V21Controller(rest.RestController):
    """/v2.1: the version document and the resource, with or without a
    project id segment."""

    @pecan.expose('json')
    def get_all(self, **kwargs):
        return {'version': version_document()}

    @pecan.expose()
    def _lookup(self, *remainder):
        if remainder and remainder[0] == RESOURCE:
            return avs.AssistedVolumeSnapshotsController(), remainder[1:]
        if len(remainder) >= 2 and remainder[1] == RESOURCE:
            return (avs.AssistedVolumeSnapshotsController(remainder[0]),
                    remainder[2:])
        pecan.abort(404)


class HealthController(rest.RestController):

    @pecan.expose(content_type='text/plain')
    def get_all(self, **kwargs):
        return 'OK'


class RootController(rest.RestController):

    healthcheck = HealthController()

    @pecan.expose('json')
    def get_all(self, **kwargs):
        return {'versions': [version_document()]}


pecan.route(RootController, 'v2.1', V21Controller())
