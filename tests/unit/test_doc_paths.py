#!/usr/bin/python3
"""README.md and docs/*.md name only repository paths that exist.

What counts as a repository path named by a page (fenced code blocks are
skipped: they hold command lines and QMP transcripts):

- the target of a markdown link `[text](target)`, unless it is a URL or a
  bare #anchor; resolved against the page's folder, the #anchor dropped;
- a word of an inline code span (`...`, which may wrap lines), with
  surrounding brackets and trailing , ; : . dropped, that
  * does not start with / ~ $ or - and holds no = or : (host paths, home
    paths, variables, options, assignments, URLs, versions), and
  * does not start with build/ (generated, ignored by git), and
  * either starts with a top-level entry of the repository (`scripts/x.sh`,
    `meson.build`), or ends with / (a folder, such as `tools/`), or starts
    with ./ or ../ (resolved against the page's folder), or belongs to a
    list of folders: a span of several plain words, the first of them a
    top-level entry (`accel balloon tests/qtest util`; not `make bench`).
  Such a word is resolved against the repository root; a word with * must
  match at least one path.

Everything else (QMP and QOM names, bare file names such as `ocvm.py` in a
sentence about its folder, upstream paths such as `debian/patches/series`)
is prose, not a claim about this repository. Upstream files that our
patches change are written without backticks (hw/virtio/virtio-balloon.c),
as in the hooks column of docs/architecture.md.
"""

import glob
import os
import re
import unittest

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     '..', '..'))


def top_level():
    return {e for e in os.listdir(ROOT) if e not in ('.git', 'build')}


def named_paths(text, page_dir, tops):
    """(as written, path relative to ROOT) for every repository path that a
    page in ROOT/page_dir names."""
    text = re.sub(r'^```.*?^```', '', text, flags=re.S | re.M)
    found = []
    for target in re.findall(r'\]\(([^)\s]+)\)', text):
        if re.match(r'[a-z][a-z0-9+.-]*:', target) or target.startswith('#'):
            continue
        path = target.split('#')[0]
        found.append((target, os.path.normpath(os.path.join(page_dir, path))))
    for span in re.findall(r'`([^`]+)`', text):
        words = span.split()
        folders = (len(words) > 1 and words[0] in tops
                   and all(re.fullmatch(r'\w[\w./-]*', w) for w in words))
        for word in words:
            word = word.strip('()[]').rstrip(',;:.')
            if not word or word[0] in '/~$-' or '=' in word or ':' in word:
                continue
            if word == 'build' or word.startswith('build/'):
                continue
            if word.startswith(('./', '../')):
                found.append((word, os.path.normpath(os.path.join(page_dir, word))))
            elif word.split('/')[0] in tops or word.endswith('/') or folders:
                found.append((word, os.path.normpath(word)))
    return found


def exists(path):
    full = os.path.normpath(os.path.join(ROOT, path))
    if not full.startswith(ROOT + os.sep) and full != ROOT:
        return False                  # outside the repository
    if '*' in path:
        return bool(glob.glob(full))
    return os.path.exists(full)


def pages():
    return ['README.md'] + sorted(
        os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'docs', '*.md')))


class Rule(unittest.TestCase):
    """The extraction rule on a sample page in docs/."""

    def test_rule(self):
        sample = '\n'.join([
            'See [the arch page](architecture.md#tests) and [up](../README.md),',
            '[web](https://example.org/x) and [here](#anchor).',
            'Run `scripts/run-tests.sh --suite guest` and `make check`;',
            '`query-balloon` with `refresh`, `/usr/bin/python3`, `~/.cache/x`,',
            '`build/qemu-system-x86_64`, `CCACHE_DIR=~/.cache/y`,',
            '`virtio-balloon-device/qemu-oc-stats`, `debian/patches/series`,',
            'files under `accel balloon',
            'tools/` (`tests/*.list`), `../shared/platform.md`, `ocvm.py`,',
            '`accel tests/qtest util`, `make bench`, `info balloon`.',
            '```', 'cat nothere/file.c', '```',
        ])
        got = [p for _, p in named_paths(sample, 'docs', {'scripts', 'tests', 'accel'})]
        self.assertEqual(got, ['docs/architecture.md', 'README.md',
                               'scripts/run-tests.sh', 'accel', 'balloon', 'tools',
                               'tests/*.list', 'shared/platform.md',
                               'accel', 'tests/qtest', 'util'])
        self.assertTrue(exists('README.md'))
        self.assertTrue(exists('tests/*.list'))
        self.assertFalse(exists('../shared/platform.md'))
        self.assertFalse(exists('tests/*.nothing'))


class DocPaths(unittest.TestCase):
    """One test case per page: every repository path it names exists."""

    def check(self, page):
        with open(os.path.join(ROOT, page)) as f:
            text = f.read()
        found = named_paths(text, os.path.dirname(page), top_level())
        missing = sorted({'%s (%s)' % (w, p) if w != p else w
                          for w, p in found if not exists(p)})
        self.assertEqual(missing, [], '%s names paths that do not exist' % page)
        return found

    def test_pages_found(self):
        self.assertIn('docs/architecture.md', pages())
        self.assertGreater(len(pages()), 3)


def _add(page):
    def test(self):
        found = self.check(page)
        if page == 'README.md':       # the rule does find the repository map
            self.assertGreater(len(found), 20)
    name = 'test_' + re.sub(r'\W', '_', page)
    test.__name__ = name
    test.__doc__ = 'every repository path %s names exists' % page
    setattr(DocPaths, name, test)


for _page in pages():
    _add(_page)


if __name__ == '__main__':
    unittest.main()
