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

"""The API's OpenAPI 3.1 document, built from the code.

The request schemas are the very JSON Schemas the controllers validate
with (:mod:`snapdriver.api.schemas.assisted_volume_snapshots`), the fault
names come from :mod:`snapdriver.api.faults` and the microversion range
from :mod:`snapdriver.api.microversion`, so the document cannot drift from
what is served. ``tools/generate-openapi.py`` writes it to
``doc/api/openapi.yaml`` (a unit test checks that the committed file is
current), and ``GET /v2.1/openapi.json`` serves it without authentication.

OpenAPI 3.1 because its schemas are JSON Schema: the request schemas use
``"type": ["string", "null"]``, which 3.0 cannot express.
"""

import copy

import yaml

from snapdriver.api import faults
from snapdriver.api import microversion
from snapdriver.api.schemas import assisted_volume_snapshots as schemas
from snapdriver import objects

OPENAPI_VERSION = '3.1.0'
PATH = '/v2.1/openapi.json'

_MIN = microversion.to_str(microversion.MIN_VERSION)
_MAX = microversion.to_str(microversion.MAX_VERSION)
_STRICT = microversion.to_str(microversion.STRICT_QUERY_VERSION)
# The same as controllers.root.RESOURCE and AGENTS (root imports this
# module).
_RESOURCE = 'os-assisted-volume-snapshots'
_AGENTS = 'os-snapdriver-agents'

_VERSION = r'(latest|[1-9][0-9]*\.(0|[1-9][0-9]*))'

# Response headers that every answer carries, errors included.
_EVERY_RESPONSE_HEADERS = ('NovaAPIVersion', 'OpenStackAPIVersion', 'Vary',
                           'OpenStackRequestId', 'ComputeRequestId')

# The errors each operation can answer, by status.
_ERROR_DESCRIPTIONS = {
    400: "The request is invalid; the message names the field or the part "
         "of the request that is wrong.",
    401: "No token, or a token that is not valid.",
    403: "The token's roles do not satisfy the policy rule of the "
         "operation.",
    404: "Not found.",
    406: "The requested microversion is not served (min %s, max %s)."
         % (_MIN, _MAX),
    409: "The snapshot id already has an operation of this kind with "
         "different parameters.",
    411: "A chunked request body: send the body with a Content-Length.",
    413: "The request body is larger than [api] max_request_body_size.",
    415: "The request body is not application/json.",
    503: "Something the request needs cannot be reached, and nothing was "
         "done; the message says what: the identity service validating the "
         "token (keystone authentication), the hypervisor, or in a region "
         "(dispatch = agents) the agent of the volume's host (no agent for "
         "that host, an agent down or that did not answer within [api] "
         "agent_timeout, the message broker), or Cinder where the cinder "
         "host locator asks it.",
}
_COMMON_ERRORS = (400, 406, 411, 413)
_AUTH_ERRORS = (401, 403, 503)


def _ref(kind, name):
    return {'$ref': '#/components/%s/%s' % (kind, name)}


def _fault_schema(code):
    name = faults.name_for(code)
    return {
        'type': 'object',
        'properties': {name: {
            'type': 'object',
            'properties': {'code': {'type': 'integer', 'enum': [code]},
                           'message': {'type': 'string'}},
            'required': ['code', 'message'],
            'additionalProperties': False,
        }},
        'required': [name],
        'additionalProperties': False,
    }


def _any_fault_schema():
    names = sorted(set(faults.NAMES.values()))
    return {
        'description': "Every error answer: one key, the fault name, whose "
                       "code is the HTTP status.",
        'type': 'object',
        'minProperties': 1,
        'maxProperties': 1,
        'properties': {name: _ref('schemas', 'FaultDetail')
                       for name in names},
        'additionalProperties': False,
    }


def _headers():
    return {
        'NovaAPIVersion': {
            'description': "The microversion used to serve the request.",
            'schema': {'type': 'string',
                       'pattern': r'^[1-9][0-9]*\.(0|[1-9][0-9]*)$'},
            'required': True,
        },
        'OpenStackAPIVersion': {
            'description': "'compute' and the microversion used.",
            'schema': {'type': 'string',
                       'pattern': r'^compute [1-9][0-9]*\.(0|[1-9][0-9]*)$'},
            'required': True,
        },
        'Vary': {
            'description': "Names both microversion headers.",
            'schema': {'type': 'string'},
            'required': True,
        },
        'OpenStackRequestId': {
            'description': "The request id, req-<uuid>, as logged.",
            'schema': {'type': 'string', 'pattern': r'^req-[0-9a-f-]{36}$'},
            'required': True,
        },
        'ComputeRequestId': {
            'description': "The request id again, for the compute API's "
                           "clients.",
            'schema': {'type': 'string', 'pattern': r'^req-[0-9a-f-]{36}$'},
            'required': True,
        },
    }


