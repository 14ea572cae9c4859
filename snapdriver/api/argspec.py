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

"""Pecan's controller signatures, read once per controller, not per request.

Pecan reads the signature of the controller it routes to on every request
(``pecan.util.getargspec``, from the routing, the REST dispatch and the
call itself), and on Python 3 each of those reads builds a new
``namedtuple`` class: about a third of a millisecond of CPU per request
here, for an answer that never changes. :func:`install` puts a cache in
front of it, keyed by the underlying function (a bound method is a new
object every time). Pecan copies what it changes (``argspec.args[:]``,
``_replace``), so sharing one result is safe.
"""

import functools

from pecan import core
from pecan import rest
from pecan import routing

_MODULES = (core, rest, routing)


def _cached(getargspec):
    cache = {}

    @functools.wraps(getargspec)
    def cached(method):
        key = getattr(method, '__func__', method)
        try:
            return cache[key]
        except KeyError:
            return cache.setdefault(key, getargspec(method))
        except TypeError:       # unhashable: not cached
            return getargspec(method)

    cached.uncached = getargspec
    return cached


def install():
    """Cache Pecan's signature reads (once per process)."""
    for module in _MODULES:
        if not hasattr(module.getargspec, 'uncached'):
            module.getargspec = _cached(module.getargspec)
