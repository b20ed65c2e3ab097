# -*- coding: utf-8 -*-
# Copyright: vmsnap.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of _records.plan_redefine: re-creating a snapshot's record from its XML, as tables. No libvirt here."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.vmsnap.libvirt.plugins.module_utils import _model, _records
from ansible_collections.vmsnap.libvirt.plugins.module_utils._errors import SnapshotError

DOMAIN = ("<domain type='qemu'><name>web01</name><uuid>70e96e9e-701a-42fe-b578-1383a7422844</uuid>"
          "<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
          "<source file='/images/web01.qcow2'/><target dev='vda'/></disk></devices></domain>")


def snapshot_xml(name='before', parent='base', description=None, created=1795634193, memory='no'):
    """Snapshot XML shaped like libvirt's, with the recorded domain inside."""
    parts = ['<domainsnapshot>', '<name>%s</name>' % name]
    if description is not None:
        parts.append('<description>%s</description>' % description)
    parts.append('<state>shutoff</state>')
    if parent is not None:
        parts.append('<parent><name>%s</name></parent>' % parent)
    parts.append('<creationTime>%d</creationTime>' % created)
    parts.append("<memory snapshot='%s'/><disks><disk name='vda' snapshot='internal'/></disks>" % memory)
    parts.append(DOMAIN)
    parts.append('</domainsnapshot>')
    return ''.join(parts)


def existing(xml=None, is_current=False, children=()):
    return _model.parse_snapshot(xml or snapshot_xml(), 'web01', is_current=is_current, children=list(children))


def redefine(xml=None, name='before', current=False):
    return dict(name=name, xml=xml or snapshot_xml(), redefine=True, current=current, state='present')


def test_a_new_record():
    plan = _records.plan_redefine(redefine(), 'web01', None)
    assert [(action.kind, action.params) for action in plan.actions] == [
        ('redefine', {'name': 'before', 'xml': snapshot_xml(), 'current': False})]
    assert plan.changed
    assert plan.snapshot == existing()
    assert plan.before == {'exists': False}
    assert plan.after == _model.diff_view(existing())
    assert plan.after['is_current'] is False and plan.after['children'] == []


def test_a_new_record_made_current():
    plan = _records.plan_redefine(redefine(current=True), 'web01', None)
    assert plan.actions[0].params['current'] is True
    assert plan.snapshot['is_current'] is True


@pytest.mark.parametrize('is_current, current, changed', [
    (False, False, False),
    (True, False, False),   # current=false leaves the marker where it is
    (True, True, False),
    (False, True, True),    # only the marker is missing
])
def test_the_same_record_exists(is_current, current, changed):
    before = existing(is_current=is_current, children=['after'])
    plan = _records.plan_redefine(redefine(current=current), 'web01', before)
    assert plan.changed is changed
    assert plan.snapshot['children'] == ['after']
    assert plan.snapshot['is_current'] is (is_current or current)
    assert plan.before == _model.diff_view(before)
    assert plan.after == _model.diff_view(plan.snapshot)
    if changed:
        assert plan.actions[0].params == {'name': 'before', 'xml': snapshot_xml(), 'current': True}


def test_only_the_formatting_differs():
    # libvirt's own XML, indented and with attributes quoted differently, is the same record.
    spaced = snapshot_xml().replace('><', '>\n  <').replace("'", '"')
    assert not _records.plan_redefine(redefine(spaced), 'web01', existing()).changed


@pytest.mark.parametrize('field, xml', [
    ('description', snapshot_xml(description='Before the upgrade')),
    ('creation_time', snapshot_xml(created=1795634194)),
    ('parent', snapshot_xml(parent=None)),
    ('memory', snapshot_xml(memory='internal')),
])
def test_a_different_record_is_redefined(field, xml):
    before = existing(is_current=True, children=['after'])
    plan = _records.plan_redefine(redefine(xml), 'web01', before)
    assert [action.kind for action in plan.actions] == ['redefine']
    assert plan.actions[0].params == {'name': 'before', 'xml': xml, 'current': False}
    assert plan.snapshot[field] != before[field]
    # what libvirt derives stays: the children, and the marker of a snapshot that was current
    assert (plan.snapshot['children'], plan.snapshot['is_current']) == (['after'], True)


def test_the_name_in_the_xml_must_be_the_name():
    with pytest.raises(SnapshotError) as caught:
        _records.plan_redefine(redefine(snapshot_xml(name='other')), 'web01', None)
    assert caught.value.msg == ("The xml defines snapshot 'other', but name is 'before'. Set name to the name in the "
                                'XML (a redefine cannot rename; use new_name for that).')


def test_the_xml_must_be_snapshot_xml():
    with pytest.raises(SnapshotError) as caught:
        _records.plan_redefine(redefine(DOMAIN), 'web01', None)
    assert caught.value.msg.startswith('xml must be snapshot XML (a <domainsnapshot> element')
    assert 'it is a <domain> element' in caught.value.msg


def test_xml_that_does_not_parse():
    with pytest.raises(SnapshotError) as caught:
        _records.plan_redefine(redefine('<domainsnapshot><name>before</name>'), 'web01', None)
    assert caught.value.msg.startswith('Could not parse the XML of the xml option: ')
