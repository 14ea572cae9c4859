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

"""JSON Schemas of the assisted volume snapshots resource."""

_NON_EMPTY = {'type': 'string', 'minLength': 1, 'maxLength': 255}
# Volume and snapshot ids become parts of Cinder URLs and of log lines.
IDENTIFIER_RULE = ("an id is 1 to 255 of the characters A-Z a-z 0-9 _ . - "
                   "and not '.' or '..'")
IDENTIFIER_PATTERN = '^[A-Za-z0-9_.-]+$'
IDENTIFIER = {'type': 'string', 'minLength': 1, 'maxLength': 255,
              'pattern': IDENTIFIER_PATTERN, 'not': {'enum': ['.', '..']},
              'description': IDENTIFIER_RULE}
_NAME_OR_NULL = {'type': ['string', 'null'], 'minLength': 1,
                 'maxLength': 255}

create = {
    'type': 'object',
    'properties': {
        'snapshot': {
            'type': 'object',
            'properties': {
                'volume_id': IDENTIFIER,
                'create_info': {
                    'type': 'object',
                    'properties': {
                        'snapshot_id': IDENTIFIER,
                        'type': {'type': 'string', 'enum': ['qcow2']},
                        'new_file': _NON_EMPTY,
                        'id': _NON_EMPTY,
                    },
                    'required': ['snapshot_id', 'type', 'new_file'],
                    'additionalProperties': False,
                },
            },
            'required': ['volume_id', 'create_info'],
            'additionalProperties': False,
        },
    },
    'required': ['snapshot'],
    'additionalProperties': False,
}

delete_info = {
    'type': 'object',
    'properties': {
        'volume_id': IDENTIFIER,
        'type': {'type': 'string', 'enum': ['qcow2']},
        'file_to_merge': _NAME_OR_NULL,
        'merge_target_file': _NAME_OR_NULL,
    },
    'required': ['volume_id'],
    'additionalProperties': False,
}

# From microversion 2.75 the delete query takes delete_info and nothing
# else; before it, other parameters are ignored.
delete_query_v275 = {
    'type': 'object',
    'properties': {'delete_info': {'type': 'string'}},
    'additionalProperties': False,
}
