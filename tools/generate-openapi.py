#!/usr/bin/env python3
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

"""Write doc/api/openapi.yaml from snapdriver/api/openapi.py.

Run with the interpreter of snapdriver's virtualenv (the document imports
the API's code), e.g. ``.venv/bin/python tools/generate-openapi.py``.
``--check`` writes nothing and exits 1 when the committed file is stale.
"""

import argparse
import os
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from snapdriver.api import openapi  # noqa: E402

OUTPUT = os.path.join(TOP, 'doc', 'api', 'openapi.yaml')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true',
                        help="only check that %s is current" % OUTPUT)
    parser.add_argument('--output', default=OUTPUT,
                        help="where to write (default: %(default)s)")
    args = parser.parse_args()
    text = openapi.to_yaml()
    if args.check:
        try:
            with open(args.output, encoding='utf-8') as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            sys.stderr.write("%s is stale: run tools/generate-openapi.py\n"
                             % args.output)
            return 1
        return 0
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, 'w', encoding='utf-8') as f:
        f.write(text)
    print("wrote %s" % args.output)
    return 0


if __name__ == '__main__':
    sys.exit(main())
