# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils file is private to the vmsnap.libvirt collection. It can change at any time,
# without a deprecation period. Do not use it outside this collection.

"""Domain and snapshot XML, read and written with lxml, and the plain dicts the modules return.

Nothing here talks to libvirt: the client hands XML strings in, and gets XML strings back.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os.path
import threading
import time

from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError

try:
    from lxml import etree
    HAS_LXML = True
    LXML_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only where lxml is missing
    HAS_LXML = False
    LXML_IMPORT_ERROR = exc

# Snapshot kinds as libvirt names them in <memory snapshot=...> and <disk snapshot=...>.
INTERNAL = 'internal'
EXTERNAL = 'external'
NO = 'no'

# Domain states (virDomainState) as the modules report them.
ACTIVE_STATES = ('running', 'blocked', 'paused', 'pmsuspended', 'shutdown', 'crashed')

# libvirt's QEMU driver keeps each snapshot's record in '<name>.xml', written through '<name>.xml.new': with the file
# system's 255-byte limit on a file name, that leaves 247 bytes of UTF-8 for the name. A longer one fails only after
# QEMU has taken the snapshot, leaving an internal snapshot libvirt does not know about.
NAME_MAX_BYTES = 247

# The collection's own element in a domain's <metadata>: its namespace, the prefix libvirt writes it with (the key of
# virDomainSetMetadata), and the child virt_start_from_snapshot records a start in.
VMSNAP_NAMESPACE = 'https://vmsnap.dev/xmlns/libvirt/1.0'
VMSNAP_METADATA_KEY = 'vmsnap'
START_RECORD = 'started-from'
# The note that a disk-only snapshot of a running guest is taken with its file systems frozen: set in the running
# domain's metadata for the time of the create, so that libvirt copies it into the snapshot's <domain>.
QUIESCED_NOTE = 'quiesced'
# How consistent a snapshot is, from most to least: 'memory' (the whole running state), 'quiesced' (the disks with
# the guest's file systems frozen by its agent), 'shutoff' (the disks of a domain that did not run), 'crash' (the
# disks of a running guest as a power cut would leave them).
CONSISTENCIES = ('memory', 'quiesced', 'shutoff', 'crash')


_PARSERS = threading.local()


def _parser():
    """This thread's XML parser: no network access and no entity expansion (the XML comes from libvirt or from the
    user). Made once per thread, since an lxml parser must not be shared between threads and reading a thousand
    snapshots should not build a thousand parsers."""
    parser = getattr(_PARSERS, 'parser', None)
    if parser is None:
        parser = _PARSERS.parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
    return parser


def parse_xml(text, what):
    """Parse ``text`` into an lxml element; ``what`` names the document in the error."""
    try:
        return etree.fromstring(text.encode('utf-8') if not isinstance(text, bytes) else text, _parser())
    except etree.XMLSyntaxError as exc:
        raise SnapshotError('Could not parse the XML of %s: %s' % (what, exc))


def to_xml(element):
    return etree.tostring(element, encoding='unicode')


def _is_xml_char(char):
    code = ord(char)
    return code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or code >= 0x10000


def validate_snapshot_name(name, option='name'):
    """Refuse names libvirt or the file system cannot carry faithfully."""
    if name is None or name == '':
        raise SnapshotError('The snapshot %s must not be empty. Give the snapshot a name, for example %s=before-upgrade.'
                            % (option, option))
    problems = []
    size = len(name.encode('utf-8', 'surrogatepass'))
    if size > NAME_MAX_BYTES:
        problems.append('it is %d bytes long in UTF-8 (at most %d are allowed, because libvirt stores the snapshot in '
                        'a file named after it)' % (size, NAME_MAX_BYTES))
    if '/' in name:
        problems.append("it contains '/' (external snapshot files are named after the snapshot)")
    if name != name.strip():
        problems.append('it starts or ends with white space')
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in name):
        problems.append('it contains a control character such as a newline or tab')
    elif not all(_is_xml_char(char) for char in name):
        problems.append('it contains a character XML cannot carry')
    if name.startswith('.'):
        problems.append("it starts with '.' (libvirt keeps snapshot definitions in files named after them)")
    if problems:
        raise SnapshotError('The snapshot %s %r is not valid: %s. Choose a name of printable characters without '
                            "'/' that does not start with '.', of at most %d bytes."
                            % (option, name, '; '.join(problems), NAME_MAX_BYTES))


def validate_description(description):
    if description is None:
        return
    # libvirt writes a carriage return back raw, and XML parsers read it as a newline: it would never round-trip.
    bad = sorted(set('U+%04X' % ord(char) for char in description if char == '\r' or not _is_xml_char(char)))
    if bad:
        raise SnapshotError('The description contains characters XML cannot carry (%s). Remove them; tabs and '
                            'newlines are fine, carriage returns are not.' % ', '.join(bad))


# ---------------------------------------------------------------------------------------------------------------------
# Domain XML

def _disk_source(disk):
    """(kind, path_or_name) of a <disk>'s <source>, or (None, None) for an empty drive."""
    source = disk.find('source')
    if source is None:
        return None, None
    disk_type = disk.get('type', 'file')
    if disk_type == 'file':
        return 'file', source.get('file')
    if disk_type == 'block':
        return 'block', source.get('dev')
    if disk_type == 'network':
        name = source.get('name')
        return 'network', '%s:%s' % (source.get('protocol', 'network'), name) if name else source.get('protocol')
    if disk_type == 'volume':
        return 'volume', '%s/%s' % (source.get('pool'), source.get('volume'))
    return disk_type, None


