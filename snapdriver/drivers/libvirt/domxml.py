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

"""Domain XML in, snapshot XML out: pure functions over ElementTree.

Nothing here talks to libvirt, so every rule about the XML is unit-tested
on strings.
"""

import dataclasses
import typing
from xml.etree import ElementTree

#: Namespace of snapdriver's settings in a domain's ``<metadata>``.
METADATA_NS = 'https://snapdriver.invalid/xmlns/domain/1.0'
METADATA_PREFIX = 'snapdriver'
QUIESCE_TAG = '{%s}quiesce' % METADATA_NS
#: The namespace nova-compute writes its ``<nova:instance>`` metadata in,
#: followed by a version (``1.0``, ``1.1``...): a domain that carries it is
#: managed by a compute service.
COMPUTE_NS_PREFIX = 'http://openstack.org/xmlns/libvirt/nova/'

#: Disk types whose source is a path on this host, and the attribute of
#: ``<source>`` that holds it.
LOCAL_SOURCE_ATTRS = {'file': 'file', 'block': 'dev', 'dir': 'dir'}
NETWORK = 'network'
NETFS = 'netfs'


@dataclasses.dataclass(frozen=True)
class Image:
    """One image of a disk's chain as libvirt shows it.

    :param source: the absolute path of a local image, or the source name
        of a network image.
    :param fmt: the format libvirt reports (``<driver type>`` for the active
        image, ``<format type>`` below it); None when not shown.
    :param index: libvirt's ``index`` attribute, the N in ``vda[N]``; None
        when the XML has none.
    """
    source: str
    fmt: typing.Optional[str] = None
    index: typing.Optional[int] = None


@dataclasses.dataclass(frozen=True)
class Disk:
    """A ``<disk>`` of a domain.

    :param disk_type: the ``type`` attribute (file, block, dir, network...).
    :param protocol: the network protocol of a network disk.
    :param hosts: the attributes of each ``<host>`` of a network source.
    :param chain: the active image and what ``<backingStore>`` shows below
        it; empty when the disk has no source (an empty cdrom drive).
    """
    target: str
    serial: typing.Optional[str]
    device: str
    disk_type: str
    protocol: typing.Optional[str] = None
    hosts: typing.Tuple[typing.Tuple[typing.Tuple[str, str], ...], ...] = ()
    chain: typing.Tuple[Image, ...] = ()

    @property
    def is_local(self):
        return self.disk_type in LOCAL_SOURCE_ATTRS

    @property
    def is_netfs(self):
        return self.disk_type == NETWORK and self.protocol == NETFS


@dataclasses.dataclass(frozen=True)
class Domain:
    """What snapdriver needs of a domain's XML.

    :param quiesce: the value of ``<snapdriver:quiesce>`` in the domain's
        metadata, stripped; None when absent.
    :param compute_namespace: the namespace of nova-compute's metadata
        (:data:`COMPUTE_NS_PREFIX` and a version) when the domain carries
        some, else None.
    """
    name: str
    uuid: str
    disks: typing.Tuple[Disk, ...]
    quiesce: typing.Optional[str] = None
    compute_namespace: typing.Optional[str] = None

    def disk(self, target):
        """The disk with target dev ``target``, or None."""
        for disk in self.disks:
            if disk.target == target:
                return disk
        return None


def _source_of(disk_type, source):
    """The path (local) or name (network) of a ``<source>`` element."""
    if source is None:
        return None
    if disk_type == NETWORK:
        return source.get('name')
    attr = LOCAL_SOURCE_ATTRS.get(disk_type)
    return source.get(attr) if attr else None


def _index(element):
    value = element.get('index') if element is not None else None
    return int(value) if value is not None and value.isdigit() else None


def _format(element):
    return element.get('type') if element is not None else None


def _backing_images(parent):
    """The images of the ``<backingStore>`` elements nested in ``parent``.

    libvirt ends the chain with an empty ``<backingStore/>``, and the XML of
    a stopped domain may show only part of the chain (or none of it): the
    caller decides whether to trust what is here.
    """
    images = []
    store = parent.find('backingStore')
    while store is not None:
        source = _source_of(store.get('type'), store.find('source'))
        if source is None:
            break
        images.append(Image(source=source, fmt=_format(store.find('format')),
                            index=_index(store)))
        store = store.find('backingStore')
    return images


