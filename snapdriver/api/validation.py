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

"""JSON Schema validation with messages that name the field and value."""

import re

import jsonschema

from snapdriver import exception


def _field(error, what):
    path = [str(p) for p in error.absolute_path]
    if error.validator == 'required':
        missing = error.message.split("'")[1] if "'" in error.message else ''
        path.append(missing)
    return '.'.join(p for p in path if p) or what


def validate(schema, document, what='(body)'):
    """Validate ``document``; report the first error, deepest field first.

    :raises: InvalidInput (400) naming the field, the value and the rule.
    """
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(document),
                    key=lambda e: (-len(e.absolute_path), e.message))
    if not errors:
        return
    error = errors[0]
    field = _field(error, what)
    if error.validator == 'required':
        reason = "it is required"
    elif error.validator == 'additionalProperties':
        reason = error.message
    elif (error.validator in ('pattern', 'not', 'maxLength', 'minLength')
            and 'description' in error.schema):
        # A rule with a description of its own (identifiers) says it.
        reason = "value %s: %s" % (_short(error.instance),
                                   error.schema['description'])
    else:
        reason = "value %s: %s" % (_short(error.instance), error.message)
    raise exception.InvalidInput(field=field, reason=reason)


def check_identifier(field, value, rule, pattern):
    """``value`` must match ``pattern`` whole (a JSON Schema pattern lets
    a trailing newline through: Python's ``$`` matches before it), and not
    be ``.`` or ``..``.

    :raises: InvalidInput (400) naming the field and the value, escaped.
    """
    whole = pattern.lstrip('^').rstrip('$')
    if (not isinstance(value, str) or not re.fullmatch(whole, value)
            or value in ('.', '..') or len(value) > 255):
        raise exception.InvalidInput(
            field=field, reason="value %s: %s" % (_short(value), rule))


def _short(value):
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + '...'