def _mirror(disk):
    """The block job a running domain's disk is in ({'job': 'active-commit', 'copy', ..., 'file': where it writes,
    'ready': whether it can be pivoted}), or None. libvirt keeps it across its own restarts."""
    mirror = disk.find('mirror')
    if mirror is None:
        return None
    source = mirror.find('source')
    target = source.get('file') or source.get('dev') if source is not None else mirror.get('file')
    return {'job': mirror.get('job', 'copy'), 'file': target, 'ready': mirror.get('ready') == 'yes'}


def _backing_chain(disk):
    """The files of a disk's backing chain, top first, as far as the XML records them."""
    chain = []
    node = disk
    while node is not None:
        source = node.find('source')
        if source is None:
            break
        path = source.get('file') or source.get('dev')
        if path is None:
            break
        fmt = node.find('driver') if node is disk else node.find('format')
        chain.append({'file': path, 'format': fmt.get('type') if fmt is not None else None})
        node = node.find('backingStore')
    return chain


def chain_from_qemu_img(text):
    """A disk's backing chain, top first, from `qemu-img info --backing-chain --output=json`."""
    try:
        images = json.loads(text)
    except ValueError as exc:
        raise SnapshotError('Could not read the backing chain qemu-img reported: %s' % exc)
    return [{'file': image.get('filename'), 'format': image.get('format')} for image in images]


def parse_domain(xml, state):
    """The parts of a domain's XML that snapshot decisions need.

    ``state`` is the domain's state name (Client.domain_state), which is not in the XML.
    """
    root = parse_xml(xml, 'the domain')
    disks = []
    for disk in root.iterfind('devices/disk'):
        target = disk.find('target')
        driver = disk.find('driver')
        kind, source = _disk_source(disk)
        disks.append({
            'name': target.get('dev') if target is not None else None,
            'device': disk.get('device', 'disk'),
            'type': kind or disk.get('type', 'file'),
            'format': driver.get('type') if driver is not None else None,
            'source': source,
            'readonly': disk.find('readonly') is not None,
            'snapshot_default': disk.get('snapshot'),
            'chain': _backing_chain(disk),
            'mirror': _mirror(disk),
        })
    return {
        'name': root.findtext('name'),
        'uuid': root.findtext('uuid'),
        'state': state,
        'active': state in ACTIVE_STATES,
        'disks': disks,
        # libvirt gives a domain an ID while its QEMU process lives; a new process gets a new one.
        'id': _domain_id(root.get('id')),
        'start_record': _start_record(root.find('metadata/{%s}%s' % (VMSNAP_NAMESPACE, VMSNAP_METADATA_KEY))),
    }


def _domain_id(text):
    try:
        number = int(text)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _start_record(vmsnap):
    """What virt_start_from_snapshot recorded in the domain's metadata: the snapshot it started the domain from, the
    domain ID it then had and the snapshot that saved the state before (or None), as a dict; None without a record."""
    if vmsnap is None:
        return None
    element = vmsnap.find('{%s}%s' % (VMSNAP_NAMESPACE, START_RECORD))
    if element is None or not element.get('snapshot'):
        return None
    return {
        'snapshot': element.get('snapshot'),
        'domain_id': _domain_id(element.get('domain-id')),
        'preserved': element.get('preserved'),
    }