def _response_headers():
    return {
        'X-OpenStack-Nova-API-Version': _ref('headers', 'NovaAPIVersion'),
        'OpenStack-API-Version': _ref('headers', 'OpenStackAPIVersion'),
        'Vary': _ref('headers', 'Vary'),
        'X-OpenStack-Request-Id': _ref('headers', 'OpenStackRequestId'),
        'X-Compute-Request-Id': _ref('headers', 'ComputeRequestId'),
    }


def _response_name(code):
    return faults.name_for(code)[0].upper() + faults.name_for(code)[1:]


def _fault_responses():
    responses = {}
    for code, description in sorted(_ERROR_DESCRIPTIONS.items()):
        responses[_response_name(code)] = {
            'description': description,
            'headers': _response_headers(),
            'content': {'application/json': {
                'schema': _ref('schemas', 'Fault%d' % code)}},
        }
    return responses


def _parameters():
    return {
        'XAuthToken': {
            'name': 'X-Auth-Token', 'in': 'header', 'required': True,
            'description': "A Keystone token; with auth_strategy = noauth "
                           "(development) '<user>:<project>', user 'admin' "
                           "being an administrator.",
            'schema': {'type': 'string', 'minLength': 1},
        },
        'NovaAPIVersion': {
            'name': 'X-OpenStack-Nova-API-Version', 'in': 'header',
            'required': False,
            'description': "The microversion wanted, 'X.Y' or 'latest' "
                           "(min %s, max %s); %s when neither version "
                           "header is sent." % (_MIN, _MAX, _MIN),
            'schema': {'type': 'string', 'pattern': '^%s$' % _VERSION},
        },
        'OpenStackAPIVersion': {
            'name': 'OpenStack-API-Version', 'in': 'header',
            'required': False,
            'description': "'compute X.Y' or 'compute latest'; wins over "
                           "X-OpenStack-Nova-API-Version.",
            'schema': {'type': 'string',
                       'pattern': '^compute %s$' % _VERSION},
        },
        'ProjectId': {
            'name': 'project_id', 'in': 'path', 'required': True,
            'description': "Must be the token's project (else 400).",
            'schema': {'type': 'string', 'minLength': 1},
        },
        'SnapshotId': {
            'name': 'snapshot_id', 'in': 'path', 'required': True,
            'description': "The Cinder snapshot id (else 400).",
            'schema': copy.deepcopy(schemas.IDENTIFIER),
        },
        'DeleteInfo': {
            'name': 'delete_info', 'in': 'query', 'required': True,
            'description': "A JSON object, percent-encoded or not. From "
                           "microversion %s no other query parameter is "
                           "accepted; before it others are ignored." % _STRICT,
            'content': {'application/json': {
                'schema': _ref('schemas', 'DeleteInfo')}},
        },
    }


def _version_schema():
    return {
        'type': 'object',
        'properties': {
            'id': {'type': 'string', 'enum': ['v2.1']},
            'status': {'type': 'string', 'enum': ['CURRENT']},
            'version': {'type': 'string', 'enum': [_MAX]},
            'min_version': {'type': 'string', 'enum': [_MIN]},
            'updated': {'type': 'string'},
            'links': {'type': 'array', 'items': {
                'type': 'object',
                'properties': {'rel': {'type': 'string'},
                               'href': {'type': 'string'}},
                'required': ['rel', 'href'],
            }},
            'media-types': {'type': 'array', 'items': {
                'type': 'object',
                'properties': {'base': {'type': 'string'},
                               'type': {'type': 'string'}},
                'required': ['base', 'type'],
            }},
        },
        'required': ['id', 'status', 'version', 'min_version', 'links'],
    }


def _nullable(schema):
    schema = dict(schema)
    schema['type'] = [schema['type'], 'null']
    return schema


