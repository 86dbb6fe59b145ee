"""Markdown extension for the documentation site: a `<` in a docstring is text, never HTML.

The docstrings write inner products as <x, g> and file patterns as median_<column>, as the
paper and the results folders do; Python-Markdown takes those for HTML tags and the browser drops
them, silently. Without its raw-HTML block and inline patterns, Markdown escapes them as text.
"""

from markdown.extensions import Extension


class PlainAngleBrackets(Extension):
    def extendMarkdown(self, md):  # noqa: N802 (Python-Markdown's name)
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")


def makeExtension(**kwargs):  # noqa: N802 (the entry point Python-Markdown looks for)
    return PlainAngleBrackets(**kwargs)