def with_start_record(metadata, snapshot, domain_id, preserved):
    """The collection's metadata element with its start record replaced, for virDomainSetMetadata.

    ``metadata`` is the element as virDomainGetMetadata returns it (without its namespace), or None when the domain has
    none; whatever else it holds is kept.
    """
    root = _metadata_without(metadata, START_RECORD)
    record = etree.SubElement(root, START_RECORD, snapshot=snapshot)
    record.set('domain-id', str(domain_id))
    if preserved:
        record.set('preserved', preserved)
    return to_xml(root)


def _metadata_without(metadata, tag):
    """The collection's metadata element (as virDomainGetMetadata returns it, or None for a new one) parsed, without
    its ``tag`` children."""
    if metadata:
        root = parse_xml(metadata, 'the %s metadata of the domain' % VMSNAP_METADATA_KEY)
    else:
        root = etree.Element(VMSNAP_METADATA_KEY)
    for old in root.findall(tag):
        root.remove(old)
    return root


def with_quiesced_note(metadata, snapshot):
    """The collection's metadata element with the quiesce note for ``snapshot`` (None: without a note), for
    virDomainSetMetadata; whatever else it holds (a start record) is kept. None when nothing is left in it."""
    root = _metadata_without(metadata, QUIESCED_NOTE)
    if snapshot is not None:
        etree.SubElement(root, QUIESCED_NOTE, snapshot=snapshot)
    elif len(root) == 0 and not root.attrib:
        return None  # nothing left: the element goes
    return to_xml(root)


def snapshot_candidate(disk):
    """Whether a disk takes part in a snapshot by default (a writable disk with media)."""
    return (disk['device'] == 'disk' and not disk['readonly'] and disk['source'] is not None
            and disk['snapshot_default'] != NO)


def default_overlay_path(source, snapshot_name):
    """The overlay file libvirt would pick for an external disk snapshot: the source minus its extension,
    then '.<snapshot name>'."""
    directory, base = os.path.split(source)
    stem, dummy_ext = os.path.splitext(base)
    return os.path.join(directory, '%s.%s' % (stem or base, snapshot_name))


def default_memory_path(domain, snapshot_name):
    """The memory file of an external snapshot: next to the first disk, named after domain and snapshot."""
    for disk in domain['disks']:
        if disk['type'] == 'file' and disk['source'] and snapshot_candidate(disk):
            directory = os.path.dirname(disk['source'])
            break
    else:
        directory = '/var/lib/libvirt/qemu/snapshot'
    return os.path.join(directory, '%s.%s.mem' % (domain['name'], snapshot_name))


# ---------------------------------------------------------------------------------------------------------------------
# Snapshot XML

def iso_utc(epoch):
    if epoch is None:
        return None
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


def location_of(memory, disks):
    """internal, external, mixed, or none, from the memory and disk snapshot kinds."""
    kinds = set(disk['snapshot'] for disk in disks if disk['snapshot'] != NO)
    if memory['snapshot'] != NO:
        kinds.add(memory['snapshot'])
    if not kinds:
        return 'none'
    if len(kinds) == 1:
        return kinds.pop()
    return 'mixed'


def parse_snapshot(xml, domain_name, is_current=False, children=None):
    """The snapshot dict every module returns, from a snapshot's XML.

    Children and the current marker are not part of the snapshot XML: the caller knows them.
    """
    root = parse_xml(xml, 'a snapshot of domain %r' % domain_name)
    memory_el = root.find('memory')
    memory = {
        'snapshot': memory_el.get('snapshot', NO) if memory_el is not None else NO,
        'file': memory_el.get('file') if memory_el is not None else None,
    }
    disks = []
    for disk in root.iterfind('disks/disk'):
        source = disk.find('source')
        file_name = None
        if source is not None:
            file_name = source.get('file') or source.get('dev')
        disks.append({'name': disk.get('name'), 'snapshot': disk.get('snapshot', NO), 'file': file_name})
    created = root.findtext('creationTime')
    creation_time = int(created) if created else None
    return {
        'name': root.findtext('name'),
        'domain': domain_name,
        'description': root.findtext('description'),
        'state': root.findtext('state'),
        'creation_time': creation_time,
        'creation_time_iso': iso_utc(creation_time),
        'parent': root.findtext('parent/name'),
        'children': list(children or []),
        'is_current': bool(is_current),
        'location': location_of(memory, disks),
        'memory': memory,
        'disks': disks,
        'consistency': _consistency(root, memory),
    }