def _parse_disk(element):
    target = element.find('target')
    serial = element.find('serial')
    source = element.find('source')
    disk_type = element.get('type', 'file')
    chain = []
    active = _source_of(disk_type, source)
    if active:
        # Older libvirt shows no index on the active image; 0 then, as
        # libvirt itself reads a bare "vda".
        index = _index(source)
        chain.append(Image(source=active,
                           fmt=_format(element.find('driver')),
                           index=0 if index is None else index))
        chain.extend(_backing_images(element))
    hosts = ()
    if source is not None and disk_type == NETWORK:
        hosts = tuple(tuple(sorted(host.attrib.items()))
                      for host in source.findall('host'))
    return Disk(target=target.get('dev') if target is not None else None,
                serial=serial.text.strip() if serial is not None
                and serial.text else None,
                device=element.get('device', 'disk'),
                disk_type=disk_type,
                protocol=source.get('protocol') if source is not None
                else None,
                hosts=hosts,
                chain=tuple(chain))


def _quiesce_setting(root):
    metadata = root.find('metadata')
    if metadata is None:
        return None
    # iter() also finds the element inside a container element of ours,
    # should snapdriver ever need more than one setting per domain.
    for element in metadata.iter(QUIESCE_TAG):
        return (element.text or '').strip()
    return None


def _compute_namespace(root):
    """The namespace of the first element of nova-compute's under
    ``<metadata>``, any version; None when there is none."""
    metadata = root.find('metadata')
    if metadata is None:
        return None
    for element in metadata.iter():
        if not isinstance(element.tag, str) or not element.tag.startswith(
                '{'):
            continue
        namespace = element.tag[1:].partition('}')[0]
        if (namespace.startswith(COMPUTE_NS_PREFIX)
                or namespace == COMPUTE_NS_PREFIX.rstrip('/')):
            return namespace
    return None


def parse_domain(xml):
    """Parse a domain's XML.

    Disks without a target dev are left out: nothing can refer to them.

    :param xml: the XML text, as ``virDomain.XMLDesc()`` returns it.
    :returns: a :class:`Domain`.
    :raises: ValueError when the text is not a domain's XML.
    """
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as error:
        raise ValueError("unparsable domain XML: %s" % error)
    if root.tag != 'domain':
        raise ValueError("not a domain's XML: root element <%s>" % root.tag)
    disks = [_parse_disk(element)
             for element in root.findall('./devices/disk')]
    return Domain(name=root.findtext('name', default=''),
                  uuid=root.findtext('uuid', default=''),
                  disks=tuple(disk for disk in disks if disk.target),
                  quiesce=_quiesce_setting(root),
                  compute_namespace=_compute_namespace(root))


def _snapshot_disk_element(disks, disk, new_source):
    if disk.is_netfs:
        element = ElementTree.SubElement(disks, 'disk', {
            'name': disk.target, 'snapshot': 'external', 'type': NETWORK})
        source = ElementTree.SubElement(element, 'source', {
            'protocol': disk.protocol, 'name': new_source})
        for host in disk.hosts:
            ElementTree.SubElement(source, 'host', dict(host))
    else:
        element = ElementTree.SubElement(disks, 'disk', {
            'name': disk.chain[0].source, 'snapshot': 'external',
            'type': 'file'})
        ElementTree.SubElement(element, 'source', {'file': new_source})


def snapshot_xml(domain, disk, new_source):
    """The ``<domainsnapshot>`` that switches ``disk`` onto ``new_source``.

    A file disk is named by its current path and gets a file overlay; a
    netfs disk is named by its target and keeps its hosts. Every other disk
    of the domain is listed with ``snapshot="no"``, so that libvirt does not
    apply its default (an external snapshot of every disk). There is no
    ``<name>``: with NO_METADATA libvirt keeps no snapshot object.

    :param domain: the :class:`Domain` the disk belongs to.
    :param disk: the :class:`Disk` to snapshot (a file or netfs disk).
    :param new_source: the overlay's absolute path (file disk) or source
        name (netfs disk).
    :returns: the XML text.
    """
    root = ElementTree.Element('domainsnapshot')
    disks = ElementTree.SubElement(root, 'disks')
    _snapshot_disk_element(disks, disk, new_source)
    for other in domain.disks:
        if other.target != disk.target:
            ElementTree.SubElement(disks, 'disk', {'name': other.target,
                                                   'snapshot': 'no'})
    return ElementTree.tostring(root, encoding='unicode')
