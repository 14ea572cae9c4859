"""snapdriver's version, from the installed distribution (pbr)."""

import pbr.version

version_info = pbr.version.VersionInfo('snapdriver')


def version_string():
    try:
        return version_info.version_string()
    except Exception:
        return 'unknown'
