"""snapdriver's version, from the installed distribution (pbr)."""

import pbr.version

version_info = pbr.version.VersionInfo('snapdriver')


def version_string():
    try:
        return version_info.version_string()
    except Exception:
        return 'unknown'


# What oslo.reports' Guru Meditation Report prints as the package.

def vendor_string():
    return 'OpenStack'


def product_string():
    return 'snapdriver'


def version_string_with_package():
    return version_string()
