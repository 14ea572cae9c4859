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

"""Control characters out of log lines.

Values taken from a request (paths, ids, file names, header values) reach
log lines as arguments of the log call. A newline or an escape sequence in
one of them could forge a log line or rewrite a terminal; this filter,
installed on every handler of the root logger, writes the control
characters of string arguments as escapes (``\\n``, ``\\x1b``) before
the line is formatted.
"""

import logging
import re

# C0, DEL, C1 and the Unicode line and paragraph separators.
_CONTROL = re.compile('[\x00-\x1f\x7f-\x9f\u2028\u2029]')
_NAMED = {'\n': '\\n', '\r': '\\r', '\t': '\\t'}


def escape(text):
    """``text`` with its control characters written as escapes."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group()) or (
        '\\x%02x' % ord(m.group()) if ord(m.group()) < 0x100
        else '\\u%04x' % ord(m.group())), text)


def _escaped(value):
    return escape(value) if isinstance(value, str) else value


class EscapeControlCharacters(logging.Filter):
    """Escape control characters in the string arguments of a record."""

    def filter(self, record):
        args = record.args
        if isinstance(args, dict):
            record.args = {key: _escaped(value)
                           for key, value in args.items()}
        elif isinstance(args, tuple):
            record.args = tuple(_escaped(value) for value in args)
        return True


def install(logger=None):
    """Add the filter to every handler of ``logger`` (the root logger)."""
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        if not any(isinstance(f, EscapeControlCharacters)
                   for f in handler.filters):
            handler.addFilter(EscapeControlCharacters())