def _consistency(root, memory):
    """How consistent the snapshot is (CONSISTENCIES): what it holds, and the quiesce note this collection left in its
    <domain>. A disk-only snapshot of a running guest without that note counts as crash-consistent: nothing says more."""
    if memory['snapshot'] != NO:
        return 'memory'
    if root.findtext('state') == 'shutoff':
        return 'shutoff'
    note = root.find('domain/metadata/{%s}%s/{%s}%s' % (VMSNAP_NAMESPACE, VMSNAP_METADATA_KEY, VMSNAP_NAMESPACE,
                                                        QUIESCED_NOTE))
    if note is not None and note.get('snapshot') == root.findtext('name'):
        return 'quiesced'
    return 'crash'


def snapshot_disk_bases(xml):
    """{disk target: file} of the domain definition a snapshot recorded: for an external disk snapshot,
    the image the overlay was put on top of (what the snapshot's point in time lives in)."""
    root = parse_xml(xml, 'the snapshot')
    bases = {}
    for disk in root.iterfind('domain/devices/disk'):
        target = disk.find('target')
        kind, source = _disk_source(disk)
        if target is not None and kind in ('file', 'block'):
            bases[target.get('dev')] = source
    return bases


def with_names(xml, name=None, parent=None):
    """The snapshot XML with its name and/or its parent's name replaced, for a rename by redefine."""
    root = parse_xml(xml, 'the snapshot')
    if name is not None:
        root.find('name').text = name
    if parent is not None:
        root.find('parent/name').text = parent
    return to_xml(root)


def with_disk_sources(xml, sources):
    """The domain XML with the disks in ``sources`` ({target: (file, format)}) pointed at a new image whose backing
    chain libvirt will probe again (after an offline merge)."""
    root = parse_xml(xml, 'the domain')
    for disk in root.iterfind('devices/disk'):
        target = disk.find('target')
        if target is None or target.get('dev') not in sources:
            continue
        path, fmt = sources[target.get('dev')]
        disk.find('source').set('file', path)
        driver = disk.find('driver')
        if driver is not None and fmt:
            driver.set('type', fmt)
        backing = disk.find('backingStore')
        if backing is not None:
            disk.remove(backing)
    return to_xml(root)


def build_snapshot_xml(name, description, memory, disks):
    """Snapshot XML for virDomainSnapshotCreateXML.

    ``memory`` is {'snapshot': kind, 'file': path or None}; ``disks`` a list of {'name', 'snapshot', 'file'}.
    lxml escapes names and descriptions, so they round-trip exactly and cannot inject XML.
    """
    root = etree.Element('domainsnapshot')
    etree.SubElement(root, 'name').text = name
    if description:
        etree.SubElement(root, 'description').text = description
    memory_el = etree.SubElement(root, 'memory', snapshot=memory['snapshot'])
    if memory.get('file'):
        memory_el.set('file', memory['file'])
    if disks:
        disks_el = etree.SubElement(root, 'disks')
        for disk in disks:
            disk_el = etree.SubElement(disks_el, 'disk', name=disk['name'], snapshot=disk['snapshot'])
            if disk['snapshot'] == EXTERNAL and disk.get('file'):
                disk_el.set('type', 'file')
                etree.SubElement(disk_el, 'source', file=disk['file'])
    return to_xml(root)


def with_state(xml, state):
    """The snapshot XML with the domain state it recorded replaced, for a redefine."""
    root = parse_xml(xml, 'the snapshot')
    root.find('state').text = state
    return to_xml(root)


def with_description(xml, description):
    """The snapshot XML with its description replaced (removed when empty), for a redefine."""
    root = parse_xml(xml, 'the snapshot')
    element = root.find('description')
    if not description:
        if element is not None:
            root.remove(element)
        return to_xml(root)
    if element is None:
        element = etree.Element('description')
        root.find('name').addnext(element)
    element.text = description
    return to_xml(root)


def diff_view(snapshot):
    """The small dict diffs show for a snapshot (or its absence)."""
    if snapshot is None:
        return {'exists': False}
    return {
        'exists': True,
        'description': snapshot['description'],
        'parent': snapshot['parent'],
        'children': list(snapshot['children']),
        'location': snapshot['location'],
        'memory': dict(snapshot['memory']),
        'disks': [dict(disk) for disk in snapshot['disks']],
        'is_current': snapshot['is_current'],
    }
