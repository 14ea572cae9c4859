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

"""Pecan hooks: what every request gets, and how errors leave."""

from pecan import hooks
import webob.exc

from snapdriver.api import faults
from snapdriver.api import middleware
from snapdriver import context


class ContextHook(hooks.PecanHook):
    """Put the caller's RequestContext and the microversion on the
    request."""

    def before(self, state):
        environ = state.request.environ
        state.request.context = context.RequestContext.from_environ(environ)
        state.request.version = environ.get(middleware.VERSION_ENV)


class OperationsHook(hooks.PecanHook):
    """Give controllers the operations API (accept, query), nothing more."""

    def __init__(self, operations):
        self.operations = operations

    def before(self, state):
        state.request.operations = self.operations


class FaultHook(hooks.PecanHook):
    """The single translation point from exceptions to fault bodies."""

    def on_error(self, state, error):
        if isinstance(error, webob.exc.HTTPException):
            # The framework's own answers (404, 405); FaultWrapper gives
            # them the fault body.
            return None
        return faults.from_exception(
            error, state.request.environ.get(middleware.REQUEST_ID_ENV))
