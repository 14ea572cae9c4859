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

"""Compute API microversions, as far as this resource is concerned.

Only one microversion changes this resource: from 2.75 the delete query
accepts no parameter other than ``delete_info``. Versions up to the compute
API's current maximum are served so that a client pinned to a recent one
is not refused; they behave as 2.75.
"""

import re

import microversion_parse

from snapdriver import exception

MIN_VERSION = (2, 1)
MAX_VERSION = (2, 96)
STRICT_QUERY_VERSION = (2, 75)

LEGACY_HEADER = 'X-OpenStack-Nova-API-Version'
HEADER = 'OpenStack-API-Version'
SERVICE = 'compute'

_FORMAT = re.compile(r'^([1-9]\d*)\.([1-9]\d*|0)$')


class InvalidVersionFormat(exception.Invalid):
    msg_fmt = ("API Version String %(version)r is of invalid format. Must be "
               "of format MajorNum.MinorNum or 'latest'.")


class VersionNotSupported(exception.SnapdriverException):
    code = 406
    msg_fmt = ("Version %(version)s is not supported by the API. Minimum is "
               "%(min)s and maximum is %(max)s.")


def to_str(version):
    return '%d.%d' % version


def negotiate(headers):
    """The microversion a request asked for.

    :param headers: the request headers (case-insensitive mapping).
    :returns: (major, minor); the minimum when none was asked for.
    :raises: InvalidVersionFormat (400), VersionNotSupported (406)
    """
    # OpenStack-API-Version's "compute" entry first (the last one if the
    # header names compute twice), else X-OpenStack-Nova-API-Version.
    text = microversion_parse.get_version(
        headers, service_type=SERVICE, legacy_headers=[LEGACY_HEADER])
    if text is None:
        return MIN_VERSION
    text = text.strip()
    if text.lower() == 'latest':
        return MAX_VERSION
    match = _FORMAT.match(text)
    if not match:
        raise InvalidVersionFormat(version=text)
    version = (int(match.group(1)), int(match.group(2)))
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise VersionNotSupported(version=text, min=to_str(MIN_VERSION),
                                  max=to_str(MAX_VERSION))
    return version


def response_headers(version):
    return {
        LEGACY_HEADER: to_str(version),
        HEADER: '%s %s' % (SERVICE, to_str(version)),
        'Vary': '%s, %s' % (HEADER, LEGACY_HEADER),
    }