def _progress_schema():
    number = _nullable({'type': 'number'})
    integer = {'type': ['integer', 'null']}
    return {
        'description': "A merge's job (a block job of a running guest, "
                       "qemu-img for a stopped one): while it runs, and "
                       "once it ended. Null for a create, and for a merge "
                       "whose driver cannot tell. Bytes are the job's own "
                       "count (for a pull or a commit, the disk's size).",
        'type': ['object', 'null'],
        'properties': {
            'bytes_done': integer,
            'bytes_total': integer,
            'percent': dict(number, description="Rounded down to a "
                                                "tenth."),
            'rate_bytes_per_second': dict(
                integer, description="Over the last interval ([DEFAULT] "
                                     "progress_interval); null once ended."),
            'eta_seconds': dict(number, description="Time left at that "
                                                    "rate; null once "
                                                    "ended."),
            'job_started_at': _nullable({'type': 'string'}),
            'updated_at': _nullable({'type': 'string'}),
            'job_seconds': dict(number, description="Once ended: how long "
                                                    "the job took, with "
                                                    "the flush that made "
                                                    "it durable."),
            'average_rate_bytes_per_second': dict(
                integer, description="Once ended: over the whole job."),
        },
    }


def _operation_schema():
    string = {'type': 'string'}
    names = {'type': 'array', 'items': string}
    return {
        'description': "One create or delete of a snapshot, as journalled.",
        'type': 'object',
        'properties': {
            'id': string,
            'snapshot_id': string,
            'volume_id': string,
            'kind': {'type': 'string', 'enum': list(objects.KINDS)},
            'state': {'type': 'string', 'enum': list(objects.STATES)},
            'project_id': dict(_nullable(string), description=(
                "The project of the caller that asked for it; the target "
                "of the GET policy rule. Null for operations journalled "
                "before snapdriver kept it.")),
            'error': _nullable(string),
            'guest': _nullable(string),
            'disk': _nullable(string),
            'request': {'type': 'object'},
            'chain_before': names,
            'expected_chain': names,
            'chain': names,
            'created_at': _nullable(string),
            'started_at': _nullable(string),
            'finished_at': _nullable(string),
            'duration_seconds': _nullable({'type': 'number'}),
            'progress': _progress_schema(),
            'status_report': {
                'type': 'object',
                'properties': {
                    'status': _nullable(string),
                    'progress': _nullable(string),
                    'delivery': _nullable(string),
                    'detail': _nullable(string),
                    'attempts': {'type': ['integer', 'null']},
                    'reported_at': _nullable(string),
                },
            },
            'host': {
                'type': 'string',
                'description': "In a region (dispatch = agents): the host "
                               "whose agent ran the operation. A single-"
                               "process service leaves it out.",
            },
        },
        'required': ['id', 'snapshot_id', 'volume_id', 'kind', 'state',
                     'error', 'chain', 'created_at'],
    }


def _agent_schema():
    return {
        'description': "An agent of the region, as its latest report shows "
                       "it; a single-process service lists itself.",
        'type': 'object',
        'properties': {
            'host': {'type': 'string',
                     'description': "Its [DEFAULT] host."},
            'state': {'type': 'string', 'enum': ['up', 'down'],
                      'description': "down: silent for [api] "
                                     "agent_down_time seconds."},
            'last_seen': {'type': 'string',
                          'description': "When its latest report came, "
                                         "UTC."},
            'driver': {'type': 'string'},
            'version': {'type': 'string',
                        'description': "Its snapdriver version."},
            'volumes': {'type': ['integer', 'null'], 'minimum': 0,
                        'description': "How many volumes its driver sees "
                                       "attached; null when the driver "
                                       "cannot tell."},
        },
        'required': ['host', 'state', 'last_seen', 'driver', 'version',
                     'volumes'],
        'additionalProperties': False,
    }


def _schemas():
    result = {
        # The request schemas are the controllers' own.
        'CreateRequest': copy.deepcopy(schemas.create),
        'DeleteInfo': copy.deepcopy(schemas.delete_info),
        'CreateResponse': {
            'type': 'object',
            'properties': {'snapshot': {
                'type': 'object',
                'properties': {
                    'id': {'type': ['string', 'null'],
                           'description': "create_info.id, or null."},
                    'volumeId': {'type': 'string'},
                },
                'required': ['id', 'volumeId'],
                'additionalProperties': False,
            }},
            'required': ['snapshot'],
            'additionalProperties': False,
        },
        'Operation': _operation_schema(),
        'Operations': {
            'type': 'object',
            'properties': {'operations': {
                'type': 'array', 'minItems': 1,
                'items': _ref('schemas', 'Operation')}},
            'required': ['operations'],
            'additionalProperties': False,
        },
        'Agent': _agent_schema(),
        'Agents': {
            'type': 'object',
            'properties': {'agents': {
                'type': 'array', 'items': _ref('schemas', 'Agent')}},
            'required': ['agents'],
            'additionalProperties': False,
        },
        'Version': _version_schema(),
        'VersionDocument': {
            'type': 'object',
            'properties': {'version': _ref('schemas', 'Version')},
            'required': ['version'],
        },
        'Versions': {
            'type': 'object',
            'properties': {'versions': {
                'type': 'array', 'items': _ref('schemas', 'Version')}},
            'required': ['versions'],
        },
        'FaultDetail': {
            'type': 'object',
            'properties': {'code': {'type': 'integer'},
                           'message': {'type': 'string'}},
            'required': ['code', 'message'],
            'additionalProperties': False,
        },
        'Fault': _any_fault_schema(),
    }
    for code in sorted(_ERROR_DESCRIPTIONS):
        result['Fault%d' % code] = _fault_schema(code)
    return result


