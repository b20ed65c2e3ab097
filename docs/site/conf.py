# Sphinx configuration of the vmsnap.libvirt documentation site (`make docs`, hacking/docs.sh).
# Based on what `antsibull-docs sphinx-init` writes, without intersphinx: the site is built offline, so references
# into docs.ansible.com (ansible.builtin modules, ansible's own pages) are resolved to links by the table below, and
# any other unresolved reference stays an error (-W).

project = 'vmsnap.libvirt'
copyright = 'vmsnap.libvirt contributors'
title = 'vmsnap.libvirt: safe, declarative libvirt snapshots for Ansible'
html_short_title = 'vmsnap.libvirt'

extensions = ['sphinx_antsibull_ext']

pygments_style = 'ansible'
highlight_language = 'YAML+Jinja'

html_theme = 'sphinx_ansible_theme'
html_show_sphinx = False
html_theme_options = {'display_version': False}
html_context = {'display_github': True, 'github_user': 'vmsnap', 'github_repo': 'vmsnap.libvirt',
                'github_version': 'main/', 'conf_py_path': 'docs/site/'}
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

default_role = 'any'
nitpicky = True

ANSIBLE_DOCS = 'https://docs.ansible.com/projects/ansible/latest/'
# Labels of docs.ansible.com that antsibull-docs refers to, and where they live.
EXTERNAL_LABELS = {
    'ansible_configuration_settings': 'reference_appendices/config.html',
    'common_return_values': 'reference_appendices/common_return_values.html',
}


def _external_uri(target):
    if target in EXTERNAL_LABELS:
        return ANSIBLE_DOCS + EXTERNAL_LABELS[target]
    prefix = 'ansible_collections.ansible.builtin.'
    for suffix, kind in (('_module', 'module'), ('_lookup', 'lookup'), ('_filter', 'filter'), ('_test', 'test')):
        if target.startswith(prefix) and target.endswith(suffix):
            return '%scollections/ansible/builtin/%s_%s.html' % (ANSIBLE_DOCS, target[len(prefix):-len(suffix)], kind)
    return None


def _resolve_external(app, env, node, contnode):
    """A reference Sphinx cannot resolve: a link to docs.ansible.com when it is one of theirs, else leave the warning."""
    from docutils import nodes

    uri = _external_uri(node.get('reftarget', ''))
    if uri is None:
        return None
    reference = nodes.reference('', '', internal=False, refuri=uri)
    reference.append(contnode)
    return reference


def setup(app):
    app.connect('missing-reference', _resolve_external)