def _errors(codes):
    return {str(code): _ref('responses', _response_name(code))
            for code in sorted(codes)}


def _json_response(description, schema_name):
    return {
        'description': description,
        'headers': _response_headers(),
        'content': {'application/json': {
            'schema': _ref('schemas', schema_name)}},
    }


_VERSION_PARAMETERS = [_ref('parameters', 'NovaAPIVersion'),
                       _ref('parameters', 'OpenStackAPIVersion')]


def _public_get(operation_id, summary, ok, description=None):
    operation = {
        'operationId': operation_id,
        'summary': summary,
        'tags': ['discovery'],
        'parameters': list(_VERSION_PARAMETERS),
        'responses': dict({'200': ok}, **_errors(_COMMON_ERRORS)),
    }
    if description:
        operation['description'] = description
    return {'get': operation}


def _resource_paths(with_project):
    prefix = '/v2.1/{project_id}' if with_project else '/v2.1'
    suffix = 'InProject' if with_project else ''
    first = [_ref('parameters', 'ProjectId')] if with_project else []
    project_note = (" The project id in the URL must be the token's "
                    "project." if with_project else "")
    authenticated = first + [_ref('parameters', 'XAuthToken')] + list(
        _VERSION_PARAMETERS)
    collection = {'post': {
        'operationId': 'createAssistedVolumeSnapshot' + suffix,
        'summary': "Create a snapshot of a volume attached to a guest",
        'description': "Checks the request against the disk (the volume "
                       "must be attached here, new_file must be a qcow2 "
                       "overlay of the active image beside it), journals "
                       "the operation and answers; the outcome reaches "
                       "Cinder through the snapshot status callback."
                       + project_note,
        'tags': [_RESOURCE],
        'parameters': list(authenticated),
        'requestBody': {
            'required': True,
            'content': {'application/json': {
                'schema': _ref('schemas', 'CreateRequest')}},
        },
        'responses': dict(
            {'200': _json_response("Accepted and started.",
                                   'CreateResponse')},
            **_errors(_COMMON_ERRORS + _AUTH_ERRORS + (409, 415))),
    }}
    item = {
        'delete': {
            'operationId': 'deleteAssistedVolumeSnapshot' + suffix,
            'summary': "Delete a snapshot: merge it out of the backing "
                       "chain",
            'description': "file_to_merge and merge_target_file must be "
                           "adjacent members of the disk's backing chain; "
                           "the operation is journalled and runs in the "
                           "background." + project_note,
            'tags': [_RESOURCE],
            'parameters': authenticated + [
                _ref('parameters', 'SnapshotId'),
                _ref('parameters', 'DeleteInfo')],
            'responses': dict(
                {'204': {'description': "Accepted and started; no body.",
                         'headers': _response_headers()}},
                **_errors(_COMMON_ERRORS + _AUTH_ERRORS + (404, 409))),
        },
        'get': {
            'operationId': 'showAssistedVolumeSnapshotOperations' + suffix,
            'summary': "The operations of a snapshot id (snapdriver's "
                       "addition)",
            'description': "State (queued, running, succeeded, failed), "
                           "error text, timings and chains of every "
                           "operation of the snapshot, oldest first; kept "
                           "across restarts." + project_note,
            'tags': [_RESOURCE],
            'parameters': authenticated + [_ref('parameters', 'SnapshotId')],
            'responses': dict(
                {'200': _json_response("The operations.", 'Operations')},
                **_errors(_COMMON_ERRORS + _AUTH_ERRORS + (404,))),
        },
    }
    resource = '%s/%s' % (prefix, _RESOURCE)
    return {resource: collection, resource + '/{snapshot_id}': item}


def _agents_path(with_project):
    prefix = '/v2.1/{project_id}' if with_project else '/v2.1'
    first = [_ref('parameters', 'ProjectId')] if with_project else []
    return {'%s/%s' % (prefix, _AGENTS): {'get': {
        'operationId': 'listSnapdriverAgents' + (
            'InProject' if with_project else ''),
        'summary': "The agents of the region (snapdriver's addition, for "
                   "operators)",
        'description': "Each agent's host, whether it is up, when it last "
                       "reported, its driver, version and how many volumes "
                       "its driver sees, as this API process heard them. "
                       "A single-process service lists itself. Default "
                       "policy: admin only." + (
                           " The project id in the URL must be the "
                           "token's project." if with_project else ""),
        'tags': [_AGENTS],
        'parameters': first + [_ref('parameters', 'XAuthToken')] + list(
            _VERSION_PARAMETERS),
        'responses': dict(
            {'200': _json_response("The agents, by host name.", 'Agents')},
            **_errors(_COMMON_ERRORS + _AUTH_ERRORS)),
    }}}


def build():
    """The OpenAPI document as a dict (JSON-serialisable)."""
    paths = {}
    paths['/'] = _public_get(
        'listVersions', "The API versions",
        _json_response("The v2.1 version.", 'Versions'))
    paths['/v2.1'] = _public_get(
        'showVersion', "The v2.1 version",
        _json_response("The v2.1 version.", 'VersionDocument'))
    paths['/healthcheck'] = _public_get('healthcheck', "Health", {
        'description': "Healthy: 'OK', then a line per check ('hypervisor: "
                       "OK', 'journal: OK', 'message broker: not used by "
                       "this process', ...).",
        'headers': _response_headers(),
        'content': {'text/plain': {'schema': {'type': 'string',
                                              'pattern': '^OK'}}},
    }, description="oslo.middleware's health check with snapdriver's "
                   "checks as its plugins (doc/deploying.md, 'The health "
                   "check'). Needs no token; with an admin's token "
                   "(policy snapdriver:healthcheck:detail) it is the "
                   "detailed view. Unhealthy: a 503 naming the failing "
                   "checks.")
    paths[PATH] = _public_get(
        'showOpenAPI', "This document", {
            'description': "The OpenAPI document of the API.",
            'headers': _response_headers(),
            'content': {'application/json': {'schema': {'type': 'object'}}},
        })
    paths.update(_resource_paths(with_project=False))
    paths.update(_resource_paths(with_project=True))
    paths.update(_agents_path(with_project=False))
    paths.update(_agents_path(with_project=True))
    return {
        'openapi': OPENAPI_VERSION,
        'info': {
            'title': 'snapdriver',
            'version': _MIN,
            'summary': "The compute API's os-assisted-volume-snapshots "
                       "resource, served standalone",
            'description': (
                "Wire-compatible with the compute API (Nova) for Cinder's "
                "remotefs drivers and python-novaclient. Microversions %s "
                "to %s are served; every answer, errors included, carries "
                "both microversion headers with the version used. Every "
                "error answer has the body {\"<name>\": {\"code\": <status>, "
                "\"message\": <text>}} (schema Fault). A method a path "
                "does not serve is a 405 (badMethod) with an Allow header; "
                "an unknown path is a 404 (itemNotFound). Generated from "
                "the code by tools/generate-openapi.py; do not edit."
                % (_MIN, _MAX)),
            'license': {'name': 'Apache-2.0',
                        'identifier': 'Apache-2.0'},
        },
        'servers': [{'url': '/'}],
        'tags': [{'name': 'discovery'}, {'name': _RESOURCE},
                 {'name': _AGENTS}],
        'paths': paths,
        'components': {
            'schemas': _schemas(),
            'parameters': _parameters(),
            'headers': _headers(),
            'responses': _fault_responses(),
        },
    }


class _Dumper(yaml.SafeDumper):
    """Repeated parts written out in full, not as YAML anchors."""

    def ignore_aliases(self, data):
        return True


def to_yaml(document=None):
    """The document as the YAML text of ``doc/api/openapi.yaml``."""
    text = yaml.dump(build() if document is None else document,
                     Dumper=_Dumper, default_flow_style=False,
                     sort_keys=False, allow_unicode=True, width=79)
    return ("# Generated by tools/generate-openapi.py from "
            "snapdriver/api/openapi.py; do not edit.\n" + text)
